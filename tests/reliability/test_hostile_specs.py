"""Specs that are bombs or lie are refused in one sentence, fast (issue 20 §2)."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from data_contracts.spec import load_spec, parse_spec
from data_contracts.spec_model import SpecError
from data_contracts.spec_rules import MAX_CATEGORIES
from data_contracts.spec_yaml import MAX_SPEC_BYTES
from pipelines.cli import app
from risk_app import paths


def _german_yaml() -> str:
    return load_spec("german_credit").to_yaml()


def _alias_bomb(levels: int) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels + 1):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines)


def test_an_alias_bomb_in_categories_is_refused_at_once() -> None:
    text = _german_yaml()
    target = "  purpose:\n    type: category\n"
    assert target in text
    bomb = _alias_bomb(9) + "\n" + text.replace(target, target + "    categories: *a9\n", 1)
    assert len(bomb.encode()) < 20_000
    started = time.perf_counter()
    with pytest.raises(SpecError, match=r"line 2: YAML aliases \(\*a0\) are not allowed"):
        parse_spec(bomb, "bomb.yaml")
    assert time.perf_counter() - started < 2.0  # the 7-level bomb took 58 s and 718 MB before


def test_any_alias_is_refused_even_a_harmless_one() -> None:
    with pytest.raises(SpecError, match="aliases"):
        parse_spec("name: &n x\nversion: *n\n", "small.yaml")


def test_a_column_declared_twice_names_both_lines() -> None:
    text = _german_yaml()
    lines = text.splitlines()
    start = lines.index("  duration_in_month:")
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].startswith("    "))
    block = lines[start:end]
    loose = [line for line in block if "max:" not in line]  # the second copy drops the range check
    doubled = "\n".join(lines[:end] + loose + lines[end:])
    with pytest.raises(SpecError) as caught:
        parse_spec(doubled, "twice.yaml")
    message = str(caught.value)
    assert f"line {end + 1}: key 'duration_in_month' is given twice (first on line {start + 1})" in message


def test_too_many_categories_and_too_many_bytes_are_refused() -> None:
    raw = yaml.safe_load(_german_yaml())
    raw["columns"]["purpose"]["categories"] = [f"p{i}" for i in range(MAX_CATEGORIES + 1)]
    started = time.perf_counter()
    with pytest.raises(SpecError, match=rf"columns.purpose.categories: {MAX_CATEGORIES + 1:,} categories"):
        parse_spec(yaml.safe_dump(raw), "wide.yaml")
    assert time.perf_counter() - started < 5.0
    with pytest.raises(SpecError, match=f"at most {MAX_SPEC_BYTES:,}"):
        parse_spec(_german_yaml() + "#" * MAX_SPEC_BYTES, "huge.yaml")


def test_validate_refuses_a_positive_label_that_never_occurs(tmp_path: Path) -> None:
    frame = pd.read_csv(paths.DEFAULT_DATASET)
    spec_file = tmp_path / "spec.yaml"
    raw = yaml.safe_load(_german_yaml())
    raw["data"] = None
    spec_file.write_text(yaml.safe_dump(raw))
    only_good = tmp_path / "only_good.csv"
    frame[frame["creditability"] == "good"].head(50).to_csv(only_good, index=False)
    result = CliRunner().invoke(app, ["validate", "--input", str(only_good), "--dataset", str(spec_file)])
    assert result.exit_code != 0
    assert "the positive label 'bad'" in result.output and "never occurs" in result.output
    # A scoring file (no target column) is still checked as one.
    scoring = tmp_path / "scoring.csv"
    frame.drop(columns=["creditability"]).head(50).to_csv(scoring, index=False)
    ok = CliRunner().invoke(app, ["validate", "--input", str(scoring), "--dataset", str(spec_file)])
    assert ok.exit_code == 0, ok.output
    assert "50 rows: 50 valid, 0 quarantined" in " ".join(ok.output.split())
