"""Outcome assets: outcome files in (one dynamic partition per file), the labeled book, and a
backtest per vintage (one dynamic partition per month of applications).

`outcome_landing_sensor` (pipelines/sensors.py) adds an `outcome_files` partition per complete
file in `<home>/landing_outcomes/` and a `vintages` partition per month whose outcomes changed,
and requests the runs. Every asset calls `risk_app.outcomes` and shows the accounting: outcome
rows in = accepted + quarantined; scored = with outcome + pending + declined.
"""

import os
from pathlib import Path

import dagster as dg
import pandas as pd
from pydantic import Field

from data_contracts.spec import DEFAULT_DATASET, DatasetSpec, load_spec
from pipelines.metadata import table, user_errors
from pipelines.resources import RiskAppSettings
from risk_app.errors import ConfigError
from risk_app.landing import find_landing_file, key_content, landing_key
from risk_app.outcomes import book as book_lib
from risk_app.outcomes import store
from risk_app.outcomes.backtest import backtest_markdown, record_backtest
from risk_app.outcomes.ingest import add_outcome_file, outcomes_landing_dir
from risk_app.outcomes.report import champion_card_with_backtest

outcome_files = dg.DynamicPartitionsDefinition(name="outcome_files")
vintages = dg.DynamicPartitionsDefinition(name="vintages")
OUTCOME_GROUP = "outcomes"


class OutcomeDatasetConfig(dg.Config):
    dataset: str = Field(
        default="",
        description="The data set's spec: a built-in name or a spec file path; empty: "
        f"$RISK_APP_DATASET, else {DEFAULT_DATASET} (as the weekly schedule).",
    )

    def spec(self) -> DatasetSpec:
        return load_spec(self.dataset or os.environ.get("RISK_APP_DATASET") or DEFAULT_DATASET)


class OutcomeFileConfig(OutcomeDatasetConfig):
    input_path: str = Field(
        default="", description="Outcome file; empty: the file in landing_outcomes/ named by the partition."
    )
    expected_file_id: str = Field(
        default="", description="sha256 the sensor saw; the run fails if the file no longer has it."
    )


def outcome_partition_key(file_name: str, file_id: str) -> str:
    """One partition per (outcome file name, content): `risk_app.landing.landing_key`."""
    return landing_key(file_name, file_id)


@dg.asset(
    group_name=OUTCOME_GROUP,
    kinds={"pandera", "duckdb"},
    partitions_def=outcome_files,
    deps=[dg.AssetDep("scored_applications", partition_mapping=dg.AllPartitionMapping())],
)
@user_errors
def outcomes(context: dg.AssetExecutionContext, config: OutcomeFileConfig) -> dg.MaterializeResult:
    """One outcome file, validated and taken in exactly once (re-running it adds nothing)."""
    expected = config.expected_file_id
    if config.input_path:
        path = Path(config.input_path)
    elif key_content(context.partition_key) is not None:
        # The file the key names, its content checked against the key (not just its name).
        path, found = find_landing_file(outcomes_landing_dir(), context.partition_key)
        expected = expected or found
    else:
        raise ConfigError(f"partition {context.partition_key!r}: set outcomes.config.input_path")
    report = add_outcome_file(
        path,
        config.spec(),
        origin="dagster",
        partition_key=context.partition_key,
        expected_file_id=expected,
    )
    context.log.info(report.message)
    return dg.MaterializeResult(
        metadata={
            "status": report.status,
            "file_id": report.file_id,
            "dataset": report.dataset,
            "rows_in": report.n_in,
            "rows_accepted": report.n_accepted,
            "rows_quarantined": report.n_quarantined,
            "message": dg.MetadataValue.text(report.message),
            "quarantine": table(report.quarantine),
        }
    )


@dg.asset(
    group_name=OUTCOME_GROUP,
    kinds={"duckdb"},
    deps=[dg.AssetDep("outcomes", partition_mapping=dg.AllPartitionMapping())],
)
@user_errors
def labeled_book(config: OutcomeDatasetConfig) -> dg.MaterializeResult:
    """`risk.labeled_book`: scored applications with their outcome once known, per vintage."""
    spec = config.spec()
    book = book_lib.labeled_book(spec)
    store.write_book_table(book, spec.name)
    counts = book_lib.book_counts(book)
    return dg.MaterializeResult(
        metadata={
            "dataset": spec.name,
            "spec": str(spec.spec_path or spec.name),
            **counts,
            "accounting": dg.MetadataValue.text(
                f"scored {counts['scored']} = with outcome {counts['with_outcome']} + pending "
                f"{counts['pending']} + declined {counts['declined']}"
            ),
            "vintages": table(book_lib.vintage_counts(book), max_rows=60),
            "declined": dg.MetadataValue.text(
                "Declined applicants have no outcome: they are excluded from training on the book "
                "(reject inference: none) and counted here."
            ),
        }
    )


@dg.asset(
    group_name=OUTCOME_GROUP,
    kinds={"scipy", "duckdb"},
    partitions_def=vintages,
    deps=[labeled_book],
)
@user_errors
def backtest(
    context: dg.AssetExecutionContext, config: OutcomeDatasetConfig, settings: RiskAppSettings
) -> dg.MaterializeResult:
    """Predicted PD vs realized default rate per grade for one vintage, per deciding model;
    beside it, the champion's model card with its latest backtest."""
    spec = config.spec()
    results = record_backtest(book_lib.labeled_book(spec), spec.name, context.partition_key)
    rows = pd.concat([r.grades.assign(model_version=r.model_version) for r in results], ignore_index=True)
    card = champion_card_with_backtest(spec.name, settings.registered_name(spec.name))
    worst = max((r.light for r in results), key=("green", "amber", "red").index)
    return dg.MaterializeResult(
        metadata={
            "dataset": spec.name,
            "vintage": context.partition_key,
            "light": worst,
            "summary": dg.MetadataValue.text(" ".join(r.summary for r in results)),
            "loans_with_outcome": sum(r.n for r in results),
            "grades_outside_interval": dg.MetadataValue.json(
                {r.model_version: r.outside_interval for r in results}
            ),
            "backtest": dg.MetadataValue.md("\n\n".join(backtest_markdown(r) for r in results)),
            "grades": table(rows.round(4), max_rows=30),
            "champion_model_card": dg.MetadataValue.md(card or "no champion registered yet"),
        }
    )


OUTCOME_ASSETS = [outcomes, labeled_book, backtest]
