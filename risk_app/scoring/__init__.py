"""Batch scoring: probability of default, risk grade, decision, reason codes."""

from risk_app.scoring.batch import score_applications
from risk_app.scoring.service import load_model, reference_scores, score_with_reasons

__all__ = [
    "load_model",
    "reference_scores",
    "score_applications",
    "score_with_reasons",
]
