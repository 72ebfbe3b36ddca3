"""MODEL_CARD.md: the human-readable description that travels with every packaged model.

The card is one function of the run's typed record (`risk_app.run.record.RunRecord`), so it
never disagrees with the manifest, MLflow or the Dagster metadata, which are rendered from the
same record. What the data set's spec says about itself (description, source, licence, its
known limitations, its protected attributes) comes from the record's dataset section; nothing
here names a data set or a column.

    from risk_app.evaluate.model_card import render_model_card
    text = render_model_card(record)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from risk_app.evaluate.metric_table import METRICS, format_metric
from risk_app.evaluate.metrics import metrics_table
from risk_app.evaluate.text_baselines import TEXT_BASELINE_SUMMARY
from risk_app.hybrid.config import LLM_ROW

if TYPE_CHECKING:
    from risk_app.run.record import DatasetFacts, EvaluationFacts, RunRecord

INTENDED_USE = (
    "Decision support for credit analysts: the model estimates the probability that a loan "
    "application defaults and ranks applications for review. It is not to be the sole basis "
    "for an adverse action (declining or repricing credit). A declined applicant is owed "
    "specific reasons (see the occlusion reason codes) and a human review of the decision. "
    "Out of scope: consumer-facing automated decisions, populations unlike the training data, "
    "and any use of the protected attributes to set terms."
)

GENERAL_LIMITATIONS = (
    "The language model scores a text serialization of each application. Its output can "
    "change with field order, wording or value formatting; scoring must use exactly the "
    "template it was trained on (the data set's spec), and augmentation only partly "
    "covers this sensitivity.",
    "Test metrics come from one held-out split; on a few hundred applications they carry wide "
    "confidence intervals.",
)

ABOUT_LLM = (
    "Probability-of-default classifier for loan applications, fine-tuned from a decoder "
    "language model that reads each application as text."
)
ABOUT_HYBRID = (
    "Probability-of-default model for loan applications: a hybrid that stacks two parts, the "
    "calibrated PD of a decoder language model fine-tuned to read each application as text and "
    "the PD of LightGBM on the application's tabular columns."
)

ABOUT_TABULAR = (
    "Probability-of-default model for loan applications: LightGBM on the application's tabular "
    "columns, deployed by itself because it scored as well as or better than the language model "
    "trained in the same run (reported beside it)."
)

QUANTUM_LIMITATION = (
    "The classification head is a variational quantum circuit executed on a classical "
    "simulator (PennyLane), not on quantum hardware. It offers no established accuracy or "
    "speed advantage; results on real, noisy devices would differ."
)


def _fitted(params: dict[str, Any]) -> str:
    """A fitted calibrator's or stacker's parameters as `k=v` (4 significant digits)."""
    kept = {k: v for k, v in params.items() if k not in ("kind", "steps")}
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in kept.items())


def _stacker_formula(params: dict[str, Any]) -> str:
    """The fitted stacker as the formula it applies to the two parts' PDs."""
    kind = params.get("kind")
    if kind == "logistic":
        return (
            f"PD = sigmoid({params['intercept']:.4g} + {params['coef_llm']:.4g} * logit(PD_llm) "
            f"+ {params['coef_gbm']:.4g} * logit(PD_lightgbm))"
        )
    if kind == "convex":
        w = float(params["weight_llm"])
        return f"PD = {w:.4g} * PD_llm + {1 - w:.4g} * PD_lightgbm"
    return _fitted(params)


