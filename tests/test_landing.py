"""risk_app.landing: keys unique per (name, content), and going back from a key to its file."""

from __future__ import annotations

from pathlib import Path

import pytest

from risk_app.errors import RiskAppError
from risk_app.landing import find_landing_file, key_content, landing_key
from risk_app.storage.scores import file_batch_id


def test_keys_are_unique_per_name_and_content_and_readable() -> None:
    names = ["a b.csv", "a_b.csv", "a;b.csv", "a...b.csv", "ä b.csv"]
    keys = {landing_key(name, "f" * 64) for name in names}
    assert len(keys) == len(names)
    assert landing_key("a b.csv", "0123456789ab" + "0" * 52).startswith("a_b.csv-")
    assert all(key_content(k) == "f" * 12 for k in keys)
    assert key_content("manual-batch") is None


def test_a_key_finds_its_file_and_checks_its_content(tmp_path: Path) -> None:
    spaced, underscored = tmp_path / "a b.csv", tmp_path / "a_b.csv"
    spaced.write_text("x\n1\n")
    underscored.write_text("x\n2\n")
    for path in (spaced, underscored):
        key = landing_key(path.name, file_batch_id(path))
        assert find_landing_file(tmp_path, key) == (path, file_batch_id(path))
    # A key from before name hashes still finds the file whose content it names.
    old = f"a_b.csv-{file_batch_id(spaced)[:12]}"
    assert find_landing_file(tmp_path, old)[0] == spaced
    key = landing_key(spaced.name, file_batch_id(spaced))
    spaced.write_text("x\n3\n")
    with pytest.raises(RiskAppError, match="no longer has the content"):
        find_landing_file(tmp_path, key)
    spaced.unlink()
    with pytest.raises(RiskAppError, match="no regular file"):
        find_landing_file(tmp_path, key)
    with pytest.raises(RiskAppError, match="not a landing file's key"):
        find_landing_file(tmp_path, "manual-batch")
