"""The hybrid stage of a run: stack the fine-tuned LLM with LightGBM, between fine-tuning and policy.

    record, _ = fine_tune(record, examples, train_config)
    record = stack_hybrid(record, valid, examples, HybridConfig(stacker="logistic"), spec=spec)
    record = choose_credit_policy(record, policy_config)       # on the stacked scores
    record = evaluate_run(record, valid, examples, spec=spec)   # hybrid beside `llm` and the baselines
    record = package_run(record, spec=spec)                     # the artifact carries hybrid/

`stack_hybrid` reads the LLM's raw validation/test scores that fine-tuning saved, calibrates
them on validation, fits LightGBM on the train split from the data set's spec (the evaluation's
own `lightgbm` baseline, same seed), and fits the stacker on validation with cross-fitting
(`risk_app/evaluate/hybrid.py`). It writes the stacked scores — out-of-fold on validation, so
the policy's cut-off is chosen on honest scores — as the run's predictions
(`stages.read_predictions` reads them when the record has a hybrid section), with the LLM's
and LightGBM's own PDs beside them, and the fitted parts under `<run>/hybrid/`. The later
stages need nothing else: the policy calibrates and cuts the stacked PD, the evaluation adds
the LLM alone as the row `llm_alone` (`llm_alone_on_test`) and packaging copies the parts into the
artifact (`artifact_parts`).

With `HybridConfig(stacker="tabular_only")` the "stacked" PD is LightGBM's alone (nothing is
fitted on validation), so the policy, evaluation and packaging deploy the classical model by
itself, `tabular:lightgbm`, with the LLM still trained and reported beside it as `llm_alone`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from data_contracts.spec import load_spec
from risk_app.atomic import atomic_dir
from risk_app.evaluate.calibration import fit_calibrator
from risk_app.evaluate.hybrid import fit_hybrid
from risk_app.evaluate.metric_table import Metrics
from risk_app.evaluate.metrics import score_predictions
from risk_app.hybrid.config import (
    HYBRID_DIR,
    PREDICTIONS_FILE,
    STACKER_FILE,
    HybridConfig,
    HybridFacts,
)
from risk_app.hybrid.tabular import BOOSTER_FILE, fit_tabular, tabular_columns
from risk_app.registry.artifact import sha256_file
from risk_app.run.dataset import structured_splits
from risk_app.run.record import RunRecord
from risk_app.run.stages import baseline_policy_threshold


def _llm_raw(record: RunRecord) -> pd.DataFrame:
    """The LLM's raw validation/test scores as fine-tuning saved them."""
    frame = pd.read_parquet(record.need("training").predictions_path)
    return frame.assign(application_id=frame["application_id"].astype(str))


def _in_order(frame: pd.DataFrame, ids: pd.Series) -> pd.DataFrame:
    """Rows of a structured split in the order of the predictions' application ids."""
    order = pd.Index(frame["application_id"].astype(str)).get_indexer(ids)
    return frame.iloc[order].reset_index(drop=True)


def check_hybrid(config: HybridConfig | str | None, spec: Any = None) -> HybridConfig:
    """The parsed option, refused (one clear line) when the data set has no tabular features."""
    config = HybridConfig.parse(config)
    if config.enabled:
        tabular_columns(load_spec(spec))
    return config


def stack_hybrid(
    record: RunRecord,
    valid: pd.DataFrame,
    examples: pd.DataFrame,
    config: HybridConfig | None,
    *,
    spec: Any = None,
) -> RunRecord:
    """Fit LightGBM and the cross-fitted stacker; the stacked scores become the run's predictions."""
    config = HybridConfig.parse(config)
    if not config.enabled:
        updated = record.model_copy(update={"hybrid": None})
        updated.save()
        return updated
    spec = load_spec(spec)
    columns = tabular_columns(spec)  # a data set with no tabular features is refused here
    raw = _llm_raw(record)
    val, test = raw.loc[raw["split"] == "validation"], raw.loc[raw["split"] == "test"]
    y_val = val["default"].to_numpy(np.int64)
    frames = structured_splits(valid, examples)
    tabular = fit_tabular(frames["train"], spec, seed=record.need("training").config.seed)
    calibrator = fit_calibrator(config.llm_calibration, y_val, val["p_raw"].to_numpy(float))
    parts = {"validation": val, "test": test}
    p_llm = {s: calibrator.transform(part["p_raw"].to_numpy(float)) for s, part in parts.items()}
    p_tab = {s: tabular.predict(_in_order(frames[s], part["application_id"])) for s, part in parts.items()}
    hybrid = fit_hybrid(
        y_val, p_llm["validation"], p_tab["validation"], kind=config.stacker, n_folds=config.n_folds
    )
    stacked = {"validation": hybrid.val_oof, "test": hybrid.predict(p_llm["test"], p_tab["test"])}

    run_dir = Path(record.run_dir)
    predictions = pd.concat(
        [part.assign(p_raw=stacked[s], p_llm=p_llm[s], p_tabular=p_tab[s]) for s, part in parts.items()],
        ignore_index=True,
    )
    predictions.to_parquet(run_dir / PREDICTIONS_FILE, index=False)
    stacker = {
        "stacker": hybrid.params,
        "llm_calibration": calibrator.to_dict(),
        "config": config.model_dump(),
    }
    with atomic_dir(run_dir / HYBRID_DIR) as tmp:
        for name, text in {**tabular.to_files(), STACKER_FILE: json.dumps(stacker, indent=2)}.items():
            (tmp / name).write_text(text, encoding="utf-8")
    facts = HybridFacts(
        config=config,
        stacker=hybrid.params,
        llm_calibration=calibrator.to_dict(),
        tabular_features=columns,
        val_auc_oof=hybrid.val_auc_oof,
        val_auc_llm=float(roc_auc_score(y_val, p_llm["validation"])),
        val_auc_tabular=float(roc_auc_score(y_val, p_tab["validation"])),
        predictions_path=str(run_dir / PREDICTIONS_FILE),
        model_dir=str(run_dir / HYBRID_DIR),
    )
    updated = record.model_copy(
        update={"hybrid": facts, "policy": None, "evaluation": None, "artifact": None}
    )
    updated.save()
    return updated