def _hybrid_section(record: RunRecord) -> list[str]:
    """What the two parts of a hybrid are, how they are stacked and how each did on validation."""
    facts, training = record.need("hybrid"), record.need("training")
    llm_kind = facts.llm_calibration.get("kind", facts.config.llm_calibration)
    return [
        "## The hybrid: two parts, stacked",
        "",
        f"- **Model:** `{record.model_label}`",
        f"- **Part 1, the language model:** {training.config.base_model} fine-tuned with "
        f"{training.config.method} (details below); its PD calibrated by {llm_kind} on validation "
        f"({_fitted(facts.llm_calibration)}).",
        f"- **Part 2, LightGBM** on the data set's {len(facts.tabular_features)} tabular columns "
        "(the spec's categories and numbers, fitted on the train split exactly like the "
        "`lightgbm` baseline): " + ", ".join(f"`{c}`" for c in facts.tabular_features) + ".",
        f"- **Stacker:** {facts.config.stacker}, fitted on validation with {facts.config.n_folds}-fold "
        f"cross-fitting: {_stacker_formula(facts.stacker)}.",
        f"- **Validation ROC AUC (cross-fitted):** hybrid {facts.val_auc_oof:.4f}, language model "
        f"alone {facts.val_auc_llm:.4f}, LightGBM alone {facts.val_auc_tabular:.4f}.",
        "",
        "The credit policy below calibrates and cuts the stacked PD; the test table shows the "
        "language model alone (its calibrated PD, cut by the same policy) beside it.",
    ]


def _tabular_section(record: RunRecord) -> list[str]:
    """What a tabular-only run deploys (LightGBM alone) and the language model trained beside it."""
    facts, training = record.need("hybrid"), record.need("training")
    return [
        "## The deployed model: LightGBM alone",
        "",
        f"- **Model:** `{record.model_label}`",
        f"- **LightGBM** on the data set's {len(facts.tabular_features)} tabular columns (the spec's "
        "categories and numbers, fitted on the train split exactly like the `lightgbm` baseline): "
        + ", ".join(f"`{c}`" for c in facts.tabular_features)
        + ".",
        f"- **Not deployed, reported beside it:** {training.config.base_model} fine-tuned with "
        f"{training.config.method} (details below), the row `llm_alone` of the test table.",
        f"- **Validation ROC AUC:** LightGBM {facts.val_auc_tabular:.4f}, language model "
        f"{facts.val_auc_llm:.4f}.",
        "",
        "The credit policy below calibrates and cuts LightGBM's PD; scoring and reason codes "
        "(each field set missing in the tabular features) need no language model.",
    ]


def _details_section(record: RunRecord) -> list[str]:
    training = record.need("training")
    config = training.config
    method_params = training.method_params.model_dump(mode="json")
    lines = [
        "## Model details",
        "",
        f"- **Run / version:** {record.run_id}"
        + (f" / {record.artifact.version}" if record.artifact else ""),
        f"- **Fine-tuning method:** {config.method}",
        "- **Method parameters:** " + ", ".join(f"{k}={v}" for k, v in method_params.items()),
        f"- **Base model:** {config.base_model}",
        f"- **Trainable parameters:** {training.trainable_params:,} of {training.total_params:,} "
        f"({training.trainable_percent / 100:.2%})",
        f"- **Training settings:** epochs={config.epochs}, learning_rate={config.learning_rate}, "
        f"batch_size={config.batch_size}, max_length={config.max_length}, seed={config.seed}; "
        f"best epoch {training.best_epoch} of {training.epochs_run}",
    ]
    if training.ppo_guard is not None:
        lines.append(f"- **RLHF guard:** {training.ppo_guard.sentence()}")
    if record.artifact:
        lines += [
            f"- **Code version:** {record.artifact.code_version}",
            "- **Library versions:** "
            + ", ".join(f"{k} {v}" for k, v in record.artifact.library_versions.items()),
            f"- **Created:** {record.artifact.created_at}",
        ]
    policy = record.policy
    if policy:
        which = "the stacked PD's calibration" if record.hybrid else "PD calibration"
        lines.append(
            f"- **{which[0].upper() + which[1:]} (fitted on validation):** "
            f"{policy.calibration.get('kind')} ({_fitted(policy.calibration)})"
        )
    excluded = record.dataset.excluded_fields
    lines.append("- **Fields left out of the text:** " + (", ".join(f"`{f}`" for f in excluded) or "none"))
    return lines


