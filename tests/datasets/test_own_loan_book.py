"""A lender's own file: other columns, another target name, free text, a date, 0/1 or yes/no
labels. One spec file, no code change: validate, serialize, split (random or out of time),
baselines; `datasets init` drafts a spec that loads and validates the file it came from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from data_contracts.spec import load_spec
from risk_app.cli.datasets import datasets_app
from risk_app.data.examples import build_training_examples
from risk_app.data.load import load_applications
from risk_app.data.serialize import parse_clauses, serialize_frame
from risk_app.data.validate import validate_applications
from risk_app.errors import ConfigError
from risk_app.evaluate.baselines import fit_baseline, predict_default
from risk_app.evaluate.fairness import fairness_report
from risk_app.explain.reasons import reason_codes

SPEC = """
name: acme_loans
version: 1.0.0
description: ACME consumer loans, 2023-2024.
source: ACME loan book export
licence: proprietary
columns:
  loan_ref: {type: text, label: Loan reference}
  amount: {type: float, label: Loan amount, unit: EUR, min: 100, max: 50000, perturb: true}
  term: {type: integer, label: Term, unit: {singular: month, plural: months}, min: 6, max: 84}
  bureau_score: {type: integer, label: Bureau score, min: 300, max: 850, nullable: true}
  homeowner: {type: boolean, label: Homeowner}
  gender: {type: category, label: Gender, categories: {F: female, M: male, X: other}}
  employer: {type: text, label: Employer, max_chars: 24, nullable: true}
  branch: {type: category, label: Branch, categories: [north, south]}
  applied_on: {type: date, label: Application date}
  went_bad: {type: integer, label: Went bad, min: 0, max: 1}
id_column: loan_ref
target: {column: went_bad, positive: 1}
protected:
  - {column: gender, name: gender, groups: {female: [F], male: [M], other: [X]}}
