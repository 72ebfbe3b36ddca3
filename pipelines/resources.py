"""Dagster resources: storage (DuckDB warehouse, pickled model handles) and run-wide settings."""

from __future__ import annotations

from typing import Literal

import dagster as dg
import pandas as pd
from dagster_duckdb_pandas import DuckDBPandasIOManager, DuckDBPandasTypeHandler
from pydantic import Field

from data_contracts.override import DEFAULT_REASON_CODES
from risk_app import paths
from risk_app.evaluate.batch_drift import BatchDriftThresholds
from risk_app.registry.promotion import GuardRule, PromotionRule
from risk_app.run.benchmark_gate import configured_margin
from risk_app.storage.sql import qualified, quote_ident


class ReplaceTableTypeHandler(DuckDBPandasTypeHandler):
    """Each materialization replaces its table: same columns as the frame, empty or not.

    The stock handler skips empty frames (an empty quarantine is a result: "no failures") and
    inserts into the existing table, which breaks when a batch's columns differ from the last
    one's (a scoring file without the optional target after one with it).
    """

    def handle_output(self, context, table_slice, obj: pd.DataFrame, connection) -> None:  # noqa: ANN001
        # Empty object columns have no type for DuckDB; declare them as text.
        frame = obj.astype({c: "string" for c in obj.columns if obj[c].dtype == object}) if obj.empty else obj  # noqa: F841 - read by DuckDB by name
        connection.execute(f"create schema if not exists {quote_ident(table_slice.schema, 'schema')}")
        connection.execute(
            f"create or replace table {qualified(table_slice.schema, table_slice.table)} "
            "as select * from frame"
        )
        context.add_output_metadata({"dagster/row_count": len(obj)})


class RiskDuckDBIOManager(DuckDBPandasIOManager):
    """DuckDB warehouse IO manager whose tables always match the latest materialization."""

    @staticmethod
    def type_handlers() -> list:
        return [ReplaceTableTypeHandler()]


class RiskAppSettings(dg.ConfigurableResource):
    """Thresholds analysts tune per deployment; shown and editable in the launchpad."""

    max_quarantine_rate: float = Field(
        default=0.05,
        description="Blocking check: the share of quarantined rows must stay below this.",
    )
    model_name: str = Field(
        default="",
        description="MLflow registered-model name; empty = one per data set, named after it.",
    )
    promotion_metric: str = Field(
        default="roc_auc", description="Test metric that decides champion/challenger promotion."
    )
    promotion_min_margin: float = Field(
        default=0.0, description="The challenger must beat the champion by more than this."
    )
    brier_max_worsening: float = Field(
        default=0.01, description="Guard: Brier score may not get worse by more than this."
    )
    promotion_max_p_value: float | None = Field(
        default=None,
        description="When set (e.g. 0.05), the challenger's gain over the champion on the same test rows "
        "must also be significant (paired test's one-sided p-value at most this); empty: off.",
    )
    benchmark_margin: float | None = Field(
        default_factory=configured_margin,
        description="A challenger trailing the best classical model by more than this (promotion metric, "
        "same test rows) is not promoted automatically; empty turns the gate off.",
    )
    drift_warn_psi: float = Field(default=0.1, description="PSI above this warns.")
    drift_fail_psi: float = Field(default=0.25, description="PSI above this fails.")
    drift_min_rows: int = Field(
        default=200, description="A scoring batch with fewer rows is too small to judge drift (warns)."
    )
    max_override_rate: float = Field(
        default=0.10,
        description="Warning check: a low- or high-side override rate per grade, reason or analyst "
        "above this.",
    )
    override_min_decisions: int = Field(
        default=20,
        description="An override rate resting on fewer model decisions is not judged against the limit.",
    )
    override_reason_codes: list[str] = Field(
        default_factory=lambda: list(DEFAULT_REASON_CODES),
        description="Reason codes an analyst override may give; an override with another is quarantined.",
    )

    def registered_name(self, dataset: str) -> str:
        """The registered model a run of `dataset` joins: champions compete within one data set."""
        return self.model_name or dataset

    def promotion_rule(self) -> PromotionRule:
        return PromotionRule(
            metric=self.promotion_metric,
            min_margin=self.promotion_min_margin,
            guards=[GuardRule(metric="brier", max_worsening=self.brier_max_worsening)],
            max_p_value=self.promotion_max_p_value,
        )

    def gate_margin(self) -> float | Literal["off"]:
        """The benchmark gate's margin for `register_run` and `promote_run` alike ("off": no gate)."""
        return "off" if self.benchmark_margin is None else self.benchmark_margin

    def drift_thresholds(self) -> BatchDriftThresholds:
        return BatchDriftThresholds(
            warn=self.drift_warn_psi, fail=self.drift_fail_psi, min_rows=self.drift_min_rows
        )


def build_resources() -> dict[str, object]:
    """DataFrames land in the DuckDB warehouse (queryable with SQL); other values are pickled."""
    return {
        "io_manager": RiskDuckDBIOManager(database=str(paths.warehouse_path()), schema="risk"),
        "fs_io_manager": dg.FilesystemIOManager(base_dir=str(paths.home() / "dagster_storage")),
        "settings": RiskAppSettings(),
    }
