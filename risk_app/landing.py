"""A landing folder: which files are complete, which hold content not taken yet, and their keys.

Files are dropped into a folder (`var/landing/` for applications, `landing_outcomes/` for
outcomes) by uploaders risk_app does not control; the Dagster sensors take each complete file
once per content. The rules, all here so that every sensor follows them (issue 20 §6):

* **Only regular files inside the folder.** A symlink is never followed (it may point anywhere
  on the machine); hidden files (`.x.partial`, an upload in progress), `.done` markers and other
  suffixes are skipped. `lstat` is used throughout.
* **Complete** means either a `<name>.done` marker *newer than the file's last change* (its
  mtime and its ctime: a marker left over from an earlier upload does not make a half-written
  file complete), consumed (deleted) when the file is taken; or a signature (size, mtime,
  inode, ctime) unchanged across two looks at least `stable_s` apart, with an mtime at least
  `stable_s` old.
* **New content**: the cursor keeps, per name, the signature and the sha256 of the content
  taken. A file whose signature is unchanged is not read again; one whose signature changed is
  hashed and taken again only when its content changed. `cp -p` and `rsync -t` keep size and
  mtime, but not ctime (nor, for rsync, the inode), so new bytes are always seen.
* **Keys**: `<name made safe>-<8 hex of sha256(name)>-<12 hex of the content's sha256>`, one
  per (name, content): `a b.csv` and `a_b.csv` no longer share a key. `find_landing_file`
  goes back from a key to the file and checks its content against the key, so a run started
  from a partition alone (a re-materialization in the UI) scores the bytes the key names or
  fails in one sentence.

    state = {}
    for file in new_complete_files(folder, state, time.time(), stable_s=30):
        key = landing_key(file.path.name, file.sha256)
        take(state, file)       # remember the content, consume the marker
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import stat
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from risk_app.errors import RiskAppError
from risk_app.storage.hashing import sha256_file

SCORABLE_SUFFIXES = (".csv", ".parquet", ".pq")
DONE_SUFFIX = ".done"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_KEY = re.compile(r"^(?P<stem>.+?)(?:-(?P<name_hash>[0-9a-f]{8}))?-(?P<content>[0-9a-f]{12})$")


@dataclass(frozen=True)
class Signature:
    """What `lstat` says about a file: any write (and `cp -p`'s utime) changes ctime."""

    size: int
    mtime_ns: int
    ino: int
    ctime_ns: int

    @classmethod
    def of(cls, path: Path) -> Signature:
        st = path.lstat()
        return cls(st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)

    @classmethod
    def from_cursor(cls, value: Any) -> Signature | None:
        """The signature a cursor entry holds (None for entries of older cursors)."""
        if isinstance(value, dict) and {"size", "mtime_ns", "ino", "ctime_ns"} <= set(value):
            return cls(int(value["size"]), int(value["mtime_ns"]), int(value["ino"]), int(value["ctime_ns"]))
        return None

    @property
    def last_change_ns(self) -> int:
        return max(self.mtime_ns, self.ctime_ns)


@dataclass(frozen=True)
class LandingFile:
    """A complete file with content not taken yet: where, its signature, its sha256."""

    path: Path
    signature: Signature
    sha256: str


def _regular_inside(path: Path) -> bool:
    """A regular file (not a symlink, not a device) whose name is data, not a marker."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return False
    return stat.S_ISREG(mode) and not path.name.startswith(".") and path.suffix.lower() in SCORABLE_SUFFIXES


def landing_candidates(folder: Path) -> list[Path]:
    """Data files of the folder: regular files only (symlinks skipped), hidden files skipped."""
    return [p for p in sorted(folder.iterdir()) if _regular_inside(p)]


def skipped_links(folder: Path) -> list[str]:
    """Names of symlinks in the folder that look like data files (never followed)."""
    return [
        p.name for p in sorted(folder.iterdir()) if p.is_symlink() and p.suffix.lower() in SCORABLE_SUFFIXES
    ]


def marker(path: Path) -> Path:
    return path.with_name(path.name + DONE_SUFFIX)


def fresh_marker(path: Path, signature: Signature) -> bool:
    """A `.done` marker beside `path` written after the file's last change."""
    try:
        written = marker(path).lstat().st_mtime_ns
    except FileNotFoundError:
        return False
    # >=: timestamps come from a coarse clock, so an upload and its marker can share a tick.
    return written >= signature.last_change_ns


def _entry(state: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    value = state.get(kind, {}).get(name)
    if isinstance(value, dict):
        return value
    if kind == "scored" and isinstance(value, list) and len(value) >= 3:
        return {"sha256": value[2]}  # a cursor from before signatures: the hash is what counts
    return {}


def _settled(pending: dict[str, Any], name: str, signature: Signature, now: float, stable_s: float) -> bool:
    """Unchanged since an earlier look at least `stable_s` ago, and not written for `stable_s`."""
    seen = pending.get(name)
    if not isinstance(seen, dict) or Signature.from_cursor(seen) != signature:
        pending[name] = {**asdict(signature), "since": now}
        return False
    old_enough = now - signature.mtime_ns / 1e9 >= stable_s
    return now - float(seen["since"]) >= stable_s and old_enough and signature.size > 0


def new_complete_files(folder: Path, state: dict[str, Any], now: float, stable_s: float) -> list[LandingFile]:
    """Complete files of `folder` whose content was not taken yet (see the module docstring).

    `state` (the sensor's cursor) is updated: files still settling in `state["pending"]`, and a
    file whose signature changed but whose content did not gets its new signature in
    `state["scored"]`. Record what the caller takes with `take`."""
    pending: dict[str, Any] = state.setdefault("pending", {})
    scored: dict[str, Any] = state.setdefault("scored", {})
    ready = []
    for path in landing_candidates(folder):
        try:
            signature = Signature.of(path)
        except FileNotFoundError:
            continue  # moved away between listing and stat
        taken = _entry(state, "scored", path.name)
        if Signature.from_cursor(taken) == signature:
            pending.pop(path.name, None)
            continue
        if not (fresh_marker(path, signature) or _settled(pending, path.name, signature, now, stable_s)):
            continue
        try:
            sha = sha256_file(path)
            unchanged = Signature.of(path) == signature
        except FileNotFoundError:
            continue
        if not unchanged:
            pending.pop(path.name, None)  # written while hashing: not complete after all
            continue
        if taken.get("sha256") == sha:
            # Touched, copied over with the same bytes: nothing new to take.
            scored[path.name] = {**asdict(signature), "sha256": sha}
            pending.pop(path.name, None)
            with contextlib.suppress(FileNotFoundError):
                marker(path).unlink()
            continue
        ready.append(LandingFile(path, signature, sha))
    return ready


def take(state: dict[str, Any], file: LandingFile) -> None:
    """Remember `file`'s content as taken and consume its `.done` marker (a marker must never
    outlive the upload it announced)."""
    state.setdefault("pending", {}).pop(file.path.name, None)
    state.setdefault("scored", {})[file.path.name] = {**asdict(file.signature), "sha256": file.sha256}
    with contextlib.suppress(FileNotFoundError):
        marker(file.path).unlink()


def settling_names(state: dict[str, Any]) -> set[str]:
    return set(state.get("pending", {}))


def taken_names(state: dict[str, Any]) -> set[str]:
    return set(state.get("scored", {}))


def _name_part(file_name: str) -> str:
    safe = _UNSAFE.sub("_", file_name).replace("...", "_") or "_"
    return f"{safe}-{hashlib.sha256(file_name.encode('utf-8')).hexdigest()[:8]}"


def landing_key(file_name: str, sha256: str) -> str:
    """`<safe name>-<8 hex of sha256(name)>-<12 hex of the content's sha256>`: one per
    (name, content), readable, and safe as a Dagster partition key."""
    return f"{_name_part(file_name)}-{sha256[:12]}"


def key_content(key: str) -> str | None:
    """The 12 hex of content a key names (None: not a landing key)."""
    match = _KEY.match(key)
    return match["content"] if match else None


def _names_match(file_name: str, key: str) -> bool:
    match = _KEY.match(key)
    if match is None:
        return False
    if match["name_hash"]:
        return key == f"{_name_part(file_name)}-{match['content']}"
    # A key from before name hashes (`<safe name>-<content>`): the safe name must agree.
    return _UNSAFE.sub("_", file_name).replace("...", "_") == match["stem"]


def find_landing_file(folder: Path, key: str, prefix: str = "") -> tuple[Path, str]:
    """(the file of `folder` that `key` names, its sha256), its content checked against the key;
    else `RiskAppError` in one sentence (no such file, or its content changed). `prefix`: the
    keys of this folder were made from `prefix + name` (e.g. `uci_credit_card/` for a data set's
    outcome folder)."""
    content = key_content(key)
    if content is None:
        raise RiskAppError(f"partition {key!r} is not a landing file's key; give the file to score as input")
    named = [p for p in landing_candidates(folder) if _names_match(prefix + p.name, key)]
    for path in named:
        sha = sha256_file(path)
        if sha.startswith(content):
            return path, sha
    if not named:
        raise RiskAppError(
            f"partition {key!r}: no regular file in {folder} has the name it was made for (moved away?)"
        )
    raise RiskAppError(
        f"partition {key!r}: {named[0]} no longer has the content the partition was made for "
        f"(sha256 {content}...); the new content gets its own partition"
    )


__all__ = [
    "DONE_SUFFIX",
    "SCORABLE_SUFFIXES",
    "LandingFile",
    "Signature",
    "find_landing_file",
    "fresh_marker",
    "key_content",
    "landing_candidates",
    "landing_key",
    "new_complete_files",
    "settling_names",
    "skipped_links",
    "take",
    "taken_names",
]
