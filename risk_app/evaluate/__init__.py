"""Evaluation: credit-risk metrics, baselines, calibration, reports, model cards, fairness, drift, reasons."""
