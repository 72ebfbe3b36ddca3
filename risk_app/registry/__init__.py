"""Model registry: self-describing artifacts, MLflow versions, champion/challenger promotion, audit."""

import os

# MLflow (>= 3.2) sends usage telemetry unless MLFLOW_DISABLE_TELEMETRY or DO_NOT_TRACK is set,
# and decides when mlflow is first imported. A bank's registry does not phone home by default;
# a user who wants it sets MLFLOW_DISABLE_TELEMETRY=false.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# MLflow unpickles a model whose MLmodel says so (a cloudpickled pyfunc, sklearn, pytorch ...)
# unless this is false: an edited MLmodel in the store would run a planted pickle on load.
# risk_app versions are models from code and never need it; a user who must load an old
# pickled model sets MLFLOW_ALLOW_PICKLE_DESERIALIZATION=true for that process.
os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
