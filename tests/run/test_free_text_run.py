"""A training run on a data set with free text, through the CLI: the budgets count the base
model's tokens, the record and the model card say what cleaning and the budgets did, a text
longer than the model's token limit is reported (never a silent cut), and the artifact scores
new applications with exactly the texts training saw."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from typer.testing import CliRunner

from data_contracts.spec import load_spec
from pipelines.cli import app
from risk_app import paths
from risk_app.data.serialize import serialize_frame
from risk_app.data.text import CUT_MARK
from risk_app.registry.artifact import load_risk_model
from risk_app.run.record import RunRecord
from risk_app.run.stages import EXAMPLES_FILE, VALID_FILE

runner = CliRunner()

NOTES = [
    None,
    "  Borrower added on 01/30/14 > Consolidate two credit cards.<br>",
    "<p>Steady job &amp; savings</p>",
    "I have been working as a nurse for twelve years and I want to pay off my car loan, my credit "
    "cards and a medical bill from last winter so that I only have one payment every month " * 3,
    "Réparer le toit de la maison",
]


def _book(folder: Path) -> tuple[Path, Path]:
    """German credit rows with an officer's note column, and its spec with a text block."""
    german = load_spec("german_credit")
    frame = pd.read_csv(german.data_path).sample(200, random_state=3).reset_index(drop=True)
    frame["note"] = [NOTES[i % len(NOTES)] for i in range(len(frame))]
    data = folder / "noted.csv"
    frame.to_csv(data, index=False)
    raw = yaml.safe_load(german.spec_path.read_text())
    raw.update(name="german_noted")
    raw.pop("data", None)
    raw["columns"]["note"] = {
        "type": "text",
        "label": "Officer's note",
        "nullable": True,
        "max_chars": 1000,
        "text": {
            "clean": {"remove": [r"Borrower added on \d{2}/\d{2}/\d{2} >"], "strip_html": True},
            "max_tokens": 24,
            "position": "end",
            "empty": "none given",
        },
    }
    spec = folder / "german_noted.yaml"
    spec.write_text(yaml.safe_dump(raw, allow_unicode=True))
    return data, spec


def test_a_run_with_free_text_counts_base_tokens_records_cuts_and_scores_the_same_texts(
    tiny_qwen2: Path, risk_app_home: Path
) -> None:
    data, spec_path = _book(risk_app_home)
    result = runner.invoke(
        app,
        ["train", "--data", str(data), "--dataset", str(spec_path), "--epochs", "1", "--no-register",
         "--set", "max_length=64", "--set", "batch_size=32"],
        terminal_width=300,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    # The tabular part of German credit already takes more than 64 tiny-qwen2 tokens: said loudly.
    assert "application texts are longer than max_length=64 tokens" in " ".join(result.output.split())
    (run_dir,) = [p for p in paths.runs_dir().iterdir() if p.is_dir()]
    record = RunRecord.load(run_dir)

    # What the budgets counted, and what cleaning and the budgets did (200 rows, 5 notes in turn: one long).
    assert record.dataset.text_tokens == "tokenizer of tiny-qwen2"
    note = record.dataset.text_columns["note"]
    assert (note.rows, note.empty, note.cleaned, note.cut_tokens, note.cut_chars) == (200, 40, 80, 40, 0)
    assert note.tokens_max <= 24 and note.counted_with == "tokenizer of tiny-qwen2" and note.position == "end"
    training = record.need("training")
    assert training.texts_over_max_length == 200 and training.longest_text_tokens > 64

    # The examples hold the cleaned, budgeted notes, last in each text.
    examples = pd.read_parquet(run_dir / EXAMPLES_FILE)
    texts = examples["text"].tolist()
    assert all("Borrower added" not in t and "<br>" not in t and "&amp;" not in t for t in texts)
    assert sum(t.endswith(CUT_MARK + ".") for t in texts) == 40
    assert all(t.rsplit(". ", 1)[1].startswith("Officer's note: ") for t in texts)

    # The card says it.
    artifact = Path(record.need("artifact").path)
    card = (artifact / "MODEL_CARD.md").read_text()
    assert "tokens counted with: tokenizer of tiny-qwen2" in card
    assert "| `note` | 200 | 80 | 0 | 40 | 40 |" in card
    assert "200 application texts are longer than the model's token limit (max_length=64" in card

    # Scoring through the artifact reads the notes exactly as training did (the tokenizer's
    # count, not the estimate, which would cut elsewhere).
    model = load_risk_model(artifact)
    assert model.dataset_spec.token_counter_name == "tokenizer of tiny-qwen2"
    valid = pd.read_parquet(run_dir / VALID_FILE)
    by_id = examples.set_index("application_id")["text"]
    assert model.serialize(valid) == by_id.loc[valid["application_id"].astype(str)].tolist()
    estimated = serialize_frame(valid, spec=load_spec(spec_path)).tolist()
    assert estimated != model.serialize(valid)  # so the check above can fail
    out = risk_app_home / "scored.csv"
    scored = runner.invoke(app, ["score", "-i", str(data), "-o", str(out), "--model", str(artifact)])
    assert scored.exit_code == 0, scored.output
    frame = pd.read_csv(out)
    assert len(frame) == 200 and np.isfinite(frame["probability_of_default"]).all()
