"""fit_calibrator: temperature recovers a known T, isotonic is monotone and lowers Brier."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score

from risk_app.errors import ConfigError, RiskAppError
from risk_app.evaluate.calibration import binary_nll, fit_calibrator, logit, sigmoid


def _overconfident(seed: int, n: int, true_t: float) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from sigmoid(z), scores sigmoid(z * true_t): logit(score) / true_t is exact."""
    rng = np.random.default_rng(seed)
    z = rng.normal(-0.8, 1.5, size=n)
    y = rng.binomial(1, sigmoid(z))
    return y, sigmoid(z * true_t)


@pytest.mark.parametrize("true_t", [0.5, 2.5])
def test_temperature_recovers_known_t(true_t: float) -> None:
    y, p = _overconfident(0, 20_000, true_t)
    cal = fit_calibrator("temperature", y, p)
    assert cal.temperature == pytest.approx(true_t, rel=0.08)
    assert cal.val_nll_after < cal.val_nll_before
    # Fresh data from the same process: calibration generalises, AUC unchanged (monotone map).
    y_new, p_new = _overconfident(1, 5_000, true_t)
    fixed = cal.transform(p_new)
    assert brier_score_loss(y_new, fixed) < brier_score_loss(y_new, p_new)
    assert roc_auc_score(y_new, fixed) == pytest.approx(roc_auc_score(y_new, p_new))


def test_temperature_near_one_for_calibrated_scores() -> None:
    y, p = _overconfident(2, 20_000, 1.0)
    assert fit_calibrator("temperature", y, p).temperature == pytest.approx(1.0, abs=0.06)


def test_isotonic_is_monotone_and_lowers_brier() -> None:
    rng = np.random.default_rng(3)
    z = rng.normal(0, 1.5, size=3000)
    y = rng.binomial(1, sigmoid(z))
    # Miscalibrated in a non-temperature way: squashed towards 0.5 and shifted up.
    p = np.clip(0.35 + 0.3 * sigmoid(z), 0, 1)
    cal = fit_calibrator("isotonic", y, p)
    grid = np.linspace(0, 1, 501)
    out = cal.transform(grid)
    assert np.all(np.diff(out) >= -1e-12)
    assert out.min() >= 0 and out.max() <= 1
    assert brier_score_loss(y, cal.transform(p)) < brier_score_loss(y, p) - 0.01
    assert cal.describe()["isotonic_steps"] > 1


def test_none_is_identity() -> None:
    y, p = _overconfident(4, 200, 2.0)
    cal = fit_calibrator("none", y, p)
    np.testing.assert_array_equal(cal.transform(p), p)
    assert cal.val_nll_after == pytest.approx(binary_nll(y, p))


def test_saturated_scores_stay_finite() -> None:
    y = np.array([0, 1, 0, 1, 1, 0])
    p = np.array([0.0, 1.0, 0.2, 0.9, 0.6, 0.4])
    cal = fit_calibrator("temperature", y, p)
    out = cal.transform(p)
    assert np.isfinite(out).all() and np.isfinite(logit(p)).all()


def test_bad_kind_rejected() -> None:
    with pytest.raises(ConfigError, match="unknown calibration 'beta'.*temperature"):
        fit_calibrator("beta", [0, 1], [0.2, 0.8])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("y", "p", "message"),
    [
        ([0, 1, 1], [0.1, 0.9], "3.*labels but 2 scores"),
        ([0, 1], [0.1, 1.2], "row 1 is 1.2"),
        ([0, 1], [0.1, float("nan")], "row 1"),
        ([1, 1, 1], [0.1, 0.5, 0.9], "all 3 labels are 1"),
        ([0, 2], [0.1, 0.9], "row 1 is 2"),
    ],
)
def test_bad_inputs_name_the_problem(y: list, p: list, message: str) -> None:
    with pytest.raises(RiskAppError, match=message):
        fit_calibrator("temperature", y, p)


def test_transform_rejects_out_of_range() -> None:
    cal = fit_calibrator("temperature", [0, 1, 0, 1], [0.2, 0.7, 0.4, 0.9])
    with pytest.raises(RiskAppError, match="row 0 is -0.1"):
        cal.transform([-0.1, 0.5])


def test_platt_undoes_a_shifted_base_rate_and_keeps_the_ranking() -> None:
    """Class weighting inflates P(default) towards 0.5; Platt moves it back to the base rate."""
    from sklearn.metrics import roc_auc_score

    from risk_app.evaluate.calibration import Calibrator, fit_calibrator, logit, sigmoid

    rng = np.random.default_rng(3)
    true_logit = rng.normal(-1.0, 1.2, 4000)
    y = (rng.random(4000) < sigmoid(true_logit)).astype(int)
    inflated = sigmoid(0.8 * true_logit + 1.0)  # too high on average, too flat
    cal = fit_calibrator("platt", y, inflated)
    fixed = cal.transform(inflated)
    assert abs(fixed.mean() - y.mean()) < 0.01 < abs(inflated.mean() - y.mean())
    assert roc_auc_score(y, fixed) == pytest.approx(roc_auc_score(y, inflated))
    assert cal.slope == pytest.approx(1 / 0.8, rel=0.1)
    restored = Calibrator.from_dict(cal.to_dict())
    np.testing.assert_allclose(restored.transform(inflated), fixed)
    assert np.all(np.diff(fixed[np.argsort(logit(inflated))]) >= 0)


def test_isotonic_round_trips_through_json() -> None:
    from risk_app.evaluate.calibration import Calibrator, fit_calibrator

    rng = np.random.default_rng(4)
    p = rng.random(500)
    y = (rng.random(500) < p**2).astype(int)
    cal = fit_calibrator("isotonic", y, p)
    restored = Calibrator.from_dict(cal.to_dict())
    np.testing.assert_allclose(restored.transform(p), cal.transform(p), atol=1e-12)


def test_unknown_saved_calibration_is_rejected() -> None:
    from risk_app.evaluate.calibration import Calibrator

    with pytest.raises(ConfigError, match="unknown calibration"):
        Calibrator.from_dict({"kind": "magic"})
