"""Model registry: self-describing artifacts, MLflow versions, champion/challenger promotion, audit."""
