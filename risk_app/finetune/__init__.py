"""Fine-tuning: methods (which parameters train), objectives (how), the trainer that runs them,
the method registry, training config, prediction and method comparison."""