exclude: [branch]
date_column: applied_on
"""


def lender_file(n: int = 240, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    score = rng.integers(350, 840, n)
    p_bad = 1 / (1 + np.exp((score - 560) / 60))
    frame = pd.DataFrame(
        {
            "loan_ref": [f"L{i:05d}" for i in range(n)],
            "amount": np.round(rng.uniform(500, 30000, n), 2),
            "term": rng.choice([12, 24, 36, 60], n),
            "bureau_score": score.astype(object),
            "homeowner": rng.choice(["yes", "no", "TRUE", "false"], n),
            "gender": rng.choice(["F", "M", "X"], n, p=[0.45, 0.5, 0.05]),
            "employer": rng.choice(["Acme Corp: logistics", "City hospital", "  self\nemployed  ", None], n),
            "branch": rng.choice(["north", "south"], n),
            "applied_on": pd.date_range("2023-01-01", periods=n, freq="2D").strftime("%Y-%m-%d"),
            "went_bad": (rng.uniform(size=n) < p_bad).astype(int),
            "internal_note": "not for the model",
        }
    )
    frame.loc[[5, 17], "bureau_score"] = None  # nullable: "unknown" in the text
    return frame


@pytest.fixture
def spec_path(tmp_path: Path) -> Path:
    path = tmp_path / "acme_loans.yaml"
    path.write_text(SPEC)
    return path


def test_a_lenders_file_is_train_ready_with_one_spec(tmp_path: Path, spec_path: Path) -> None:
    data = tmp_path / "acme.csv"
    lender_file().to_csv(data, index=False)
    spec = load_spec(spec_path)
    result = validate_applications(load_applications(data, spec=spec), str(data), spec=spec)
    assert result.n_in == 240 == result.n_valid
    assert result.extra_columns_ignored == ["internal_note"]
    valid = result.valid
    assert valid["application_id"].tolist()[:2] == ["L00000", "L00001"]  # the lender's id, library name
    assert valid["homeowner"].map(type).eq(bool).all()
    assert valid["default"].tolist() == valid["went_bad"].tolist()

    texts = serialize_frame(valid, spec=spec)
    row5 = texts.iloc[5]
    assert "Bureau score: unknown." in row5  # nullable and missing
    assert "Branch" not in row5 and "Went bad" not in row5 and "Application date" not in row5
    employer = [c for c in parse_clauses(texts.iloc[0]) if c.startswith("Employer:")][0]
    assert len(employer) <= len("Employer: ") + 24 + 1  # cut to max_chars
    assert ": logistics" not in texts.str.cat()  # a value cannot fake a clause
    assert all(len(parse_clauses(t)) == len(spec.feature_columns) for t in texts)

    random_split = build_training_examples(valid, seed=1, spec=spec)
    assert set(random_split["split"]) == {"train", "validation", "test"}
    oot = build_training_examples(valid, seed=1, spec=spec, split="out_of_time")
    dates = pd.to_datetime(valid["applied_on"])
    assert dates[oot["split"] == "train"].max() < dates[oot["split"] == "validation"].min()
    assert dates[oot["split"] == "validation"].max() < dates[oot["split"] == "test"].min()
    assert (oot["split"] == "train").sum() == 168  # 70 % of 240, oldest first

    train = valid[random_split["split"] == "train"]
    model = fit_baseline("logistic", train, spec=spec)
    p = predict_default(model, valid)
    assert p.shape == (240,) and np.isfinite(p).all()
    report = fairness_report(valid, p, 0.5, spec=spec)
    assert set(report.table["group"]) == {"gender"} and set(report.table["value"]) <= {
        "female",
        "male",
        "other",
    }


def test_out_of_time_split_needs_a_date_column() -> None:
    spec = load_spec("german_credit")
    valid = validate_applications(load_applications(spec.data_path), "g").valid.head(50)
    with pytest.raises(
        ConfigError, match="out-of-time split needs the date column of data set german_credit"
    ):
        build_training_examples(valid, spec=spec, split="out_of_time")


def test_protected_attributes_are_never_reasons_for_another_data_set(spec_path: Path) -> None:
    spec = load_spec(spec_path)
    valid = validate_applications(lender_file(40), "acme.csv", spec=spec).valid

    class GenderOnly:
        threshold = 0.5
        dataset_spec = spec

        def predict_texts(self, texts: list[str]) -> np.ndarray:
            return np.array([0.9 if "Gender: male." in t else 0.1 for t in texts])

    codes = reason_codes(valid, GenderOnly(), top_k=3)
    assert len(codes.wide) > 0 and "gender" not in set(codes.long["field"])
    assert codes.wide["reason_1"].isna().all()


def test_control_and_bidi_characters_are_quarantined(spec_path: Path) -> None:
    spec = load_spec(spec_path)
    frame = lender_file(30)
    frame.loc[2, "loan_ref"] = "L\u202e99999"  # right-to-left override in an id
    frame.loc[4, "employer"] = "Acme\u2066 Corp"  # bidi isolate in free text
    frame.loc[6, "employer"] = "Acme\x07Corp"  # a control character
    frame.loc[8, "employer"] = "Two\nlines are fine"
    result = validate_applications(frame, "acme.csv", spec=spec)
    assert result.n_in == 30 == result.n_valid + result.n_quarantined and result.n_quarantined == 3
    q = result.quarantine.set_index("row_number")
    assert q.loc[3, "column"] == "loan_ref" and q.loc[3, "failure_value"] == "L\\u202e99999"
    assert "bidirectional-override" in q.loc[5, "reason"] and q.loc[7, "column"] == "employer"
    # German credit ids too.
    german = load_applications(load_spec("german_credit").data_path).head(10)
    german.loc[1, "application_id"] = "app-\u202egood"
    assert validate_applications(german, "g.csv").n_quarantined == 1


def test_datasets_init_round_trip(tmp_path: Path) -> None:
    source = load_spec("uci_credit_card").data_path
    out = tmp_path / "cards.yaml"
    runner = CliRunner()
    args = ["init", "--input", str(source), "--target", "default", "--positive", "1", "--output", str(out)]
    first = runner.invoke(datasets_app, args)
    assert first.exit_code == 0, first.output
    assert "Review before training" in first.output and "MARRIAGE" in first.output
    text = out.read_text()
    assert text.startswith("# Draft dataset spec") and "inferred:" in text
    again = runner.invoke(datasets_app, args)
    assert again.exit_code == 2 and "already exists; pass --force" in again.output
    assert runner.invoke(datasets_app, [*args, "--force"]).exit_code == 0

    spec = load_spec(out)
    assert spec.name == "cards" and spec.target.column == "default" and spec.target.positive == 1
    assert spec.columns["LIMIT_BAL"].type == "float" and spec.columns["EDUCATION"].type == "category"
    assert [p.column for p in spec.protected] == ["MARRIAGE"]
    assert spec.data_path == source.resolve()
    result = validate_applications(load_applications(source, spec=spec), str(source), spec=spec)
    assert result.n_in == 6000 == result.n_valid
    assert serialize_frame(result.valid.head(2), spec=spec).iloc[0].startswith("Education: 1. Marriage: 2.")

    shown = runner.invoke(datasets_app, ["show", str(out)], terminal_width=200)
    assert shown.exit_code == 0 and "still marked inferred" in shown.output
    listed = runner.invoke(datasets_app, ["list"], terminal_width=200)
    assert "german_credit" in listed.output and "uci_credit_card" in listed.output


def test_datasets_init_refuses_a_positive_that_never_occurs(tmp_path: Path) -> None:
    source = load_spec("uci_credit_card").data_path
    out = tmp_path / "cards.yaml"
    result = CliRunner().invoke(
        datasets_app,
        ["init", "--input", str(source), "--target", "default", "--positive", "yes", "--output", str(out)],
    )
    assert result.exit_code == 2 and "--positive 'yes' never occurs in column 'default'" in result.output
    assert not out.exists()


def test_the_example_spec_in_the_docs_loads_and_reads_as_documented() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "datasets.md").read_text(encoding="utf-8")
    block = doc.split("## A complete example spec", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    from data_contracts.spec import parse_spec
    from risk_app.augment.synonyms import lexicon_for

    spec = parse_spec(block, "docs/datasets.md")
    assert spec.name == "acme_loans" and spec.feature_columns == (
        "amount",
        "term",
        "bureau_score",
        "homeowner",
        "gender",
        "employer",
        "officer_note",
    )
    row = {
        "loan_ref": "L1",
        "amount": 12000.5,
        "term": 36,
        "bureau_score": 612,
        "homeowner": True,
        "gender": "F",
        "employer": "Acme Corp: logistics",
        "officer_note": "<p>Note 2: Long-time customer,\n two loans repaid early.</p>",
        "branch": "north",
        "went_bad": 0,
    }
    documented = doc.split("With it, the first application reads:", 1)[1].split("##", 1)[0]
    assert serialize_frame(pd.DataFrame([row]), spec=spec).iloc[0] == " ".join(documented.split())
    assert lexicon_for(spec).alternative_to_canonical["euro"] == "EUR"
