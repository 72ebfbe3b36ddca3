"""The fetched real bases, where this machine has them cached (skipped otherwise; nothing is downloaded).

Fetch them first with `risk-app bases fetch NAME`. The check reads the converted folder's
config and tokenizer (seconds, no weights) and the marker the fetch wrote last.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from transformers import AutoConfig, AutoTokenizer

from risk_app import paths
from risk_app.models.catalogue import CATALOGUE, MARKER_FILE

# Read at import, before conftest points RISK_APP_HOME at a fresh folder for each test.
REAL_HOME = Path(os.environ.get("RISK_APP_HOME", paths.REPO_ROOT / "var"))


@pytest.mark.parametrize("name", list(CATALOGUE))
def test_cached_real_base_matches_its_catalogue_entry(name: str) -> None:
    spec = CATALOGUE[name]
    folder = REAL_HOME / "models" / "bases" / name
    if not (folder / MARKER_FILE).is_file():
        pytest.skip(f"{name} is not cached on this machine (risk-app bases fetch {name})")
    marker = json.loads((folder / MARKER_FILE).read_text())
    assert marker["sha256"] == spec.sha256 and marker["gguf_header"]["architecture"] == spec.architecture
    config = AutoConfig.from_pretrained(folder)
    assert (config.num_hidden_layers, config.hidden_size) == (spec.n_layers, spec.hidden_size)
    assert not hasattr(config, "quantization_config")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    ids = tokenizer("Checking account: < 0 DM. Duration: 6 months.")["input_ids"]
    assert 5 < len(ids) < 40 and tokenizer.decode(ids).endswith("6 months.")
