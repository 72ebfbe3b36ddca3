"""Data contracts: pandera schemas for every table that crosses a package boundary.

- `spec`: dataset specs (one YAML file per data set) and the pandera schema built from each
  (`spec_schema.build_schema`); incoming applications (training and scoring input) are
  validated against their data set's spec.
- `scored_application`: scoring output.
- `outcome`: outcome files, from the data set's spec.
- `analyst_feedback`: analysts' feedback on scored applications (RLHF).

A contract carries a version; artifacts record the version of the data they were built from.
The package imports none of its modules, so `data_contracts.spec` loads without pandera.
"""
