"""A lender's messy export: money strings, odd dates, a loan-number id, state codes (issue 21 §7).

`datasets init` drafts typed columns with a `parse:` rule, and validation reads the cells by that
rule, so the valid rows hold numbers and dates; a cell the rule cannot read is quarantined with
the cell and the rule in one sentence.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from data_contracts.spec import parse_spec
from data_contracts.spec_draft import draft_spec
from data_contracts.spec_model import SpecError
from risk_app.workflow import ingest_and_validate

STATES = ["AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS",
          "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY",
          "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV",
          "WI", "WY", "DC", "PR"]  # fmt: skip


def _messy_file(tmp_path: Path, n: int = 400) -> Path:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "LoanNr_ChkDgt": 1_000_000_000 + rng.choice(10**6, n, replace=False) * 9973,
            "State": rng.choice(STATES, n),
            "ApprovalDate": (pd.Timestamp("1997-01-01") + pd.to_timedelta(rng.integers(0, 3000, n), unit="D"))
            .strftime("%d-%b-%y"),
            "GrAppv": [f"${a:,.2f} " for a in rng.integers(5, 500, n) * 1000],
            "Rate": [f"{r:.2f}%" for r in rng.uniform(3, 15, n)],
            "NoEmp": rng.integers(0, 50, n),
            "MIS_Status": rng.choice(["P I F", "CHGOFF"], n, p=[0.8, 0.2]),
        }
    )  # fmt: skip
    frame.loc[3, "GrAppv"] = "$1,2a4.00"  # a typo in one money cell
    frame.loc[5, "ApprovalDate"] = "31-Feb-97"  # a date that does not exist
    frame.loc[7, "ApprovalDate"] = "Nov-1997"  # a date, but not in the file's format: not guessed
    path = tmp_path / "sba.csv"
    frame.to_csv(path, index=False)
    return path


def test_the_draft_reads_money_percent_dates_ids_and_state_codes(tmp_path: Path) -> None:
    source = _messy_file(tmp_path)
    frame = pd.read_csv(source, dtype=str, keep_default_na=False)
    draft = draft_spec(frame, name="sba", target="MIS_Status", positive="CHGOFF", source_file=source)
    cols = draft.spec.columns
    assert draft.spec.id_column == "LoanNr_ChkDgt"
    assert cols["GrAppv"].type == "float" and cols["GrAppv"].parse is not None
    assert (cols["GrAppv"].parse.currency, cols["GrAppv"].parse.thousands) == ("$", ",")
    assert cols["Rate"].type == "float" and cols["Rate"].parse is not None and cols["Rate"].parse.percent
    assert cols["Rate"].min == 1.82  # rounded for a reviewer, not 1.8239999999999998
    assert cols["ApprovalDate"].type == "date" and cols["ApprovalDate"].parse is not None
    assert cols["ApprovalDate"].parse.format == "%d-%b-%y"
    assert draft.spec.date_column == "ApprovalDate"
    assert cols["State"].type == "category" and len(cols["State"].categories or {}) == len(STATES)

    spec_file = tmp_path / "sba.yaml"
    spec_file.write_text(draft.spec.to_yaml())
    result = ingest_and_validate(source, require_target=None, spec=spec_file)
    assert (result.n_in, result.n_valid, result.n_quarantined) == (400, 397, 3)
    assert result.valid["GrAppv"].dtype == "float64" and result.valid["Rate"].dtype == "float64"
    assert str(result.valid["ApprovalDate"].dtype).startswith("datetime64")
    first = result.valid.set_index("LoanNr_ChkDgt").iloc[0]
    assert first["GrAppv"] == float(frame.loc[0, "GrAppv"].strip("$ ").replace(",", ""))
    reasons = result.quarantine.set_index("column")["reason"]
    assert reasons["ApprovalDate"].tolist()[1] == (
        "row 8, field ApprovalDate='Nov-1997': cannot be read as a date (spec parse: format %d-%b-%y)"
    )
    reasons = result.quarantine.drop_duplicates("column").set_index("column")["reason"]
    assert reasons["GrAppv"] == (
        "row 4, field GrAppv='$1,2a4.00': cannot be read as a number "
        '(spec parse: {"currency":"$","thousands":","})'
    )
    assert reasons["ApprovalDate"] == (
        "row 6, field ApprovalDate='31-Feb-97': cannot be read as a date (spec parse: format %d-%b-%y)"
    )


@pytest.mark.parametrize(
    ("column", "parse", "message"),
    [
        ("purpose", {"currency": "$"}, "only for integer or float columns, not category"),
        ("credit_amount", {"format": "%d-%b-%y"}, "a date format is only for date columns"),
        ("credit_amount", {"thousands": ",", "decimal": ","}, "thousands and decimal are both ','"),
        ("credit_amount", {"currency": "$$$$"}, "at most 3 characters"),
        ("credit_amount", {"cents": True}, "unknown key"),
    ],
)
def test_a_parse_rule_that_does_not_fit_its_column_is_refused(column: str, parse: dict, message: str) -> None:
    from data_contracts.spec import load_spec

    raw = yaml.safe_load(load_spec("german_credit").to_yaml())
    raw["columns"][column]["parse"] = parse
    with pytest.raises(SpecError, match=message):
        parse_spec(yaml.safe_dump(raw), "lender.yaml")


def test_a_date_format_is_data_not_code() -> None:
    from data_contracts.spec_parse import ParseSpec

    with pytest.raises(ValueError, match="not a date format"):
        ParseSpec(format="%d-%b-%y'; import os")
