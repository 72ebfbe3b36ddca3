"""Scoring assets: validate a batch of new applications, then score it with a registered model."""

import dagster as dg
import pandas as pd

from pipelines.configs import ScoringConfig, ScoringInputConfig
from pipelines.metadata import table, user_errors, validation_counts
from pipelines.resources import RiskAppSettings
from risk_app import scoring
from risk_app.data.load import load_applications
from risk_app.data.validate import validate_applications


@dg.multi_asset(
    outs={
        "scoring_applications": dg.AssetOut(
            group_name="scoring",
            kinds={"pandas", "duckdb"},
            description="Contract-valid applications of the batch.",
        ),
        "scoring_quarantine": dg.AssetOut(
            group_name="scoring",
            kinds={"pandas", "duckdb"},
            description="Failed checks of the batch; these rows are not scored.",
        ),
    },
)
@user_errors
def scoring_batch(config: ScoringInputConfig):  # noqa: ANN201 - dagster multi-output
    """Load and validate a batch; the target is optional for scoring input."""
    result = validate_applications(
        load_applications(config.input_path), source=config.input_path, require_target=False
    )
    counts = {"source_file": config.input_path, **validation_counts(result)}
    yield dg.Output(result.valid, output_name="scoring_applications", metadata=counts)
    yield dg.Output(
        result.quarantine,
        output_name="scoring_quarantine",
        metadata={**counts, "sample": table(result.quarantine)},
    )


# Lineage: scores come from the champion (resolved from the registry at run time, so the
# scoring job does not re-run training).
@dg.asset(group_name="scoring", kinds={"pytorch", "duckdb"}, deps=["champion_model"])
@user_errors
def scored_applications(
    context: dg.AssetExecutionContext,
    config: ScoringConfig,
    scoring_applications: pd.DataFrame,
    settings: RiskAppSettings,
) -> dg.Output[pd.DataFrame]:
    """Probability of default, grade, decision, model version and reason codes per application."""
    risk_model = scoring.load_model(config.model, model_name=settings.model_name)
    context.log.info(
        f"scoring {len(scoring_applications)} applications with model version {risk_model.version}"
    )
    scored = scoring.score_with_reasons(scoring_applications, risk_model, top_k=config.reason_codes)
    scoring.write_frame(scored, config.output_path)
    grades = scored["risk_grade"].value_counts().sort_index()
    return dg.Output(
        scored,
        metadata={
            "rows_scored": len(scored),
            "model_version": str(risk_model.version),
            "output_path": dg.MetadataValue.path(config.output_path),
            "decline_rate": dg.MetadataValue.float(
                float((scored["decision"] == "decline").mean()) if len(scored) else 0.0
            ),
            "mean_probability_of_default": dg.MetadataValue.float(
                float(scored["probability_of_default"].mean()) if len(scored) else 0.0
            ),
            "grades": table(grades.rename_axis("risk_grade").reset_index(name="applications")),
            "sample": table(scored),
        },
    )
