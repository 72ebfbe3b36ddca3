"""Promotion decides on the same rows: the champion re-scored on the challenger's test rows.

Each version's recorded test AUC is measured on its own split, so two versions trained on
different files are not compared like for like. When the evaluation re-scored the champion on
the challenger's test rows, registration and promotion (the one path of the CLI and the Dagster
assets: `register_run`, `promote_run`) decide on those rows with a paired test, and fall back to
the recorded AUCs only when no such evaluation exists, saying so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from risk_app.evaluate.metrics import score_predictions
from risk_app.registry import mlflow_registry
from risk_app.registry.audit import read_audit_log
from risk_app.registry.promotion import PromotionRule
from risk_app.run.benchmark_gate import benchmark_verdict
from risk_app.run.evaluate import CHAMPION_ROW, FITTED_ON
from risk_app.run.record import ChampionRowFacts, RunRecord
from risk_app.run.register import champion_version, promote_run, register_run
from risk_app.run.same_rows import same_rows_evidence
from tests.evaluate.test_model_card import make_record
from tests.scoring.doubles import save_double_artifact

NAME = "same_rows_model"
RNG = np.random.default_rng(7)
Y = RNG.integers(0, 2, 300)
NOISE = RNG.normal(size=300)


def _scores(strength: float, seed: int) -> np.ndarray:
    """PDs that rank defaults above good loans the more, the larger `strength`."""
    jitter = np.random.default_rng(seed).normal(scale=0.3, size=len(Y))
    return 1.0 / (1.0 + np.exp(-(strength * (Y - 0.5) + NOISE + jitter)))


def _record(
    home: Path, run_id: str, mine: np.ndarray, champion: np.ndarray | None = None,
    fitted_on: np.ndarray | None = None, fallback: str | None = None,
) -> RunRecord:  # fmt: skip
    """A finished run whose test scores are `mine`, with the champion (version 1) re-scored on
    the same rows as `champion`, or no champion row at all. `fitted_on` (per row: "train",
    "validation", "" or "unknown"), as the evaluation writes it, says which rows the champion
    was fitted on; the row `champion` is then its metrics on the others, as in the evaluation."""
    base = make_record()
    run_dir = home / run_id
    folder = save_double_artifact(run_dir / "artifact", version=f"double-{run_id}", n_train=99)
    (folder / "MODEL_CARD.md").write_text("# card\n")
    baselines, facts = {}, None
    if champion is not None:
        kept = np.ones(len(Y), bool) if fitted_on is None else np.isin(fitted_on, ["", "unknown"])
        if fallback is None:
            baselines[CHAMPION_ROW] = score_predictions(Y[kept], champion[kept], 0.5)
        path = run_dir / "champion_same_rows.parquet"
        ids = [f"a{i}" for i in range(len(Y))]
        frame = {"application_id": ids, "default": Y, "challenger": mine, "champion": champion}
        if fitted_on is not None:
            frame[FITTED_ON] = fitted_on
        pd.DataFrame(frame).to_parquet(path, index=False)
        counts = {}
        if fitted_on is not None:
            counts = {
                "compared": int(kept.sum()), "compared_defaults": int(Y[kept].sum()),
                "excluded_train": int((fitted_on == "train").sum()),
                "excluded_validation": int((fitted_on == "validation").sum()),
                "overlap_known": not (fitted_on == "unknown").any(), "fallback": fallback,
            }  # fmt: skip
        facts = ChampionRowFacts(
            model_name=NAME, version="1", threshold=0.5, scores_path=str(path), rows=len(Y),
            defaults=int(Y.sum()), **counts,
        )  # fmt: skip
    evaluation = base.need("evaluation").model_copy(
        update={"test": score_predictions(Y, mine, 0.5), "baselines": baselines, "champion_same_rows": facts}
    )
    artifact = base.need("artifact").model_copy(update={"path": str(folder), "version": f"double-{run_id}"})
    return base.model_copy(
        update={"run_id": run_id, "run_dir": str(run_dir), "evaluation": evaluation, "artifact": artifact}
    )


def _register(record: RunRecord, rule: PromotionRule | None = None) -> RunRecord:
    return promote_run(register_run(record, model_name=NAME, rule=rule, benchmark_margin="off"), rule)


@pytest.fixture
def champion_with_a_high_recorded_auc(risk_app_home: Path) -> RunRecord:
    """Version 1: champion, with a recorded test AUC (on its own, easy split) of about 0.97."""
    first = _register(_record(risk_app_home, "run-1", _scores(6.0, 1)))
    assert first.need("registration").promoted and champion_version(NAME) == 1
    return first


def test_a_challenger_better_on_the_same_rows_is_promoted_though_its_recorded_auc_is_lower(
    risk_app_home: Path, champion_with_a_high_recorded_auc: RunRecord
) -> None:
    recorded_champion = champion_with_a_high_recorded_auc.need("evaluation").test.roc_auc
    challenger = _record(risk_app_home, "run-2", _scores(3.0, 2), champion=_scores(0.5, 3))
    mine = challenger.need("evaluation").test.roc_auc
    theirs = challenger.need("evaluation").baselines[CHAMPION_ROW].roc_auc
    assert theirs < mine < recorded_champion  # the recorded AUCs alone would keep the champion

    done = _register(challenger).need("registration")
    assert done.promoted and champion_version(NAME) == 2
    reason = done.decision.reason
    assert reason.startswith("challenger is better on the same rows: on the challenger's 300 test rows")
    assert f"AUC is {mine:.4f} and champion version 1's {theirs:.4f}" in reason
    assert "DeLong" in reason and "95% CI" in reason
    assert done.decision.details["basis"] == "same_rows"
    # The audit log keeps the same sentence with the paired test's numbers.
    line = [r for r in read_audit_log() if r["action"] == "promote" and r["to_version"] == "2"][-1]
    assert line["reason"] == reason and line["details"]["comparison"]["method"] == "DeLong"


def test_a_challenger_worse_on_the_same_rows_is_held_back_though_its_recorded_auc_is_higher(
    risk_app_home: Path, champion_with_a_high_recorded_auc: RunRecord
) -> None:
    # Recorded: the challenger's 0.99+ beats the champion's own 0.97; on the same rows it loses.
    challenger = _record(risk_app_home, "run-2", _scores(9.0, 2), champion=_scores(14.0, 3))
    done = _register(challenger).need("registration")
    assert not done.promoted and champion_version(NAME) == 1
    assert done.decision.reason.startswith("challenger is not better on the same rows: on the challenger's")
    assert done.decision.reason.endswith("; the champion stays")


def test_without_a_same_rows_evaluation_the_recorded_aucs_decide_and_the_verdict_says_so(
    risk_app_home: Path, champion_with_a_high_recorded_auc: RunRecord
) -> None:
    done = _register(_record(risk_app_home, "run-2", _scores(3.0, 2))).need("registration")
    assert not done.promoted
    assert "by the recorded test roc_auc of each version, each measured on its own test split" in (
        done.decision.reason
    )
    assert "no same-rows evaluation of the champion exists for this version" in done.decision.reason
    assert done.decision.details["basis"] == "recorded"


def test_a_gain_the_paired_test_cannot_tell_from_noise_is_held_back_when_the_rule_asks(
    risk_app_home: Path, champion_with_a_high_recorded_auc: RunRecord
) -> None:
    # As strong a model as the champion: a small gain on these rows by chance (+0.002), p 0.25.
    champion, mine = _scores(3.0, 2), _scores(3.0, 4)
    rule = PromotionRule(max_p_value=0.05)
    done = _register(_record(risk_app_home, "run-2", mine, champion=champion), rule).need("registration")
    assert not done.promoted and done.decision.details["improvement"] > 0
    assert done.decision.reason.startswith("challenger's gain is not significant on the same rows")
    assert done.decision.details["comparison"]["p_value"] > 0.05


# ------------------------------------------------- rows the champion was fitted on are left out


def _memorised(fitted_on: np.ndarray) -> np.ndarray:
    """A champion that ranks the rows it was fitted on almost perfectly and the others weakly."""
    seen = np.isin(fitted_on, ["train", "validation"])
    return np.where(seen, _scores(12.0, 3), _scores(0.5, 3))


FITTED = np.array(["train"] * 100 + ["validation"] * 60 + [""] * 140, dtype=object)


def test_test_rows_the_champion_was_fitted_on_are_left_out_and_the_verdict_counts_them(
    risk_app_home: Path, champion_with_a_high_recorded_auc: RunRecord
) -> None:
    """Version 1 trained on 100 and validated on 60 of the challenger's 300 test rows: on all
    rows it would win (it saw them); on the 140 it never saw, the challenger is better."""
    from sklearn.metrics import roc_auc_score

    mine, theirs = _scores(1.5, 2), _memorised(FITTED)
    assert roc_auc_score(Y, theirs) > roc_auc_score(Y, mine)  # all rows favour the champion
    kept = FITTED == ""
    challenger = _record(risk_app_home, "run-2", mine, champion=theirs, fitted_on=FITTED)
    evidence = same_rows_evidence(challenger, NAME, PromotionRule())
    assert evidence is not None and evidence.compared == 140
    assert evidence.excluded == {"train": 100, "validation": 60}
    assert evidence.comparison is not None
    assert evidence.comparison.champion == pytest.approx(roc_auc_score(Y[kept], theirs[kept]))
    assert evidence.comparison.challenger == pytest.approx(roc_auc_score(Y[kept], mine[kept]))
    # The table's row `champion` is what the verdict compares.
    assert evidence.champion["roc_auc"] == pytest.approx(evidence.comparison.champion)
    assert evidence.challenger["roc_auc"] == pytest.approx(evidence.comparison.challenger)

    done = _register(challenger).need("registration")
    assert done.promoted and champion_version(NAME) == 2
    defaults = int(Y[kept].sum())
    assert done.decision.reason.startswith(
        "challenger is better on the same rows: on the 140 of the challenger's 300 test rows that "
        f"champion version 1 never trained or validated on ({defaults} defaults; 160 left out: it "
        "trained on 100 and validated on 60) the challenger's AUC is"
    )
    assert done.decision.details["rows_compared"] == 140
    assert done.decision.details["excluded_fit_rows"] == {"train": 100, "validation": 60}


def test_too_few_rows_the_champion_never_saw_fall_back_to_the_recorded_metrics_saying_why(
    risk_app_home: Path, champion_with_a_high_recorded_auc: RunRecord
) -> None:
    fitted = np.array(["train"] * 200 + ["validation"] * 80 + [""] * 20, dtype=object)
    why = (
        "only 20 of the challenger's 300 test rows are rows champion version 1 was never trained or "
        "validated on (280 left out: it trained on 200 and validated on 80), fewer than the 30 a "
        "same-rows comparison needs"
    )
    challenger = _record(
        risk_app_home, "run-2", _scores(3.0, 2), champion=_memorised(fitted), fitted_on=fitted, fallback=why
    )
    assert CHAMPION_ROW not in challenger.need("evaluation").baselines  # no row the verdict does not use
    evidence = same_rows_evidence(challenger, NAME, PromotionRule())
    assert evidence is not None and evidence.fallback == why and evidence.comparison is None
    done = _register(challenger).need("registration")
    assert done.decision.details["basis"] == "recorded"
    assert "by the recorded test roc_auc of each version, each measured on its own test split" in (
        done.decision.reason
    )
    assert f"({why})" in done.decision.reason


def test_a_champion_without_fit_rows_is_compared_on_all_rows_and_the_overlap_is_called_unknown(
    risk_app_home: Path, champion_with_a_high_recorded_auc: RunRecord
) -> None:
    unknown = np.array(["unknown"] * len(Y), dtype=object)
    challenger = _record(risk_app_home, "run-2", _scores(3.0, 2), champion=_scores(0.5, 3), fitted_on=unknown)
    evidence = same_rows_evidence(challenger, NAME, PromotionRule())
    assert evidence is not None and evidence.compared == 300 and evidence.excluded is None
    done = _register(challenger).need("registration")
    assert done.decision.reason.startswith(
        f"challenger is better on the same rows: on the challenger's 300 test rows ({int(Y.sum())} defaults; "
        "whether champion version 1 trained or validated on any of them is unknown: its artifact "
        "records no fit rows)"
    )


# ------------------------------------------------------------- the benchmark gate on every verdict


def _trailing_the_benchmark(home: Path, run_id: str) -> RunRecord:
    """A challenger better than champion version 1 on the same rows (AUC 0.86 vs 0.62) that
    trails a LightGBM benchmark of the same run (1.00) by far more than the 0.02 margin."""
    record = _record(home, run_id, _scores(1.5, 2), champion=_scores(0.5, 3))
    evaluation = record.need("evaluation")
    baselines = {**evaluation.baselines, "lightgbm": score_predictions(Y, _scores(12.0, 9), 0.5)}
    return record.model_copy(update={"evaluation": evaluation.model_copy(update={"baselines": baselines})})


def _move_the_champion(home: Path) -> str:
    """Another run becomes champion meanwhile: a weak version 3, made champion by hand."""
    other = register_run(_record(home, "run-3", _scores(0.5, 5)), model_name=NAME, benchmark_margin="off")
    version = str(other.need("registration").version)
    mlflow_registry.set_champion(NAME, version, "another analyst's choice", actor="analyst")
    return version


def test_a_verdict_made_again_because_the_champion_moved_still_passes_the_benchmark_gate(
    risk_app_home: Path, champion_with_a_high_recorded_auc: RunRecord
) -> None:
    """The verdict was made against version 1 (better: recommended, no gate yet); the champion
    moves to version 3 before it is recorded: the verdict made again must keep the gate."""
    challenger = _trailing_the_benchmark(risk_app_home, "run-2")
    rule = PromotionRule()
    first = register_run(challenger, model_name=NAME, rule=rule, benchmark_margin="off").need("registration")
    assert first.decision.promote and first.decision.details["champion_version"] == "1"
    moved_to = _move_the_champion(risk_app_home)
    gate = benchmark_verdict(challenger, rule, margin=0.02)
    assert gate is not None and not gate.promote

    decision = mlflow_registry.record_decision(
        NAME, first.version, first.decision, rule, actor="benchmark gate",
        same_rows=same_rows_evidence(challenger, NAME, rule), gate=gate,
    )  # fmt: skip
    assert not decision.promote and decision.reason.startswith(gate.reason)
    assert decision.details["champion_version"] == moved_to
    # The verdict against version 3 (on the recorded AUCs: the rows re-scored version 1) would
    # have promoted it; the gate overrode it, and the details keep both.
    overridden = decision.details["champion_verdict"]
    assert overridden["reason"].startswith("challenger is better: roc_auc")
    assert "the same-rows evaluation scored champion version 1" in overridden["reason"]
    line = [r for r in read_audit_log() if r["to_version"] == str(first.version)][-1]
    assert line["action"] == "reject" and line["reason"] == decision.reason
    assert "; against the champion alone: challenger is better: roc_auc" in decision.reason
    assert line["stale_decision_against"] == "1"
    assert champion_version(NAME) == int(moved_to)


def test_promotion_after_the_champion_moved_passes_the_benchmark_gate(
    risk_app_home: Path, champion_with_a_high_recorded_auc: RunRecord
) -> None:
    challenger = _trailing_the_benchmark(risk_app_home, "run-2")
    registered = register_run(challenger, model_name=NAME, benchmark_margin="off")
    assert registered.need("registration").decision.promote
    moved_to = _move_the_champion(risk_app_home)
    done = promote_run(registered, benchmark_margin=0.02).need("registration")
    assert not done.promoted and "trails the classical benchmark lightgbm" in done.decision.reason
    assert done.decision.details["champion_version"] == moved_to
    assert champion_version(NAME) == int(moved_to)


def test_registration_records_one_verdict_through_the_gate(
    risk_app_home: Path, champion_with_a_high_recorded_auc: RunRecord
) -> None:
    """The champion comparison and the gate are one verdict under one lock: one audit line,
    naming the champion it was made against, so no champion move can come between them."""
    challenger = _trailing_the_benchmark(risk_app_home, "run-2")
    done = _register_with_gate(challenger).need("registration")
    assert not done.promoted and champion_version(NAME) == 1
    assert done.decision.reason.startswith("challenger roc_auc") and "trails the classical benchmark" in (
        done.decision.reason
    )
    assert done.decision.details["champion_version"] == "1"
    assert done.decision.details["champion_verdict"]["basis"] == "same_rows"
    # Both sentences: the analyst who may promote it by hand sees that it beats the champion.
    assert "; against the champion alone: challenger is better on the same rows: on the challenger's 300" in (
        done.decision.reason
    )
    lines = [r for r in read_audit_log() if r["to_version"] == str(done.version)]
    assert [r["action"] for r in lines] == ["reject"]


def _register_with_gate(record: RunRecord) -> RunRecord:
    return promote_run(register_run(record, model_name=NAME, benchmark_margin=0.02))
