"""fit_hybrid: stacking two partially informative, independent scores beats either alone."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from risk_app.errors import ConfigError, RiskAppError
from risk_app.evaluate.calibration import sigmoid
from risk_app.evaluate.hybrid import fit_hybrid


def _two_views(seed: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels plus two scores, each seeing the label through its own independent noise."""
    rng = np.random.default_rng(seed)
    y = rng.binomial(1, 0.3, size=n)
    llm = sigmoid(1.0 * y - 0.5 + rng.normal(0, 1.0, size=n))
    # Different scale on purpose: the stacker must learn each score's weight.
    gbm = sigmoid(2.4 * y - 1.5 + rng.normal(0, 2.0, size=n))
    return y, llm, gbm


@pytest.mark.parametrize("kind", ["logistic", "convex"])
def test_hybrid_beats_each_input_on_fresh_data(kind: str) -> None:
    y_val, llm_val, gbm_val = _two_views(0, 600)
    hybrid = fit_hybrid(y_val, llm_val, gbm_val, kind=kind)  # type: ignore[arg-type]
    y_test, llm_test, gbm_test = _two_views(1, 4000)
    p = hybrid.predict(llm_test, gbm_test)
    assert p.min() >= 0 and p.max() <= 1
    auc = roc_auc_score(y_test, p)
    assert auc > roc_auc_score(y_test, llm_test) + 0.02
    assert auc > roc_auc_score(y_test, gbm_test) + 0.02


def test_logistic_weights_both_and_oof_is_honest() -> None:
    y, llm, gbm = _two_views(2, 600)
    hybrid = fit_hybrid(y, llm, gbm)
    assert hybrid.params["coef_llm"] > 0 and hybrid.params["coef_gbm"] > 0
    assert hybrid.val_oof.shape == y.shape
    # Out-of-fold scores come from stackers that did not see the row: never better than in-sample.
    in_sample = roc_auc_score(y, hybrid.predict(llm, gbm))
    assert hybrid.val_auc_oof <= in_sample + 1e-9
    assert hybrid.val_auc_oof > max(roc_auc_score(y, llm), roc_auc_score(y, gbm))


def test_convex_picks_the_only_informative_score() -> None:
    rng = np.random.default_rng(3)
    y = rng.binomial(1, 0.4, size=500)
    informative = sigmoid(2.0 * y - 1 + rng.normal(0, 1, size=500))
    noise = rng.uniform(0, 1, size=500)
    hybrid = fit_hybrid(y, informative, noise, kind="convex")
    assert hybrid.params["weight_llm"] >= 0.8


def test_bad_kind_and_inputs() -> None:
    y, llm, gbm = _two_views(4, 100)
    with pytest.raises(ConfigError, match="unknown hybrid 'mean'"):
        fit_hybrid(y, llm, gbm, kind="mean")  # type: ignore[arg-type]
    with pytest.raises(RiskAppError, match="labels but 99 scores"):
        fit_hybrid(y, llm, gbm[:99])
    with pytest.raises(RiskAppError, match="rarer class"):
        fit_hybrid([0, 0, 0, 1, 1], [0.1, 0.2, 0.3, 0.8, 0.9], [0.2, 0.1, 0.4, 0.7, 0.6])
    hybrid = fit_hybrid(y, llm, gbm)
    with pytest.raises(RiskAppError, match="3 llm scores but 2 gbm scores"):
        hybrid.predict([0.1, 0.2, 0.3], [0.1, 0.2])
    with pytest.raises(RiskAppError, match="row 1 is 1.5"):
        hybrid.predict([0.1, 1.5], [0.1, 0.2])
