"""Which process is registering: enough to tell a registration killed mid-way from a live one.

An MLflow run started by `register_model_version` carries `process_tags()` (pid, host, the
pid's start time). On the next start, `process_is_gone(run.data.tags)` is True only when that
process is known to be dead on this host (pid gone, or reused by a newer process), so
reconciliation never ends a run another live process is still writing.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path

PROCESS_TAGS = ("risk_app.pid", "risk_app.host", "risk_app.pid_started")


def process_tags() -> dict[str, str]:
    """pid, host and the pid's start time (Linux), so a dead registrant can be recognised."""
    return {
        "risk_app.pid": str(os.getpid()),
        "risk_app.host": socket.gethostname(),
        "risk_app.pid_started": _pid_started(os.getpid()) or "",
    }


def _pid_started(pid: int) -> str | None:
    try:
        # Field 22 of /proc/<pid>/stat: start time in clock ticks since boot (stable per process).
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def process_is_gone(tags: Mapping[str, str]) -> bool:
    """True only when the registering process is known dead (same host, pid gone or reused)."""
    if tags.get("risk_app.host") != socket.gethostname() or not tags.get("risk_app.pid"):
        return False
    pid = int(tags["risk_app.pid"])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    started = tags.get("risk_app.pid_started")
    return bool(started) and _pid_started(pid) not in (None, started)
