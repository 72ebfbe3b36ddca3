"""Inter-process file locks: one writer at a time for the warehouse and the model registry.

`file_lock(path)` takes an exclusive `flock` on `path` (created if absent). The kernel drops
the lock when the holder dies, `kill -9` included, so a crashed writer never leaves a stale
lock behind that someone has to delete by hand. Locks are advisory and per host: they order
risk_app processes on one machine (CLI, Dagster run workers, tests), not a remote server.

    from risk_app.storage.locks import file_lock
    with file_lock(paths.home() / "warehouse.duckdb.lock", timeout_s=60):
        ...  # read-decide-write without another risk_app process in between
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from risk_app.errors import RiskAppError


class LockTimeoutError(RiskAppError):
    """Another process held a lock for longer than the caller was willing to wait."""


@contextlib.contextmanager
def file_lock(path: str | os.PathLike[str], timeout_s: float = 120.0, poll_s: float = 0.05) -> Iterator[Path]:
    """Hold an exclusive lock on `path` for the block; `LockTimeoutError` after `timeout_s`."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeoutError(
                        f"{target}: still locked by another risk_app process after {timeout_s:.0f} s; "
                        "wait for it to finish and try again"
                    ) from None
                time.sleep(poll_s)
        # The holder's pid helps whoever wonders who is holding the lock.
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        try:
            yield target
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


__all__ = ["LockTimeoutError", "file_lock"]
