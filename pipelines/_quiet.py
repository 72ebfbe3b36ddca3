"""Imported first by `pipelines.definitions`: quiet the libraries before the assets import them.

bitsandbytes logs "Failed to load CPU gemm_4bit_forward ..." while it is being imported, so the
level must be set before; `dagster dev` imports the definitions in every process it starts (32
copies of the notice in one session).
"""

from risk_app.quiet import quiet_libraries

quiet_libraries()