def llm_alone_on_test(record: RunRecord, test_ids: list[str]) -> tuple[Metrics, np.ndarray]:
    """The LLM alone (calibrated, before stacking) on the test rows, cut by the run's policy."""
    frame = pd.read_parquet(record.need("hybrid").predictions_path)
    frame = frame.assign(application_id=frame["application_id"].astype(str))
    val, test = frame.loc[frame["split"] == "validation"], frame.loc[frame["split"] == "test"]
    test = test.set_index("application_id").loc[[str(i) for i in test_ids]]
    threshold = baseline_policy_threshold(
        record, val["default"].to_numpy(np.int64), val["p_llm"].to_numpy(float)
    )
    p_test = test["p_llm"].to_numpy(float)
    return score_predictions(test["default"].to_numpy(np.int64), p_test, threshold), p_test


@dataclass(frozen=True)
class HybridParts:
    """What packaging adds for a hybrid: a manifest entry, files, and a version tag and suffix."""

    manifest: dict[str, Any] = field(default_factory=dict)  # {"hybrid": {...}} or {}
    files: dict[str, bytes] = field(default_factory=dict)  # artifact-relative name -> content
    version_tag: str = ""  # "+logistic": the version names the stacker beside the method
    # "-<sha of the stacker file>" (tabular-only: of the booster): a refitted part is a new version
    version_suffix: str = ""


def artifact_parts(record: RunRecord) -> HybridParts:
    """The run's hybrid as artifact content; empty parts for a run without one.

    The manifest entry names each file with its sha256, so loading checks them like the weights."""
    if record.hybrid is None:
        return HybridParts()
    facts: HybridFacts = record.hybrid
    folder = Path(facts.model_dir)
    names = sorted(p.name for p in folder.iterdir() if p.is_file())
    hashes = {f"{HYBRID_DIR}/{name}": sha256_file(folder / name) for name in names}
    tabular = facts.config.tabular_only  # its deployed part is the booster, not the stacker
    entry = {
        "stacker": facts.stacker,
        "llm_calibration": facts.llm_calibration,
        "config": facts.config.model_dump(),
        "tabular_features": facts.tabular_features,
        "val_auc_oof": facts.val_auc_oof,
        "val_auc_llm": facts.val_auc_llm,
        "val_auc_tabular": facts.val_auc_tabular,
        "files": hashes,
    }
    return HybridParts(
        manifest={"hybrid": entry},
        files={f"{HYBRID_DIR}/{name}": (folder / name).read_bytes() for name in names},
        version_tag=f"+{facts.config.stacker}",
        version_suffix=f"-{hashes[f'{HYBRID_DIR}/{BOOSTER_FILE if tabular else STACKER_FILE}'][:6]}",
    )


def hybrid_metadata(record: RunRecord) -> dict[str, Any]:
    """Plain values describing the run's hybrid for reports (Dagster metadata)."""
    if record.hybrid is None:
        return {"hybrid": "none"}
    facts: HybridFacts = record.hybrid
    return {
        "hybrid": facts.config.stacker,
        "hybrid_val_auc_oof": round(facts.val_auc_oof, 4),
        "hybrid_val_auc_llm": round(facts.val_auc_llm, 4),
        "hybrid_val_auc_lightgbm": round(facts.val_auc_tabular, 4),
        "hybrid_stacker": json.dumps(facts.stacker),
    }
