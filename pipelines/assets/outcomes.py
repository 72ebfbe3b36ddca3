"""Outcome assets: outcome files in (one dynamic partition per file), the labeled book, and a
backtest per vintage (one dynamic partition per month of applications).

`outcome_landing_sensor` (pipelines/sensors.py) adds an `outcome_files` partition per complete
file in `<home>/landing_outcomes/` and a `vintages` partition per month whose outcomes changed,
and requests the runs. Every asset calls `risk_app.outcomes` and shows the accounting: outcome
rows in = accepted + quarantined; scored = with outcome + pending + declined.
"""

from pathlib import Path

import dagster as dg
import pandas as pd
from pydantic import Field

from data_contracts.spec import DEFAULT_DATASET, DatasetSpec, default_dataset, load_spec
from pipelines.assets.landed import file_report_result, landed_file
from pipelines.metadata import table, user_errors
from pipelines.resources import RiskAppSettings
from risk_app.errors import RiskAppError
from risk_app.landing import find_landing_file
from risk_app.outcomes import book as book_lib
from risk_app.outcomes import store
from risk_app.outcomes.backtest import backtest_markdown, record_backtest
from risk_app.outcomes.ingest import add_outcome_file
from risk_app.outcomes.report import champion_card_with_backtest
from risk_app.outcomes.routing import (
    dataset_folders,
    dataset_of_path,
    dataset_spec_named,
    known_dataset_names,
    outcomes_landing_dir,
    split_vintage_key,
)
from risk_app.storage.scores import scoring_ledger

outcome_files = dg.DynamicPartitionsDefinition(name="outcome_files")
vintages = dg.DynamicPartitionsDefinition(name="vintages")
OUTCOME_GROUP = "outcomes"


class OutcomeDatasetConfig(dg.Config):
    dataset: str = Field(
        default="",
        description="The data set's spec: a built-in name or a spec file path; empty: found by "
        "itself (the file's landing folder, the backtest partition `<data set>/<month>`, every data "
        f"set with scored applications for the book), else $RISK_APP_DATASET, else {DEFAULT_DATASET}.",
    )

    def spec(self) -> DatasetSpec:
        if not self.dataset:
            return load_spec(default_dataset())
        if "/" in self.dataset or self.dataset.endswith((".yaml", ".yml")):
            return load_spec(self.dataset)
        return dataset_spec_named(self.dataset)  # a built-in name, or $RISK_APP_DATASET's by its name


class OutcomeFileConfig(OutcomeDatasetConfig):
    input_path: str = Field(
        default="", description="Outcome file; empty: the file in landing_outcomes/ named by the partition."
    )
    expected_file_id: str = Field(
        default="", description="sha256 the sensor saw; the run fails if the file no longer has it."
    )


def _landing_file(key: str) -> tuple[Path, str]:
    """The outcome file a partition key names: in a data set's folder, else directly in
    `landing_outcomes/` (keys of a data set's folder are made from `<data set>/<name>`)."""
    for name, folder in dataset_folders().items():
        try:
            return find_landing_file(folder, key, prefix=f"{name}/")
        except RiskAppError:
            continue
    return find_landing_file(outcomes_landing_dir(), key)


def _book_specs(config: OutcomeDatasetConfig) -> list[DatasetSpec]:
    """The data set typed, else every known data set with scored applications (else the default)."""
    if config.dataset:
        return [config.spec()]
    scored = set(scoring_ledger()["dataset"].astype(str))
    names = [name for name in known_dataset_names() if name in scored]
    return [dataset_spec_named(name) for name in names] or [config.spec()]


@dg.asset(
    group_name=OUTCOME_GROUP,
    kinds={"pandera", "duckdb"},
    partitions_def=outcome_files,
    deps=[dg.AssetDep("scored_applications", partition_mapping=dg.AllPartitionMapping())],
)
@user_errors
def outcomes(context: dg.AssetExecutionContext, config: OutcomeFileConfig) -> dg.MaterializeResult:
    """One outcome file, validated and taken in exactly once (re-running it adds nothing)."""
    # The file the key names, its content checked against the key (not just its name).
    path, expected = landed_file(
        "outcomes", context.partition_key, config.input_path, config.expected_file_id, _landing_file
    )
    folder_dataset = dataset_of_path(path)
    spec = config.spec() if config.dataset or folder_dataset is None else dataset_spec_named(folder_dataset)
    report = add_outcome_file(
        path, spec, origin="dagster", partition_key=context.partition_key, expected_file_id=expected
    )
    return file_report_result(context, report)


@dg.asset(
    group_name=OUTCOME_GROUP,
    kinds={"duckdb"},
    deps=[dg.AssetDep("outcomes", partition_mapping=dg.AllPartitionMapping())],
)
@user_errors
def labeled_book(config: OutcomeDatasetConfig) -> dg.MaterializeResult:
    """`risk.labeled_book`: scored applications with their outcome once known, per vintage; of
    the data set typed, else of every data set with scored applications."""
    specs = _book_specs(config)
    books = {spec.name: book_lib.labeled_book(spec) for spec in specs}
    for name, one in books.items():
        store.write_book_table(one, name)
    book = pd.concat([b.assign(dataset=n) for n, b in books.items()], ignore_index=True)
    counts = book_lib.book_counts(book)
    per_set = pd.concat(
        [book_lib.vintage_counts(b).assign(dataset=n) for n, b in books.items()], ignore_index=True
    )
    return dg.MaterializeResult(
        metadata={
            "dataset": ", ".join(books),
            "spec": ", ".join(str(spec.spec_path or spec.name) for spec in specs),
            "specs": dg.MetadataValue.json([str(spec.spec_path or spec.name) for spec in specs]),
            **counts,
            "accounting": dg.MetadataValue.text(
                f"scored {counts['scored']} = with outcome {counts['with_outcome']} + pending "
                f"{counts['pending']} + declined {counts['declined']}"
            ),
            "vintages": table(per_set, max_rows=60),
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
    in_key, vintage = split_vintage_key(context.partition_key)
    spec = config.spec() if config.dataset or in_key is None else dataset_spec_named(in_key)
    results = record_backtest(book_lib.labeled_book(spec), spec.name, vintage)
    rows = pd.concat([r.grades.assign(model_version=r.model_version) for r in results], ignore_index=True)
    card = champion_card_with_backtest(spec.name, settings.registered_name(spec.name))
    worst = max((r.light for r in results), key=("green", "amber", "red").index)
    return dg.MaterializeResult(
        metadata={
            "dataset": spec.name,
            "vintage": vintage,
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
