"""Marked sections in generated docs: each benchmark rewrites only its own section.

    replace_section(Path("docs/performance.md"), "main-command", text, title="# Performance")

A section sits between `<!-- BEGIN key -->` and `<!-- END key -->`; replacing it keeps the
hand-written text and other machines' sections around it. The file is written atomically.
"""

from __future__ import annotations

import re
from pathlib import Path

from risk_app.atomic import atomic_write_text


def replace_section(path: Path, key: str, body: str, *, header: str = "") -> None:
    """Put `body` in the section `key` of `path` (appended if absent; file created with `header`)."""
    start, end = f"<!-- BEGIN {key} -->", f"<!-- END {key} -->"
    block = f"{start}\n{body.rstrip()}\n{end}\n"
    text = path.read_text(encoding="utf-8") if path.exists() else header
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end) + r"\n?", re.S)
    text = (
        pattern.sub(lambda _: block, text, count=1) if pattern.search(text) else f"{text.rstrip()}\n\n{block}"
    )
    atomic_write_text(path, text.lstrip("\n"))
