"""Content hashes of files: the one sha256 reader behind batch ids, artifact and base-model pins.

    from risk_app.storage.hashing import sha256_file
    sha256_file("landing/batch_A.csv")   # 64 hex characters
"""

from __future__ import annotations

import hashlib
import os

_BLOCK = 1 << 20  # read 1 MiB at a time: a multi-GB base model never sits in memory whole


def sha256_file(path: str | os.PathLike[str]) -> str:
    """sha256 of the file's bytes, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()
