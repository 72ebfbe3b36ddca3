"""The champion re-scored on the challenger's test rows leaves out the rows it was fitted on.

A champion trained or validated on some of the challenger's test rows (another split of an
overlapping book) scores them too well, so the evaluation compares it only on the rows its
artifact's fit rows do not name, says how many it left out, falls back when too few remain, and
calls the overlap unknown for an artifact that records no fit rows. The champion here is a real
(logistic) model in a test-double artifact folder, found through a stubbed registry look-up.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from risk_app import paths
from risk_app.registry.artifact import write_fit_rows
from risk_app.run import evaluate
from risk_app.run.evaluate import FITTED_ON, _champion_on_test, _keep_same_rows, champion_note
from tests.scoring.doubles import german_credit, load_double_artifact, save_double_artifact


@pytest.fixture
def test_rows() -> pd.DataFrame:
    return german_credit().sample(150, random_state=4).reset_index(drop=True)


def _champion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fit_rows: pd.DataFrame | None) -> Path:
    """Version 3 of the registered model: a logistic double, with `fit_rows` recorded or not."""
    folder = save_double_artifact(tmp_path / "champion", version="v3", n_train=300, seed=2)
    if fit_rows is not None:
        write_fit_rows(folder, fit_rows)
    monkeypatch.setattr(paths, "mlflow_tracking_uri", lambda: "file:///a-registry")
    resolved = SimpleNamespace(local_artifact_dir=str(folder), version=3)
    monkeypatch.setattr(evaluate, "resolve_model", lambda alias, name: resolved)
    monkeypatch.setattr(evaluate, "load_risk_model", load_double_artifact)
    return folder


def _fit_rows(ids: list[str], trained: int, validated: int) -> pd.DataFrame:
    """The champion trained on the first `trained` ids and validated on the next `validated`,
    plus applications of its own book that the challenger never saw."""
    split = ["train"] * trained + ["validation"] * validated
    own = [f"elsewhere-{i}" for i in range(50)]
    return pd.DataFrame({"application_id": ids[: trained + validated] + own, "split": split + ["train"] * 50})


def test_rows_the_champion_trained_or_validated_on_are_left_out_and_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, test_rows: pd.DataFrame
) -> None:
    ids = test_rows["application_id"].astype(str).tolist()
    _champion(tmp_path, monkeypatch, _fit_rows(ids, trained=66, validated=38))
    champion = _champion_on_test({"test": test_rows}, ids, "german_credit")
    assert champion is not None and champion.fallback is None
    assert (champion.excluded("train"), champion.excluded("validation")) == (66, 38)
    kept = champion.compared
    assert kept.sum() == 46 and not kept[:104].any()
    y = test_rows["default"].to_numpy(np.int64)
    # The row `champion` is measured on the 46 rows it never saw, not on all 150.
    assert champion.metrics.roc_auc == pytest.approx(roc_auc_score(y[kept], champion.scores[kept]))
    assert champion.metrics.roc_auc != pytest.approx(roc_auc_score(y, champion.scores))
    note = champion_note(champion, y)
    assert note is not None and "on the 46 of 150 test rows" in note
    assert note.endswith("104 left out: it trained on 66 and validated on 38")

    mine = np.random.default_rng(0).uniform(size=len(y))
    facts = _keep_same_rows(tmp_path, "german_credit", champion, ids, y, mine)
    assert (facts.rows, facts.compared, facts.excluded_train, facts.excluded_validation) == (150, 46, 66, 38)
    assert facts.overlap_known and facts.compared_defaults == int(y[kept].sum())
    kept_file = pd.read_parquet(facts.scores_path)
    assert (kept_file[FITTED_ON] == "").sum() == 46


def test_too_few_rows_left_means_no_champion_row_and_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, test_rows: pd.DataFrame
) -> None:
    ids = test_rows["application_id"].astype(str).tolist()
    _champion(tmp_path, monkeypatch, _fit_rows(ids, trained=100, validated=30))
    champion = _champion_on_test({"test": test_rows}, ids, "german_credit")
    assert champion is not None and champion.metrics is None
    assert champion.fallback == (
        "only 20 of the challenger's 150 test rows are rows champion version 3 was never trained or "
        "validated on (130 left out: it trained on 100 and validated on 30), fewer than the 30 a "
        "same-rows comparison needs"
    )


def test_an_artifact_without_fit_rows_is_compared_on_all_rows_overlap_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, test_rows: pd.DataFrame
) -> None:
    ids = test_rows["application_id"].astype(str).tolist()
    _champion(tmp_path, monkeypatch, None)
    champion = _champion_on_test({"test": test_rows}, ids, "german_credit")
    assert champion is not None and champion.compared.all() and champion.fallback is None
    y = test_rows["default"].to_numpy(np.int64)
    assert champion.metrics.roc_auc == pytest.approx(roc_auc_score(y, champion.scores))
    assert "whether it trained or validated on any of them is unknown" in (champion_note(champion, y) or "")
    facts = _keep_same_rows(tmp_path, "german_credit", champion, ids, y, np.zeros(len(y)))
    assert not facts.overlap_known and facts.compared == 150


def test_a_small_test_split_the_champion_never_saw_is_still_compared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, test_rows: pd.DataFrame
) -> None:
    # The 30-row floor is for rows left out: 21 test rows none of which the champion saw are the
    # fairest comparison there is (the recorded metrics come from other small splits), as before.
    small = test_rows.iloc[:21].reset_index(drop=True)
    assert 0 < small["default"].sum() < len(small)
    ids = small["application_id"].astype(str).tolist()
    _champion(tmp_path, monkeypatch, _fit_rows([f"other-{i}" for i in range(40)], trained=30, validated=10))
    champion = _champion_on_test({"test": small}, ids, "german_credit")
    assert champion is not None and champion.fallback is None and champion.compared.all()
    y = small["default"].to_numpy(np.int64)
    assert champion.metrics.roc_auc == pytest.approx(roc_auc_score(y, champion.scores))
