"""Facts about the data a run trains on, read from the data set's spec and the examples.

`dataset_facts` is where the run record's dataset section comes from: the spec's identity
(name, version, hash, description, origin, licence, target, protected attributes), the file, the
data hash, split sizes, the fields left out of the text, data-quality warnings, and what cleaning
and token budgets did to each free-text column (`risk_app.data.text.text_column_stats`).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from data_contracts.spec import DatasetSpec, load_spec
from risk_app.data.quality import detached_sorted_columns
from risk_app.data.serialize import clause_label, field_labels, parse_clauses
from risk_app.data.text import text_column_stats, text_warnings, tokenizer_counter
from risk_app.models.loader import load_tokenizer
from risk_app.run.record import DatasetFacts

SPLITS = ("train", "validation", "test")


def spec_counting_tokens_of(spec: Any, base_model: str) -> DatasetSpec:
    """The data set's spec with its free-text budgets (`text.max_tokens`) counted in tokens of
    `base_model`'s tokenizer; the spec unchanged when it has no free text. Bind it before the
    examples are serialized and pass it to every later stage: the artifact counts the same way."""
    spec = load_spec(spec)
    if not spec.text_columns:
        return spec
    counter = tokenizer_counter(load_tokenizer(base_model))
    return spec.counting_tokens_with(counter, f"tokenizer of {base_model}")


def excluded_fields(examples: pd.DataFrame, spec: Any) -> list[str]:
    """Fields left out of the serialized text, read off the texts themselves.

    The texts are the truth of what the model saw; deriving the exclusion from them means no
    caller (CLI, Dagster asset, notebook) can train with one set of fields and save another.
    """
    labels = field_labels(spec)
    originals = examples.loc[~examples["augmented"].astype(bool), "text"]
    if originals.empty:
        return []
    by_label = {label: name for name, label in labels.items()}
    present = {by_label.get(clause_label(c)) for c in parse_clauses(str(originals.iloc[0]))}
    return [name for name in labels if name not in present]


def quality_warnings(valid: pd.DataFrame, spec: Any) -> list[str]:
    """Plain-words data-quality findings for the model card."""
    detached = detached_sorted_columns(valid, list(spec.categorical_columns))
    return [
        f"Data quality: `{column}` is sorted in contiguous blocks in the training file while the rows are "
        "not, so it has probably been detached from its rows upstream; treat it (and any fairness "
        "result grouped by it) as unreliable."
        for column in detached
    ]


def split_vintages(valid: pd.DataFrame, examples: pd.DataFrame, spec: Any) -> dict[str, list[str]]:
    """Months of application dates per split ({} when the data set has no date column)."""
    column = spec.date_column
    if not column or column not in valid.columns:
        return {}
    months = pd.Series(
        pd.to_datetime(valid[column]).dt.strftime("%Y-%m").to_numpy(),
        index=valid["application_id"].astype(str),
    )
    originals = examples.loc[~examples["augmented"].astype(bool)]
    found = originals.assign(month=originals["application_id"].astype(str).map(months)).dropna(
        subset=["month"]
    )
    return {split: sorted(found.loc[found["split"] == split, "month"].unique()) for split in SPLITS}


def dataset_facts(
    valid: pd.DataFrame,
    examples: pd.DataFrame,
    *,
    source: str,
    spec: Any,
    data_hash: str,
    split_strategy: str = "stratified",
    split_seed: int = 42,
) -> DatasetFacts:
    """The record's dataset section for these validated rows and their examples."""
    spec = load_spec(spec)
    excluded = excluded_fields(examples, spec)
    text = text_column_stats(spec, valid[[c for c in spec.text_columns if c in valid and c not in excluded]])
    return DatasetFacts(
        name=spec.name,
        spec_version=spec.version,
        spec_hash=spec.hash,
        description=spec.description,
        origin=spec.source,
        licence=spec.licence,
        limitations=list(getattr(spec, "limitations", []) or []),
        target=f"`{spec.target.column}` ({spec.target.positive!r} = default = 1)",
        protected=list(spec.protected_columns),
        costs=(spec.costs.cost_missed_default, spec.costs.cost_declined_good) if spec.costs else None,
        source=source,
        data_hash=data_hash,
        split_strategy=split_strategy,
        split_seed=split_seed,
        rows={s: int((examples["split"] == s).sum()) for s in SPLITS},
        augmented_rows=int(examples["augmented"].astype(bool).sum()),
        excluded_fields=excluded,
        vintages=split_vintages(valid, examples, spec),
        quality_warnings=quality_warnings(valid, spec) + text_warnings(text, spec),
        text_columns=text,
        text_tokens=spec.token_counter_name,
    )


def structured_splits(valid: pd.DataFrame, examples: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The original (non-augmented) structured rows of each split, for classical baselines."""
    originals = examples.loc[~examples["augmented"].astype(bool), ["application_id", "split"]]
    rows = valid.assign(application_id=valid["application_id"].astype(str))
    merged = rows.merge(originals, on="application_id", how="inner")
    return {name: merged.loc[merged["split"] == name].reset_index(drop=True) for name in SPLITS}
