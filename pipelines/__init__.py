"""Dagster definitions for risk_app: a thin layer over the `risk_app` library.

Each asset reads its typed config, calls one `risk_app` function and attaches metadata.
Anything an asset does can also be done from Python or the `risk-app` CLI.
"""
