"""Helpers that turn risk_app results into Dagster metadata: tables, images, user errors.

Expected failures (a bad file or config, a blocking gate, a drifted batch, an alias moved past
the audit) end a step with `expected_failure`: a `dg.Failure` whose description is one
sentence, so the run's failure reads that sentence first (never Dagster's generic "blocking
asset check failed"). Dagster 1.13's event log still prints the stack of every failed step
under it, `Failure` included (its UI leaves the stack out only for a user-code error with a
cause); an expected outcome that needs no red run (a rejected challenger, nothing to roll back)
is a warning check or an output sentence instead.
"""

from __future__ import annotations

import base64
import functools
import inspect
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import dagster as dg
import pandas as pd

from risk_app.errors import RiskAppError
from risk_app.evaluate.metric_table import metric_spec
from risk_app.registry.reconcile import reconcile_registry
from risk_app.run.render import model_rows, policy_sentence

F = TypeVar("F", bound=Callable[..., Any])


def expected_failure(sentence: str, metadata: Mapping[str, Any] | None = None) -> dg.Failure:
    """The failure of an expected outcome: its sentence as the run's failure, no retries."""
    return dg.Failure(description=sentence, metadata=dict(metadata or {}), allow_retries=False)


def gate(result: dg.AssetCheckResult) -> Iterator[dg.AssetCheckResult]:
    """A blocking check's verdict, and when it fails, the run's failure in the check's own
    sentence (else Dagster fails the step with "1 blocking asset check failed with ERROR
    severity: <asset>: <check>"). The check's evaluation is recorded first, as a plain one's."""
    yield result
    if not result.passed:
        raise expected_failure(result.description or "a blocking check failed", result.metadata)


def user_errors(fn: F) -> F:
    """Show a RiskAppError as one clear failure message instead of a raw traceback.

    Works for functions and generators alike (a generator's body runs only as it is consumed,
    after a plain wrapper would have returned)."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator(*args: Any, **kwargs: Any) -> Any:
            try:
                yield from fn(*args, **kwargs)
            except RiskAppError as exc:
                raise expected_failure(str(exc)) from None

        return generator  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RiskAppError as exc:
            raise expected_failure(str(exc)) from None

    return wrapper  # type: ignore[return-value]


def reconcile_first(log: Any, name: str) -> None:
    """Finish what a killed process left in registry `name` before a step reads or moves it (as
    the CLI does at the start of its registry commands), and log what was repaired."""
    said = reconcile_registry(name).sentence(name)
    if said:
        log.warning(said)


def png(path: str | Path, title: str = "") -> dg.MetadataValue:
    """An image embedded in markdown, so it shows in the asset's materialization page."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return dg.MetadataValue.md(
        f"{f'**{title}**' if title else ''}\n\n![{title}](data:image/png;base64,{data})"
    )


def table(df: pd.DataFrame, max_rows: int = 20) -> dg.MetadataValue:
    # Empty cells (no reason codes for an approval) read better blank than "nan".
    head = df.head(max_rows).astype(object)
    return dg.MetadataValue.md(head.where(head.notna(), "").to_markdown(index=False))


