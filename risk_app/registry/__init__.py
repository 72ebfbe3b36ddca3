"""Model registry: self-describing artifacts, MLflow versions, champion/challenger promotion, audit."""

import os

# MLflow (>= 3.2) sends usage telemetry unless MLFLOW_DISABLE_TELEMETRY or DO_NOT_TRACK is set,
# and decides when mlflow is first imported. A bank's registry does not phone home by default;
# a user who wants it sets MLFLOW_DISABLE_TELEMETRY=false.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
