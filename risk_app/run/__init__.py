"""A training run as stages over one typed record: fine-tune → policy → evaluate → package → register."""