def scalars(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Numbers and short strings only: Dagster shows them as typed metadata and plots numbers."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, (bool, str)):
            out[f"{prefix}{key}"] = value
        elif isinstance(value, (int, float)):
            out[f"{prefix}{key}"] = (
                dg.MetadataValue.float(float(value)) if isinstance(value, float) else value
            )
    return out


def validation_counts(result: Any) -> dict[str, Any]:
    """Rows in, valid and quarantined (in = valid + quarantined) and the quarantine rate."""
    return {
        "rows_in": result.n_in,
        "rows_valid": result.n_valid,
        "rows_quarantined": result.n_quarantined,
        "quarantine_rate": dg.MetadataValue.float(result.n_quarantined / max(result.n_in, 1)),
    }


def _metric_values(values: Mapping[str, float], prefix: str = "") -> dict[str, Any]:
    """Metrics rounded as reports show them (the metric table's decimals)."""
    return {
        f"{prefix}{name}": dg.MetadataValue.float(round(float(value), metric_spec(name).decimals))
        for name, value in values.items()
    }


def _training_metadata(record: Any) -> dict[str, Any]:
    training = record.need("training")
    return {
        "method": training.config.method,
        "base_model": training.config.base_model,
        "method_params": dg.MetadataValue.json(training.method_params.model_dump(mode="json")),
        "best_val_auc": dg.MetadataValue.float(round(training.best_val_auc, 4)),
        "trainable_percent": dg.MetadataValue.float(round(training.trainable_percent, 4)),
        "wall_seconds": dg.MetadataValue.float(round(training.wall_seconds, 1)),
        "tokens_per_second": dg.MetadataValue.float(round(training.tokens_per_second, 1)),
        "history": table(pd.DataFrame([e.model_dump() for e in training.history]).round(4)),
        "texts_over_max_length": training.texts_over_max_length,
        "free_text": dg.MetadataValue.json(
            {column: stats.model_dump() for column, stats in record.dataset.text_columns.items()}
        ),
        "run_dir": dg.MetadataValue.path(record.run_dir),
        **({"ppo_guard": dg.MetadataValue.text(training.ppo_guard.sentence())} if training.ppo_guard else {}),
    }


def _strategy_with_choice(policy: Any) -> pd.DataFrame:
    """The strategy table with the chosen cut-off as its own marked row, in cut-off order."""
    rows = [{**r.model_dump(), "chosen": ""} for r in policy.strategy]
    val = policy.validation
    rows.append({
        "cutoff": policy.threshold, "approval_rate": val.approval_rate,
        "bad_rate_approved": val.bad_rate_approved, "defaults_caught": val.recall,
        "expected_cost": policy.expected_cost, "chosen": "◀ chosen",
    })  # fmt: skip
    return pd.DataFrame(rows).sort_values("cutoff", kind="stable").round(4)


def _policy_metadata(record: Any) -> dict[str, Any]:
    policy = record.need("policy")
    return {
        "threshold": dg.MetadataValue.float(round(policy.threshold, 4)),
        "policy": dg.MetadataValue.text(policy_sentence(record)),
        "calibration": dg.MetadataValue.json(
            {k: round(v, 4) if isinstance(v, float) else v for k, v in policy.calibration.items()}
        ),
        "objective": policy.config.objective,
        "costs": f"missed default {policy.costs[0]:g} : declined good {policy.costs[1]:g}",
        "expected_cost": dg.MetadataValue.float(round(policy.expected_cost, 4)),
        "strategy": table(_strategy_with_choice(policy), max_rows=30),
        "grade_bands": dg.MetadataValue.json(policy.config.grade_bands),
        **_metric_values(policy.validation.values(), prefix="val_"),
    }


def _evaluation_metadata(record: Any) -> dict[str, Any]:
    evaluation = record.need("evaluation")
    rows = pd.DataFrame([{"model": name, **values} for name, values in model_rows(record)])
    lift = table(pd.read_csv(evaluation.lift_table).round(4)) if evaluation.lift_table else ""
    return {
        **_metric_values(evaluation.test.values(), prefix="test_"),
        "comparison": table(rows.round(4)),
        "ece": dg.MetadataValue.float(round(evaluation.ece, 4)),
        "top_decile_lift": dg.MetadataValue.float(round(evaluation.top_decile_lift, 4)),
        "lift_table": lift,
        "fairness_flags": dg.MetadataValue.json(evaluation.fairness_flags),
        **{name: png(path, name.replace("_", " ")) for name, path in evaluation.plots.items()},
    }


def _artifact_metadata(record: Any) -> dict[str, Any]:
    artifact = record.need("artifact")
    card = Path(artifact.path) / "MODEL_CARD.md"
    return {
        "artifact_dir": dg.MetadataValue.path(artifact.path),
        "version": artifact.version,
        "weights_sha256": artifact.weights_sha256,
        "code_version": artifact.code_version,
        "model_card": dg.MetadataValue.md(card.read_text(encoding="utf-8")),
    }


def _registration_metadata(record: Any) -> dict[str, Any]:
    registration = record.need("registration")
    # A version of the same weights with the policy chosen again says which one it follows.
    rechosen = registration.rechosen_from
    return {
        "model_name": registration.model_name,
        "version": registration.version,
        "policy_id": record.need("policy").policy_id,
        **({"policy_rechosen_from": rechosen} if rechosen is not None else {}),
        "promote": registration.decision.promote,
        "reason": dg.MetadataValue.text(registration.decision.reason),
    }


_STAGE_METADATA: dict[str, Callable[[Any], dict[str, Any]]] = {
    "training": _training_metadata,
    "policy": _policy_metadata,
    "evaluation": _evaluation_metadata,
    "artifact": _artifact_metadata,
    "registration": _registration_metadata,
}


def record_metadata(record: Any, stage: str) -> dict[str, Any]:
    """The Dagster metadata of one stage of a run, rendered from the run record only; `model`
    names it as the CLI summary and the card do (`llm:lora`, `hybrid:lora+logistic`)."""
    return {
        "run_id": record.run_id,
        "dataset": record.dataset.name,
        "model": record.model_label,
        **_STAGE_METADATA[stage](record),
    }
