"""Override assets: analyst override files in (one dynamic partition per file), and override monitoring.

`override_landing_sensor` (pipelines/sensors.py) adds an `override_files` partition per
complete file in `<home>/landing_overrides/` and requests its run. `overrides` calls
`risk_app.overrides.ingest` with the deployment's reason codes (`settings.override_reason_codes`)
and shows the accounting: override rows in = accepted + quarantined. `override_monitoring`
calls `risk_app.overrides.monitor`: override rates per grade, reason and analyst against
`settings.max_override_rate` (the check `override_rates_within_limit` warns above it) and the
outcome of overridden approvals against the model's PD.
"""

import dagster as dg
from pydantic import Field

from data_contracts.spec import DatasetSpec, default_dataset, load_spec
from pipelines.assets.landed import file_report_result, landed_file
from pipelines.configs import DATASET_HELP
from pipelines.metadata import table, user_errors
from pipelines.resources import RiskAppSettings
from risk_app.landing import find_landing_file
from risk_app.overrides.ingest import add_override_file, overrides_landing_dir
from risk_app.overrides.monitor import monitor_overrides

override_files = dg.DynamicPartitionsDefinition(name="override_files")
OVERRIDE_GROUP = "overrides"


class OverrideFileConfig(dg.Config):
    dataset: str = Field(
        default="",
        description=DATASET_HELP,
    )
    input_path: str = Field(
        default="", description="Override file; empty: the file in landing_overrides/ named by the partition."
    )
    expected_file_id: str = Field(
        default="", description="sha256 the sensor saw; the run fails if the file no longer has it."
    )

    def spec(self) -> DatasetSpec:
        return load_spec(self.dataset or default_dataset())


@dg.asset(
    group_name=OVERRIDE_GROUP,
    kinds={"pandera", "duckdb"},
    partitions_def=override_files,
    deps=[dg.AssetDep("scored_applications", partition_mapping=dg.AllPartitionMapping())],
)
@user_errors
def overrides(
    context: dg.AssetExecutionContext, config: OverrideFileConfig, settings: RiskAppSettings
) -> dg.MaterializeResult:
    """One analyst override file, validated against the scoring ledger and taken in exactly once."""
    path, expected = landed_file(
        "overrides", context.partition_key, config.input_path, config.expected_file_id,
        lambda key: find_landing_file(overrides_landing_dir(), key),
    )  # fmt: skip
    report = add_override_file(
        path, config.spec(), reason_codes=settings.override_reason_codes, origin="dagster",
        partition_key=context.partition_key, expected_file_id=expected,
    )  # fmt: skip
    return file_report_result(context, report)


class OverrideMonitoringConfig(dg.Config):
    dataset: str = Field(
        default="",
        description=DATASET_HELP,
    )


@dg.asset(
    group_name=OVERRIDE_GROUP,
    kinds={"duckdb"},
    deps=[
        dg.AssetDep("overrides", partition_mapping=dg.AllPartitionMapping()),
        dg.AssetDep("outcomes", partition_mapping=dg.AllPartitionMapping()),
    ],
)
@user_errors
def override_monitoring(config: OverrideMonitoringConfig, settings: RiskAppSettings) -> dg.MaterializeResult:
    """Override rates (low and high side) per grade, reason and analyst against the limit, and
    whether the analysts' overridden approvals defaulted less than the model predicted."""
    spec = load_spec(config.dataset or default_dataset())
    report = monitor_overrides(
        spec, max_rate=settings.max_override_rate, min_decisions=settings.override_min_decisions
    )
    limit, verdict = report.sentences()
    return dg.MaterializeResult(
        metadata={
            "dataset": spec.name,
            "max_override_rate": settings.max_override_rate,
            "over_limit": len(report.over_limit),
            "limit": dg.MetadataValue.text(limit),
            "analysts_right": dg.MetadataValue.text(verdict),
            "rates": table(report.rates.round(4), max_rows=200),
            "overridden_approvals": dg.MetadataValue.json(
                {k: (None if v != v else v) for k, v in report.approvals.items()}  # NaN -> null
            ),
        }
    )


OVERRIDE_ASSETS = [overrides, override_monitoring]
