"""A small synthetic loan book whose default depends only on one word of a free-text note."""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_contracts.spec import DatasetSpec, parse_spec

SPEC = """
name: notes_book
version: 1.0.0
description: Synthetic loans; default depends only on a word in the loan officer's note.
source: generated in tests
licence: CC0
columns:
  application_id: {type: text, label: Application id}
  income: {type: float, label: Income, min: 0}
  region: {type: category, label: Region, categories: [north, south, east]}
  note: {type: text, label: Officer note, nullable: true, max_chars: 200}
  bad: {type: integer, label: Bad, min: 0, max: 1}
target: {column: bad, positive: 1}
"""
FILLER = [
    "stable",
    "job",
    "salary",
    "rent",
    "family",
    "car",
    "savings",
    "account",
    "paid",
    "monthly",
    "loan",
    "home",
    "repair",
    "student",
    "teacher",
    "nurse",
    "driver",
    "city",
    "village",
    "small",
    "business",
    "wedding",
    "travel",
    "medical",
    "bills",
]
SIGNAL = "casino"


def notes_spec() -> DatasetSpec:
    return parse_spec(SPEC, "notes_book.yaml")


def notes_book(n: int, seed: int, *, signal_rate: float = 0.3) -> pd.DataFrame:
    """`n` applications: income and region are noise; a note that mentions the casino defaults
    85 % of the time, any other note 10 %. A tenth of the notes are missing."""
    rng = np.random.default_rng(seed)
    has_signal = rng.random(n) < signal_rate
    notes: list[str | None] = []
    for flag in has_signal:
        words = list(rng.choice(FILLER, size=int(rng.integers(4, 9))))
        if flag:
            words.insert(int(rng.integers(0, len(words) + 1)), SIGNAL)
        notes.append(" ".join(words))
    bad = (rng.random(n) < np.where(has_signal, 0.85, 0.10)).astype(int)
    frame = pd.DataFrame(
        {
            "application_id": [f"s{seed}-{i}" for i in range(n)],
            "income": rng.lognormal(10, 0.5, n),
            "region": rng.choice(["north", "south", "east"], n),
            "note": notes,
            "bad": bad,
        }
    )
    missing = rng.random(n) < 0.1
    frame.loc[missing & ~has_signal, "note"] = None
    return frame
