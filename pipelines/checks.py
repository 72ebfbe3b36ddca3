"""Asset checks: data contract, quarantine rate, fairness, promotion gate and scoring drift.

The two blocking gates before training (contract, quarantine rate) yield their result and, when
it fails, end the run with the check's sentence (`metadata.gate`); the warnings leave runs green.
"""

from collections.abc import Iterator

import dagster as dg
import pandas as pd

from data_contracts.spec import DEFAULT_DATASET, DatasetSpec, load_spec
from pipelines.metadata import gate, table
from pipelines.resources import RiskAppSettings
from risk_app.data.validate import validate_applications
from risk_app.outcomes.backtest import recorded_backtests
from risk_app.outcomes.book import book_counts, labeled_book
from risk_app.outcomes.ingest import outcome_files
from risk_app.run.record import RunRecord

ERROR, WARN = dg.AssetCheckSeverity.ERROR, dg.AssetCheckSeverity.WARN


@dg.asset_check(
    asset="valid_applications",
    blocking=True,
    additional_ins={"dataset_spec": dg.AssetIn()},
    description="Valid rows re-pass the data set's contract.",
)
def contract_passes(
    valid_applications: pd.DataFrame, dataset_spec: DatasetSpec
) -> Iterator[dg.AssetCheckResult]:
    again = validate_applications(valid_applications, source="valid_applications", spec=dataset_spec)
    passed = again.n_quarantined == 0
    result = dg.AssetCheckResult(
        passed=passed,
        severity=ERROR,
        description=(
            f"all {again.n_in} valid rows pass the {dataset_spec.name} contract again"
            if passed
            else f"{again.n_quarantined} of {again.n_in} 'valid' rows fail the contract on a second pass"
        ),
        metadata={"rows": again.n_in, "failures": again.n_quarantined},
    )
    yield from gate(result)


@dg.asset_check(
    asset="valid_applications",
    blocking=True,
    additional_ins={"quarantined_applications": dg.AssetIn()},
    description="Share of quarantined rows is below settings.max_quarantine_rate.",
)
def quarantine_rate_below_threshold(
    valid_applications: pd.DataFrame, quarantined_applications: pd.DataFrame, settings: RiskAppSettings
) -> Iterator[dg.AssetCheckResult]:
    n_bad = quarantined_applications["row_number"].nunique() if len(quarantined_applications) else 0
    rate = n_bad / max(len(valid_applications) + n_bad, 1)
    passed = rate < settings.max_quarantine_rate
    verdict = "below" if passed else "at or above"
    result = dg.AssetCheckResult(
        passed=passed,
        severity=ERROR,
        description=f"{n_bad} of {len(valid_applications) + n_bad} rows quarantined ({rate:.1%}), "
        f"{verdict} the limit of {settings.max_quarantine_rate:.1%}"
        + ("" if passed else "; training stops here: fix the file or raise the limit in settings"),
        metadata={
            "quarantine_rate": round(rate, 4),
            "threshold": settings.max_quarantine_rate,
            "rows_quarantined": n_bad,
        },
    )
    yield from gate(result)


@dg.asset_check(
    asset="model_evaluation",
    description="No protected group's approval rate below four-fifths of the most favoured group's.",
)
def fairness_four_fifths(model_evaluation: RunRecord) -> dg.AssetCheckResult:
    fairness = model_evaluation.need("evaluation").fairness
    rows = pd.DataFrame(fairness.get("rows", []))
    flags = fairness.get("flags", [])
    return dg.AssetCheckResult(
        passed=not flags and fairness.get("assessable", True),
        severity=WARN,
        description=_fairness_sentence(fairness),
        metadata={
            "flags": dg.MetadataValue.json(flags),
            "small_groups": dg.MetadataValue.json(fairness.get("notes", [])),
            "groups": table(rows, 30),
        },
    )


def _fairness_sentence(fairness: dict) -> str:
    """One plain sentence: which groups fall below four-fifths and how sure, or that none does."""
    if fairness.get("assessable") is False:
        return str(fairness.get("reason", "Fairness not assessable."))
    limit = float(fairness.get("air_limit", 0.8))
    notes = fairness.get("notes", [])
    small = f" (but {len(notes)} grouping(s) are measured against a small group)" if notes else ""
    parts = []
    for r in (r for r in fairness.get("rows", []) if r.get("flagged")):
        high = r.get("air_ci_high")
        sure = "with confidence" if high is not None and high < limit else "not sure, too few applicants"
        parts.append(f"{r['group']}={r['value']} at {r['adverse_impact_ratio']:.2f} ({sure})")
    if not parts:
        return f"Every group's adverse impact ratio is at least {limit:.1f}{small}."
    return f"{len(parts)} group(s) below four-fifths: {', '.join(parts)}{small}."


