"""Asset checks: data contract, quarantine rate, fairness, promotion gate and scoring drift."""

import dagster as dg
import pandas as pd

from data_contracts.spec import DatasetSpec
from pipelines.metadata import table
from pipelines.resources import RiskAppSettings
from risk_app import scoring
from risk_app.data.validate import validate_applications
from risk_app.errors import RiskAppError
from risk_app.evaluate.drift import classify, feature_psi, score_psi
from risk_app.run.record import RunRecord

ERROR, WARN = dg.AssetCheckSeverity.ERROR, dg.AssetCheckSeverity.WARN


@dg.asset_check(
    asset="valid_applications",
    blocking=True,
    additional_ins={"dataset_spec": dg.AssetIn()},
    description="Valid rows re-pass the data set's contract.",
)
def contract_passes(valid_applications: pd.DataFrame, dataset_spec: DatasetSpec) -> dg.AssetCheckResult:
    again = validate_applications(valid_applications, source="valid_applications", spec=dataset_spec)
    passed = again.n_quarantined == 0
    return dg.AssetCheckResult(
        passed=passed,
        severity=ERROR,
        description=(
            f"all {again.n_in} valid rows pass the {dataset_spec.name} contract again"
            if passed
            else f"{again.n_quarantined} of {again.n_in} 'valid' rows fail the contract on a second pass"
        ),
        metadata={"rows": again.n_in, "failures": again.n_quarantined},
    )


@dg.asset_check(
    asset="valid_applications",
    blocking=True,
    additional_ins={"quarantined_applications": dg.AssetIn()},
    description="Share of quarantined rows is below settings.max_quarantine_rate.",
)
def quarantine_rate_below_threshold(
    valid_applications: pd.DataFrame, quarantined_applications: pd.DataFrame, settings: RiskAppSettings
) -> dg.AssetCheckResult:
    n_bad = quarantined_applications["row_number"].nunique() if len(quarantined_applications) else 0
    rate = n_bad / max(len(valid_applications) + n_bad, 1)
    return dg.AssetCheckResult(
        passed=rate < settings.max_quarantine_rate,
        severity=ERROR,
        metadata={
            "quarantine_rate": rate,
            "threshold": settings.max_quarantine_rate,
            "rows_quarantined": n_bad,
        },
    )


@dg.asset_check(
    asset="model_evaluation",
    description="No protected group below the four-fifths rule at the decision threshold.",
)
def fairness_four_fifths(model_evaluation: RunRecord) -> dg.AssetCheckResult:
    fairness = model_evaluation.need("evaluation").fairness
    rows = pd.DataFrame(fairness.get("rows", []))
    flags = fairness.get("flags", [])
    return dg.AssetCheckResult(
        passed=not flags,
        severity=WARN,
        description="; ".join(flags) if flags else "every group's adverse impact ratio is at least 0.8",
        metadata={"flags": dg.MetadataValue.json(fairness.get("flags", [])), "groups": table(rows, 30)},
    )


@dg.asset_check(asset="registered_model", blocking=True, description="Champion/challenger promotion rule.")
def promotion_rule(registered_model: RunRecord) -> dg.AssetCheckResult:
    registration = registered_model.need("registration")
    return dg.AssetCheckResult(
        passed=registration.decision.promote,
        severity=ERROR,
        description=registration.decision.reason,
        metadata={
            "version": registration.version,
            "details": dg.MetadataValue.json(registration.decision.details),
        },
    )


@dg.asset_check(
    asset="scored_applications",
    additional_ins={
        "scoring_applications": dg.AssetIn(),
        "valid_applications": dg.AssetIn(),
        "dataset_spec": dg.AssetIn(),
    },
    description="Population stability (PSI) of every feature and of the score vs. the training data.",
)
def scoring_drift(
    scored_applications: pd.DataFrame,
    scoring_applications: pd.DataFrame,
    valid_applications: pd.DataFrame,
    dataset_spec: DatasetSpec,
    settings: RiskAppSettings,
) -> dg.AssetCheckResult:
    thresholds = settings.drift_thresholds()
    features = list(dataset_spec.numeric_columns + dataset_spec.categorical_columns)
    psi = feature_psi(valid_applications, scoring_applications, features, thresholds=thresholds)
    try:
        version = str(scored_applications["model_version"].iloc[0])
        reference = scoring.reference_scores(version, settings.registered_name(dataset_spec.name))
    except (RiskAppError, IndexError):
        # A model scored from a local folder has no registry entry; features are still checked.
        reference = []
    if reference and len(scored_applications):
        value = score_psi(reference, scored_applications["probability_of_default"].to_numpy())
        score_row = {
            "column": "probability_of_default",
            "kind": "score",
            "psi": value,
            "status": classify(value, thresholds),
        }
        psi = pd.concat([psi, pd.DataFrame([score_row])], ignore_index=True)
    worst = float(psi["psi"].max()) if len(psi) else 0.0
    status = classify(worst, thresholds)
    return dg.AssetCheckResult(
        passed=status != "fail",
        severity=ERROR if status == "fail" else WARN,
        metadata={
            "max_feature_psi": worst,
            "status": status,
            "psi": table(psi.sort_values("psi", ascending=False), 25),
        },
    )


ALL_CHECKS = [
    contract_passes,
    quarantine_rate_below_threshold,
    fairness_four_fifths,
    promotion_rule,
    scoring_drift,
]
