"""`risk-app models list` fits an 80-column terminal (issue 21 §6)."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from pipelines.cli import app

REASON = (
    "challenger v2 kept: it trails the best classical model (lightgbm_tfidf) by 0.031 ROC AUC on the "
    "same 150 test rows, more than the benchmark margin 0.01; promote by hand with a reason"
)


def _versions(name: str) -> list[dict[str, Any]]:
    return [
        {"version": "1", "aliases": ["champion"], "method": "lora", "roc_auc": 0.78123456,
         "created": "2026-12-07T10:01:02.123456+00:00", "promotion_decision": "promoted",
         "promotion_reason": "first version of german_credit", "run_id": "a" * 32},
        {"version": "2", "aliases": ["challenger"], "method": "qlora", "roc_auc": 0.7512,
         "created": "2026-12-07T11:01:02.123456+00:00", "promotion_decision": "kept_challenger",
         "promotion_reason": REASON, "run_id": "b" * 32},
    ]  # fmt: skip


def test_models_list_fits_80_columns_and_keeps_the_whole_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("risk_app.registry.mlflow_registry.list_versions", _versions)
    result = CliRunner().invoke(app, ["models", "list"], env={"COLUMNS": "80"}, terminal_width=80)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80, "\n".join(lines)
    assert " ".join(result.output.split()).count("benchmark margin 0.01; promote by hand with a reason") == 1
    assert any("0.781" in line and "champion" in line for line in lines)
    wide = CliRunner().invoke(app, ["models", "list", "--wide"], env={"COLUMNS": "200"})
    assert wide.exit_code == 0 and "run_id" in wide.output