@dg.asset_check(
    asset="registered_model",
    description="Champion/challenger promotion rule: the challenger must beat the champion.",
)
def promotion_rule(registered_model: RunRecord) -> dg.AssetCheckResult:
    # A rejected challenger is a normal outcome, not a broken run: it warns, and champion_model
    # keeps the current champion, saying why.
    registration = registered_model.need("registration")
    return dg.AssetCheckResult(
        passed=registration.decision.promote,
        severity=WARN,
        description=registration.decision.reason,
        metadata={
            "version": registration.version,
            "details": dg.MetadataValue.json(registration.decision.details),
        },
    )


ALL_CHECKS = [
    contract_passes,
    quarantine_rate_below_threshold,
    fairness_four_fifths,
    promotion_rule,
]


def _latest_metadata(context: dg.AssetCheckExecutionContext, asset: str) -> dict[str, object]:
    """The metadata values of an asset's latest materialization (the run that just made it)."""
    event = context.instance.get_latest_materialization_event(dg.AssetKey(asset))
    materialization = event.asset_materialization if event is not None else None
    if materialization is None:
        return {}
    return {key: getattr(value, "value", value) for key, value in materialization.metadata.items()}


@dg.asset_check(
    asset="labeled_book",
    blocking=True,
    description="Every count adds up: scored = with outcome + pending + declined; for every outcome "
    "file, rows in = accepted + quarantined.",
)
def outcome_accounting(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    latest = _latest_metadata(context, "labeled_book")
    # The book's run names its data sets ("specs"); older runs named one ("spec").
    named = latest.get("specs") or [latest.get("spec") or DEFAULT_DATASET]
    specs = [load_spec(str(one)) for one in named]  # type: ignore[union-attr]
    books = [book_counts(labeled_book(spec)) for spec in specs]
    counts = {key: sum(one[key] for one in books) for key in books[0]}
    files = pd.concat([outcome_files(spec.name) for spec in specs], ignore_index=True)
    broken = files.loc[files["n_in"] != files["n_accepted"] + files["n_quarantined"], "source_file"].tolist()
    book_ok = counts["scored"] == counts["with_outcome"] + counts["pending"] + counts["declined"]
    return dg.AssetCheckResult(
        passed=book_ok and not broken,
        severity=ERROR,
        description=(
            f"scored {counts['scored']} = {counts['with_outcome']} with outcome + {counts['pending']} "
            f"pending + {counts['declined']} declined; {len(files)} outcome file(s) add up"
            if book_ok and not broken
            else f"accounting broken: book {counts}; outcome files not adding up: {broken}"
        ),
        metadata={
            **counts,
            "outcome_files": len(files),
            "files_not_adding_up": dg.MetadataValue.json(broken),
        },
    )


@dg.asset_check(
    asset="backtest",
    description="Warns when a grade's mean predicted PD lies outside the Jeffreys 95% interval of its "
    "realized default rate (the vintage just backtested).",
)
def backtest_within_intervals(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    latest = _latest_metadata(context, "backtest")
    dataset, vintage = str(latest.get("dataset", "")), str(latest.get("vintage", ""))
    rows = recorded_backtests(dataset)
    rows = rows.loc[rows["vintage"] == vintage]
    outside = rows.loc[(rows["mean_pd"] < rows["jeffreys_low"]) | (rows["mean_pd"] > rows["jeffreys_high"])]
    return dg.AssetCheckResult(
        passed=outside.empty,
        severity=WARN,
        description=(
            f"vintage {vintage}: every grade's predicted PD is inside its interval"
            if outside.empty
            else " ".join(outside["verdict"].astype(str))
        ),
        metadata={
            "vintage": vintage,
            "grades_outside": len(outside),
            "grades": table(
                rows[["model_version", "grade", "n", "defaults", "mean_pd", "realized_rate", "light"]]
            ),
        },
    )


ALL_CHECKS += [outcome_accounting, backtest_within_intervals]


@dg.asset_check(
    asset="override_monitoring",
    description="Warns when a low- or high-side override rate (per grade, reason or analyst) is above "
    "settings.max_override_rate.",
)
def override_rates_within_limit(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    metadata = _latest_metadata(context, "override_monitoring")
    over = int(metadata.get("over_limit", 0) or 0)
    return dg.AssetCheckResult(
        passed=over == 0,
        severity=WARN,
        description=str(metadata.get("limit") or "no override monitoring yet"),
        metadata={"over_limit": over, "analysts_right": str(metadata.get("analysts_right") or "")},
    )


ALL_CHECKS += [override_rates_within_limit]
