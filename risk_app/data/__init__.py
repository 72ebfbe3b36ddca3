"""Loan-application data: load files, validate against the contract (quarantining bad rows),
serialize applications to text, split train/validation/test, and build training examples.

Typical flow: `load.load_applications(path)` -> `validate.validate_applications(df, path)` ->
`examples.build_training_examples(result.valid, seed)`.
"""
