"""Evaluation: credit-risk metrics, baselines, calibration, reports, model cards, fairness, drift.

Reason codes live in `risk_app.explain`, the credit policy in `risk_app.policy`."""
