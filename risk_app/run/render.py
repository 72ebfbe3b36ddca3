"""Renderings of the run record: MLflow params/metrics/tags and the CLI's summary table.

Each is one function of the `RunRecord`; the model card (`evaluate.model_card`) and the
Dagster metadata (`pipelines.metadata.record_metadata`) are the other two. Metric names come
from the metric table, so a new metric reaches every rendering without an edit here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from risk_app.evaluate.metric_table import HEADLINE_METRICS, format_metric
from risk_app.hybrid.config import LLM_ROW
from risk_app.registry.mlflow_resolve import no_champion_advice
from risk_app.run.record import RegistrationFacts, RunRecord

TRAINING_METRICS = (
    "best_val_auc",
    "best_epoch",
    "epochs_run",
    "trainable_params",
    "total_params",
    "trainable_percent",
    "wall_seconds",
    "peak_memory_mb",
    "tokens_per_second",
)


@dataclass(frozen=True)
class MlflowPayload:
    """What a run logs to MLflow: flat params, numeric metrics and string tags."""

    params: dict[str, Any]
    metrics: dict[str, float]
    tags: dict[str, str]


def mlflow_run_name(run_id: str) -> str:
    """The MLflow run's name, short enough for MLflow's Run Name column (about 22 characters):
    the run id without its time stamp (`lora-3f9a1c` for `20261207T153000Z-lora-3f9a1c`), and a
    Dagster-launched run as method and the short run id the Dagster UI shows
    (`freeze-023f7d77` for `freeze-dagster-023f7d770d99`). The run's start time is MLflow's
    Created column, the full id its `run_id` tag."""
    stamp, _, rest = run_id.partition("-")
    is_stamp = len(stamp) == 16 and stamp.endswith("Z") and stamp[8] == "T" and stamp[:8].isdigit()
    name = rest if is_stamp and rest else run_id
    method, dagster, dagster_run = name.partition("-dagster-")
    return f"{method}-{dagster_run[:8]}" if dagster and dagster_run else name


def model_rows(record: RunRecord) -> list[tuple[str, dict[str, float]]]:
    """(model name, test metrics) for the fine-tuned model first, then each baseline."""
    evaluation = record.need("evaluation")
    # A hybrid run's model is the LLM stacked with LightGBM; its LLM alone (the row `llm_alone`)
    # comes right after it, then the baselines.
    beside = (LLM_ROW,) if record.hybrid is not None else ()
    names = [n for n in beside if n in evaluation.baselines]
    names += [n for n in evaluation.baselines if n not in names]
    return [(record.model_label, evaluation.test.values())] + [
        (name, evaluation.baselines[name].values()) for name in names
    ]


def mlflow_payload(record: RunRecord) -> MlflowPayload:
    """Params (training, method, policy), metrics (test, validation, baselines, training), tags."""
    training, policy = record.need("training"), record.need("policy")
    evaluation = record.need("evaluation")
    metrics: dict[str, float] = {f"test_{k}": v for k, v in evaluation.test.values().items()}
    metrics.update({f"val_{k}": v for k, v in policy.validation.values().items()})
    for name, values in evaluation.baselines.items():
        metrics.update({f"{name}_{k}": v for k, v in values.values().items()})
    summary = training.model_dump()
    metrics.update({f"train_{k}": float(summary[k]) for k in TRAINING_METRICS})
    metrics.update(
        {"threshold": policy.threshold, "ece": evaluation.ece, "top_decile_lift": evaluation.top_decile_lift}
    )
    params = {
        "train": training.config.model_dump(mode="json"),
        "method_params": training.method_params.model_dump(mode="json"),
        "policy": policy.config.model_dump(mode="json"),
        "dataset": record.dataset.name,
        "split": f"{record.dataset.split_strategy} seed {record.dataset.split_seed}",
    }
    tags = {
        "run_id": record.run_id,
        # The credit policy this version decides by, as scoring records it beside each batch.
        "policy_id": policy.policy_id,
        "policy": f"cut-off PD >= {policy.threshold:.4f} ({policy.config.describe()})",
        "dataset": record.dataset.name,
        "spec_hash": record.dataset.spec_hash,
        "data_hash": record.dataset.data_hash,
        # MLflow's UI shows the entry point as the run's source; a registration is risk-app's.
        "mlflow.source.name": "risk-app",
    }
    if training.ppo_guard is not None:
        tags["ppo_guard_kept"] = training.ppo_guard.kept
    if record.artifact:
        tags.update(code_version=record.artifact.code_version, artifact_version=record.artifact.version)
    if record.federation is not None:
        fed = record.federation
        params["federation"] = fed.model_dump(mode="json", exclude={"lender_test_auc", "refused"})
        tags.update(
            federated_lenders=",".join(fed.lenders),
            federated_rounds=str(fed.rounds_completed),
            federated_strategy=fed.strategy,
            federated_epsilon="none" if fed.epsilon is None else f"{fed.epsilon:.4g}",
        )
        metrics.update({f"lender_test_auc_{name}": auc for name, auc in fed.lender_test_auc.items()})
    return MlflowPayload(params=params, metrics=metrics, tags=tags)


def summary_rows(record: RunRecord, metrics: tuple[str, ...] = HEADLINE_METRICS) -> list[dict[str, str]]:
    """The CLI's 'test metrics, same split' table: one row per model, formatted by the table;
    the headline metrics by default, so it fits a terminal (the card and MLflow carry all)."""
    return [
        {"model": name, **{k: format_metric(k, values[k]) for k in metrics}}
        for name, values in model_rows(record)
    ]


def policy_sentence(record: RunRecord) -> str:
    """The chosen cut-off and what it does on validation, in plain words."""
    policy = record.need("policy")
    val = policy.validation
    return (
        f"cut-off PD >= {policy.threshold:.4f} ({policy.config.describe()}): "
        f"approves {val.approval_rate:.1%} of validation applicants, "
        f"bad rate among approved {val.bad_rate_approved:.1%}, "
        f"catches {val.recall:.1%} of defaults, expected cost {policy.expected_cost:.3f} per application"
    )


def champion_sentence(registration: RegistrationFacts, champion: int | None) -> str:
    """What promotion did, in one sentence: the new champion, the champion that stays, or (no
    champion at all, e.g. a first version the benchmark gate held back) what to do next."""
    version, reason = registration.version, registration.decision.reason
    if registration.promoted:
        return f"version {version} is the new champion: {reason}"
    if champion is None:
        advice = no_champion_advice(registration.model_name, version)
        return f"no champion yet: version {version} was not promoted ({reason}); {advice}"
    return f"version {champion} stays champion; version {version} was not promoted: {reason}"


def training_notes(record: RunRecord) -> list[str]:
    """Sentences about how training ended that a reader must not miss (today: the rlhf guard
    saying whether PPO's policy or the supervised one it started from was kept)."""
    guard = record.need("training").ppo_guard
    return [guard.sentence()] if guard is not None else []
