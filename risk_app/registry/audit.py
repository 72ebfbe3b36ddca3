"""The registry audit trail: one JSON line per champion/challenger decision, never rewritten.

Every alias change made through `risk_app.registry.mlflow_registry` (automatic promotion, a
recorded verdict, a manual `set_champion`, a rollback) appends a record here with time, OS user,
actor, action, from/to versions and the reason. The file lives at
`<home>/registry_audit.jsonl`, outside MLflow, so it survives a wiped or migrated tracking store.

    from risk_app.registry.audit import read_audit_log
    for record in read_audit_log():
        print(record["timestamp"], record["action"], record["to_version"], record["reason"])
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from risk_app import paths
from risk_app.errors import DataFileError


def append_audit_record(
    action: str,
    name: str,
    *,
    from_version: str | None,
    to_version: str | None,
    reason: str,
    actor: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Append one JSON line to the audit log; fsync so an acknowledged decision survives a crash."""
    user = getpass.getuser()
    record = {
        "timestamp": dt.datetime.now(dt.UTC).isoformat(),
        "user": user,
        "actor": actor or user,
        "action": action,
        "model_name": name,
        "from_version": from_version,
        "to_version": to_version,
        "reason": reason,
        **dict(extra or {}),
    }
    line = (json.dumps(record, sort_keys=True, default=str) + "\n").encode("utf-8")
    fd = os.open(audit_log_path(), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    return record


def audit_log_path() -> Path:
    return paths.home() / "registry_audit.jsonl"


def read_audit_log() -> list[dict[str, Any]]:
    """All audit records, oldest first (empty when nothing was ever promoted)."""
    path = audit_log_path()
    if not path.exists():
        return []
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise DataFileError(
                path, f"line {number} is not valid JSON ({exc.msg}); the audit log was edited"
            ) from exc
    return records
