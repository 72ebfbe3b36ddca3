"""risk_app: credit-risk modeling with fine-tuned decoder LLMs.

The library behind the Dagster pipelines and the `risk-app` CLI. It never imports dagster,
so every stage can run from plain Python as well.
"""

__version__ = "0.1.0"
