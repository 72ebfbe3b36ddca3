"""The packaging stage: the trained weights plus a manifest and model card, as one artifact.

The artifact folder (`risk_app.registry.artifact` format) is written atomically from the run's
`trained/` folder. Its version names the weights, any stacker and the credit policy
(`<method>-<weights sha>-p<policy id>`); its manifest and its MODEL_CARD.md are both rendered
from the run record, so the two cannot disagree. Scoring reads the calibration, the fields left
out of the text and the reference scores for drift from the manifest's `extra` section, which
is `manifest_extra`. The artifact records the applications it was fitted on (train and
validation, `fit_rows.parquet`, read from the run's examples), so a later run that re-scores it
as champion on its own test rows leaves those rows out (`run.evaluate`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from safetensors.torch import load_file
from transformers import AutoTokenizer

from data_contracts.spec import load_spec
from risk_app.evaluate.model_card import render_model_card
from risk_app.hybrid.stage import artifact_parts
from risk_app.registry.artifact import (
    SPEC_FILE,
    code_version,
    fit_rows_frame,
    library_versions,
    save_risk_model,
    sha256_file,
)
from risk_app.run.record import ArtifactFacts, RunRecord
from risk_app.run.stages import EXAMPLES_FILE, REFERENCE_FILE, TOKENIZER_DIR, WEIGHTS_FILE, calibrated_scores


def manifest_extra(record: RunRecord) -> dict[str, Any]:
    """What scoring and audits read from an artifact besides weights and config."""
    training, policy = record.need("training"), record.need("policy")
    evaluation = record.need("evaluation")
    _, p_val, _ = calibrated_scores(record, "validation")
    _, p_test, _ = calibrated_scores(record, "test")
    return {
        "run_id": record.run_id,
        "dataset": record.dataset.name,
        "spec_hash": record.dataset.spec_hash,
        "data_source": record.dataset.source,
        "calibration": policy.calibration,
        "policy": policy.config.model_dump(mode="json"),
        "policy_id": policy.policy_id,
        # Methods that pick parameters by name (freeze) record exactly which ones trained.
        "trainable_parameter_names": training.trainable_parameter_names,
        # Scoring must serialize new applications exactly as training did.
        "exclude_fields": record.dataset.excluded_fields,
        "text_tokens": record.dataset.text_tokens,
        "data_quality_warnings": record.dataset.quality_warnings,
        "fairness_flags": evaluation.fairness_flags,
        # Holdout scores are the reference distribution for score drift (PSI) at scoring time.
        "reference_scores": np.concatenate([p_val, p_test]).round(6).tolist(),
        "run_record": record.model_dump(mode="json", exclude={"artifact", "registration"}),
    }


def package_run(record: RunRecord, spec: Any = None) -> RunRecord:
    """Write `<run_dir>/artifact` from the trained weights and the record; record its identity.

    The artifact's identity (version, code and library versions) is fixed before writing, so
    the model card inside it can name it and the whole folder is written in one atomic step.
    """
    training, policy, evaluation = record.need("training"), record.need("policy"), record.need("evaluation")
    spec = load_spec(spec)
    trained = Path(training.trained_dir)
    weights_sha = sha256_file(trained / WEIGHTS_FILE)
    # A hybrid carries its tabular model and stacker too; its version names the stacker. The
    # policy ends the version: the same weights with another cut-off are another artifact (and
    # so another registered version, `run.register`).
    hybrid = artifact_parts(record)
    scorer = f"{training.config.method}{hybrid.version_tag}-{weights_sha[:12]}{hybrid.version_suffix}"
    identity = ArtifactFacts(
        path=str(Path(record.run_dir) / "artifact"),
        version=f"{scorer}-p{policy.policy_id}",
        weights_sha256=weights_sha,
        code_version=code_version(),
        library_versions=library_versions(),
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )
    packaged = record.model_copy(update={"artifact": identity})
    save_risk_model(
        identity.path,
        method_name=training.config.method,
        method_config=training.method_params,
        train_config=training.config,
        state=load_file(str(trained / WEIGHTS_FILE)),
        tokenizer=AutoTokenizer.from_pretrained(trained / TOKENIZER_DIR),
        threshold=policy.threshold,
        metrics={
            "test": evaluation.test.model_dump(),
            "validation": policy.validation.model_dump(),
            "baselines": {k: v.model_dump() for k, v in evaluation.baselines.items()},
        },
        data_hash=record.dataset.data_hash,
        contract_version=f"{record.dataset.name}@{record.dataset.spec_version}",
        extra={**manifest_extra(record), "version": identity.version, **hybrid.manifest},
        extra_files={
            **hybrid.files,
            SPEC_FILE: spec.to_yaml(),
            "MODEL_CARD.md": render_model_card(packaged),
            REFERENCE_FILE: (Path(record.run_dir) / REFERENCE_FILE).read_bytes(),
        },
        fit_rows=fit_rows_frame(
            pd.read_parquet(Path(record.run_dir) / EXAMPLES_FILE, columns=["source_application_id", "split"])
        ),
    )
    packaged.save()
    return packaged
