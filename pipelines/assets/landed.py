"""What the file-per-partition assets (`outcomes`, `overrides`) share: which file a run takes
in, and the materialization metadata of its `risk_app.storage.file_ledger.FileReport`.

A partition is one landed file (`risk_app.landing.landing_key`): the run takes the file its key
names, its content checked against the key, unless the config names a file itself.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg

from pipelines.metadata import table
from risk_app.errors import ConfigError
from risk_app.landing import key_content
from risk_app.storage.file_ledger import FileReport


def landed_file(
    asset: str,
    partition_key: str,
    input_path: str,
    expected_file_id: str,
    find: Callable[[str], tuple[Path, str]],
) -> tuple[Path, str]:
    """(the file to take in, the sha256 it must have or ""): `input_path` when set, else the file
    `find` locates for the partition key (with the content the key names)."""
    if input_path:
        return Path(input_path), expected_file_id
    if key_content(partition_key) is not None:
        path, found = find(partition_key)
        return path, expected_file_id or found
    raise ConfigError(f"partition {partition_key!r}: set {asset}.config.input_path")


def file_report_result(context: dg.AssetExecutionContext, report: FileReport) -> dg.MaterializeResult:
    """Log the report's sentence and show its accounting: rows in = accepted + quarantined."""
    context.log.info(report.message)
    metadata: dict[str, Any] = {
        "status": report.status,
        "file_id": report.file_id,
        "dataset": report.dataset,
        "rows_in": report.n_in,
        "rows_accepted": report.n_accepted,
        "rows_quarantined": report.n_quarantined,
        "message": dg.MetadataValue.text(report.message),
        "quarantine": table(report.quarantine),
    }
    return dg.MaterializeResult(metadata=metadata)
