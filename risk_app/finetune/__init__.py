"""Fine-tuning: training config, the method registry, the trainer, prediction and method comparison."""
