"""Every chart is a real, decodable PNG of sensible size, returned and optionally saved."""

from __future__ import annotations

import io

import matplotlib.image as mpimg
import numpy as np
import pytest

from risk_app.errors import RiskAppError
from risk_app.evaluate import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def scores() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    p = 1.0 / (1.0 + np.exp(-rng.normal(-1.0, 1.5, 400)))
    y = (rng.random(400) < p).astype(int)
    return y, p


def assert_png(data: bytes) -> np.ndarray:
    assert data[:8] == PNG_MAGIC
    assert len(data) > 10_000  # axes, curves and text, not an empty canvas
    image = mpimg.imread(io.BytesIO(data), format="png")
    assert image.shape[0] > 300 and image.shape[1] > 300
    # Not a blank canvas: many distinct colours are drawn.
    assert len(np.unique(image.reshape(-1, image.shape[-1]), axis=0)) > 20
    return image


@pytest.mark.parametrize(
    "draw",
    [
        lambda y, p, path: plots.roc_curve_png(y, p, path=path),
        lambda y, p, path: plots.ks_curve_png(y, p, path=path),
        lambda y, p, path: plots.reliability_png(y, p, path=path),
        lambda y, p, path: plots.score_distribution_png(y, p, threshold=0.4, path=path),
        lambda y, p, path: plots.confusion_matrix_png(y, p, 0.4, path=path),
    ],
    ids=["roc", "ks", "reliability", "score_distribution", "confusion_matrix"],
)
def test_each_chart_is_a_valid_png_and_saved_atomically(draw, scores, tmp_path) -> None:
    y, p = scores
    path = tmp_path / "charts" / "chart.png"
    data = draw(y, p, path)
    assert_png(data)
    assert path.read_bytes() == data
    assert [f.name for f in path.parent.iterdir()] == ["chart.png"]  # no temp file left


def test_roc_overlays_several_models(scores) -> None:
    y, p = scores
    rng = np.random.default_rng(1)
    one = plots.roc_curve_png(y, {"llm": p})
    several = plots.roc_curve_png(y, {"llm": p, "logistic": np.clip(p + rng.normal(0, 0.2, len(p)), 0, 1)})
    assert_png(several)
    assert one != several


def test_charts_without_path_write_nothing(scores, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    y, p = scores
    assert_png(plots.ks_curve_png(y, p))
    assert list(tmp_path.iterdir()) == []


def test_bad_inputs_raise_clear_errors(scores) -> None:
    y, p = scores
    with pytest.raises(RiskAppError, match="both defaults and non-defaults"):
        plots.roc_curve_png(np.zeros(10, dtype=int), p[:10])
    with pytest.raises(RiskAppError, match="lengths must match"):
        plots.reliability_png(y, {"llm": p, "short": p[:5]})
    with pytest.raises(RiskAppError, match="threshold"):
        plots.confusion_matrix_png(y, p, -0.1)
    with pytest.raises(RiskAppError, match="no scores"):
        plots.roc_curve_png(y, {})
