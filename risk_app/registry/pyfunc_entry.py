"""MLflow models-from-code entry for risk_app model versions: run on load, never unpickled.

`register_model_version` logs this file as the pyfunc's code. `mlflow.pyfunc.load_model`
runs it; it hands MLflow a fresh `RiskModelPyfunc`, whose `load_context` rebuilds the model
from the version's safetensors artifact (weights checksum and base-model pins verified). So a
version carries no pickled Python object that could run a planted payload on load.
"""

import mlflow

from risk_app.registry.pyfunc_model import RiskModelPyfunc

mlflow.models.set_model(RiskModelPyfunc())