def _data_section(dataset: DatasetFacts) -> list[str]:
    lines = [
        "## Data",
        "",
        f"- **Data set:** {dataset.name} (spec v{dataset.spec_version}"
        + (f", sha256 {dataset.spec_hash[:12]}" if dataset.spec_hash else "")
        + ")",
    ]
    if dataset.description:
        lines.append(f"- **Description:** {dataset.description}")
    if dataset.origin:
        lines.append(
            f"- **Origin:** {dataset.origin}" + (f" (licence: {dataset.licence})" if dataset.licence else "")
        )
    lines += [
        f"- **File:** {dataset.source or 'not recorded'}",
        f"- **Data hash:** {dataset.data_hash}",
        f"- **Target:** {dataset.target}",
        f"- **Split:** {dataset.split_strategy} (seed {dataset.split_seed}); "
        + ", ".join(f"{k} {v}" for k, v in dataset.rows.items()),
    ]
    if dataset.augmented_rows:
        lines.append(f"- **Augmented training rows:** {dataset.augmented_rows} (text augmentation)")
    return lines + _free_text_lines(dataset)


def _free_text_lines(dataset: DatasetFacts) -> list[str]:
    """What cleaning and the budgets did to each free-text column the model reads."""
    if not dataset.text_columns:
        return []
    lines = [
        "",
        "Free text the model reads (cleaned by the spec's rules; a text over its budget is cut on a word "
        f"boundary and ends with '…'; tokens counted with: {dataset.text_tokens}):",
        "",
        "| column | rows | cleaned | cut at max_chars | cut at max_tokens | empty | tokens mean / max "
        "| budget | place |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for column, s in dataset.text_columns.items():
        budget = f"{s.max_chars} chars" + (f", {s.max_tokens} tokens" if s.max_tokens else "")
        lines.append(
            f"| `{column}` | {s.rows} | {s.cleaned} | {s.cut_chars} | {s.cut_tokens} | {s.empty} | "
            f"{s.tokens_mean:.1f} / {s.tokens_max} | {budget} | {s.position} |"
        )
    return lines


def _metrics_section(record: RunRecord) -> list[str]:
    evaluation = record.need("evaluation")
    baselines = dict(evaluation.baselines)
    if record.hybrid is None:
        rows = {"this model": evaluation.test.model_dump()}
    else:  # the hybrid, then its language model alone right beside it, then the baselines
        rows = {f"this model ({record.model_label})": evaluation.test.model_dump()}
        if LLM_ROW in baselines:
            role = "trained, not deployed" if record.hybrid.config.tabular_only else "before stacking"
            rows[f"{LLM_ROW}: llm:{record.method} {role}"] = baselines.pop(LLM_ROW).model_dump()
    rows.update({f"baseline: {name}": m.model_dump() for name, m in baselines.items()})
    (tn, fp), (fn, tp) = evaluation.test.confusion_matrix
    return [
        "## Performance (held-out test set)",
        "",
        metrics_table(rows).rstrip("\n"),
        "",
        *_text_baseline_lines(evaluation),
        f"Expected calibration error {format_metric('brier', evaluation.ece)}; "
        f"top-decile lift {evaluation.top_decile_lift:.2f}.",
        "",
        "Confusion matrix at the decision threshold (rows: actual, columns: decision):",
        "",
        "| | approve | decline |",
        "|---|---:|---:|",
        f"| good | {tn} | {fp} |",
        f"| default | {fn} | {tp} |",
    ]


def _text_baseline_lines(evaluation: EvaluationFacts) -> list[str]:
    """What the baselines that read the free text are, and why any of them is missing."""
    reading = [name for name in TEXT_BASELINE_SUMMARY if name in evaluation.baselines]
    if not reading and not evaluation.baseline_notes:
        return []
    lines = ["Baselines that read the free-text columns too (every part fitted on the training rows only):"]
    lines += [f"- `{name}`: {TEXT_BASELINE_SUMMARY[name]}" for name in reading]
    lines += [f"- `{name}`: {note}" for name, note in evaluation.baseline_notes.items()]
    return [*lines, ""]


def _policy_section(record: RunRecord) -> list[str]:
    policy = record.need("policy")
    val = policy.validation
    missed, declined = policy.costs
    lines = [
        "## Credit policy",
        "",
        f"Decline (refer to an analyst) when P(default) >= **{policy.threshold:.4f}**, chosen by "
        f"{policy.config.describe()} (never on the test split), with a missed default costing "
        f"{missed:g} and a wrongly declined good applicant {declined:g}. On validation this approves "
        f"{val.approval_rate:.1%} of applicants with a default rate of {val.bad_rate_approved:.1%} "
        f"among those approved, catches {val.recall:.1%} of the defaults, at an expected cost of "
        f"{policy.expected_cost:.3f} per application.",
        "",
        "Grades (upper PD bound): "
        + ", ".join(f"{name} < {bound:.0%}" for name, bound in list(policy.config.grade_bands.items())[:-1])
        + f", {list(policy.config.grade_bands)[-1]} above.",
        "",
        "The trade-off on validation (declining PD >= cut-off):",
        "",
        "| cut-off | approval rate | bad rate (approved) | defaults caught | expected cost |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in policy.strategy:
        lines.append(
            f"| {row.cutoff:.4f} | {row.approval_rate:.1%} | {row.bad_rate_approved:.1%} | "
            f"{row.defaults_caught:.1%} | {row.expected_cost:.3f} |"
        )
    return lines


def _fairness_section(fairness: dict[str, Any]) -> list[str]:
    lines = ["## Fairness", ""]
    if not fairness:
        return [*lines, "No fairness assessment was made for this run. Run one before any use in decisions."]
    if fairness.get("assessable") is False:
        return [
            *lines,
            f"{fairness.get('reason', 'Fairness not assessable.')} The approval rates of protected groups "
            "could not be compared, so this model's disparate impact is unknown: assess it on data that "
            "records the protected attributes before any use in decisions.",
        ]
    limit = float(fairness.get("air_limit", 0.8))
    lines += [
        f"Approval = P(default) < threshold. Adverse impact ratio (AIR) = a group's approval rate / "
        f"the most-favoured group's; AIR < {limit:.2f} fails the four-fifths rule. "
        f"{fairness.get('interval_method', 'No interval was computed for this record')}.",
        "",
        "| group | value | n | approval rate | AIR | AIR 95% interval | decline-rate diff vs reference "
        "| flagged |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in fairness.get("rows", []):
        air, low, high = row.get("adverse_impact_ratio"), row.get("air_ci_low"), row.get("air_ci_high")
        # Older records have no interval; the most favoured group has none (it is the denominator).
        interval = "n/a" if low is None or high is None else f"{low:.2f} to {high:.2f}"
        lines.append(
            f"| {row['group']} | {row['value']} | {row['n']} | {row['approval_rate']:.1%} | "
            f"{'n/a' if air is None else f'{air:.3f}'} | {interval} | "
            f"{row['decline_rate_diff_vs_reference']:+.1%} | {'**yes**' if row.get('flagged') else 'no'} |"
        )
    flags, notes = list(fairness.get("flags", [])), list(fairness.get("notes", []))
    lines += ["", "**Flags:**" if flags else "**Flags:** none: every group passes the four-fifths rule."]
    lines += [f"- {flag}" for flag in flags]
    if notes:
        lines += ["", "**Small groups:**", *[f"- {note}" for note in notes]]
    return lines


def _hybrid_limitations(record: RunRecord) -> list[str]:
    """What LightGBM reads that the language model's text may not: protected and excluded fields."""
    tabular = record.need("hybrid").tabular_features
    items = [] if record.need("hybrid").config.tabular_only else [
        "The stacker and the LLM's calibration are fitted on the validation split, the same rows "
        "the credit policy is chosen on; the stacked validation scores are cross-fitted "
        "(out-of-fold), but the test split is the only untouched check."
    ]  # fmt: skip
    protected = [c for c in record.dataset.protected if c in tabular]
    if protected:
        items.append(
            "The LightGBM part reads protected attributes directly ("
            + ", ".join(f"`{c}`" for c in protected)
            + "); leaving them out of the text does not leave them out of the deployed model."
        )
    return items


def limitations(record: RunRecord) -> list[str]:
    """The data set's own limitations, data-quality findings, then the method's and ours."""
    items = [*record.dataset.limitations, *record.dataset.quality_warnings]
    training = record.training
    if training is not None and training.texts_over_max_length:
        items.append(
            f"{training.texts_over_max_length} application texts are longer than the model's token limit "
            f"(max_length={training.config.max_length}; the longest has {training.longest_text_tokens} "
            "tokens): the model read only their beginning, and the clauses at the end of those texts "
            "not at all. Raise max_length or lower the free-text budgets (text.max_tokens)."
        )
    if record.dataset.protected:
        items.append(
            "Protected attributes are present in the data ("
            + ", ".join(f"`{c}`" for c in record.dataset.protected)
            + "). A model that reads them can reproduce historical discrimination; review the "
            "fairness section and consider excluding them from the text."
        )
    if record.training and record.training.config.method == "quantum":
        items.append(QUANTUM_LIMITATION)
    if record.hybrid:
        items += _hybrid_limitations(record)
    return items + list(GENERAL_LIMITATIONS)


def _federation_section(record: RunRecord) -> list[str]:
    """Who trained the model together, how, and what privacy it spent."""
    fed = record.federation
    if fed is None:
        return []
    if fed.epsilon is None:
        privacy = "no differential privacy"
    elif fed.privacy_level == "record":
        each = ", ".join(f"{name} {eps:.3g}" for name, eps in sorted(fed.lender_epsilon.items()))
        privacy = (
            f"record-level differential privacy (DP-SGD inside each lender), ε = {fed.epsilon:.3g} at "
            f"δ = {fed.delta:g} for the lender that spent most ({each}; noise multiplier "
            f"{fed.noise_multiplier}, per-example clipping {fed.clipping_norm})"
        )
    else:
        privacy = (
            f"lender-level differential privacy, ε = {fed.epsilon:.3g} at δ = {fed.delta:g} (noise "
            f"multiplier {fed.noise_multiplier}, clipping norm {fed.clipping_norm})"
        )
    secure = "SecAgg+ (the server saw only sums)" if fed.secure_aggregation else "updates in the clear"
    lines = [
        "## A consortium model",
        "",
        f"- **Trained by** {len(fed.lenders)} lenders ({', '.join(fed.lenders)}) with Flower, each on its "
        "own applications; only the method's trainable tensors left a lender "
        f"(signature `{fed.template}`).",
        f"- **Rounds:** {fed.rounds_completed} of {fed.rounds_planned} aggregated, strategy {fed.strategy}, "
        f"{fed.local_epochs} local epoch(s), fraction {fed.fraction_fit:g} of lenders a round, at least "
        f"{fed.min_lenders}.",
        f"- **Privacy:** {secure}; {privacy}.",
    ]
    lines += [f"- **Skipped:** {reason}" for reason in fed.rounds_skipped]
    lines += [f"- **Refused at join:** {reason}" for reason in fed.refused.values()]
    if fed.lender_test_auc:
        lines.append(
            "- **Each lender's test ROC AUC:** "
            + ", ".join(f"{name} {auc:.3f}" for name, auc in fed.lender_test_auc.items())
        )
    return [*lines, ""]


def render_model_card(record: RunRecord) -> str:
    """Markdown model card: details, data, metrics vs baselines, policy, use, limits, fairness."""
    if record.hybrid is None:
        name = record.model_label if record.federation else record.method
        about, hybrid = ABOUT_LLM, _federation_section(record)
    elif record.hybrid.config.tabular_only:
        name, about, hybrid = record.model_label, ABOUT_TABULAR, [*_tabular_section(record), ""]
    else:
        name, about, hybrid = record.model_label, ABOUT_HYBRID, [*_hybrid_section(record), ""]
    lines = [
        f"# Model card: credit-risk model ({name}) on {record.dataset.name}",
        "",
        about,
        "",
        *hybrid,
        *_details_section(record),
        "",
        *_data_section(record.dataset),
        "",
        *_metrics_section(record),
        "",
        *_policy_section(record),
        "",
        "## Intended use",
        "",
        INTENDED_USE,
        "",
        "## Limitations",
        "",
        *[f"- {item}" for item in limitations(record)],
        "",
        *_fairness_section(record.need("evaluation").fairness),
        "",
    ]
    return "\n".join(lines)


__all__ = ["INTENDED_USE", "METRICS", "render_model_card"]
