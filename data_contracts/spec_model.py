"""The dataset spec as typed pydantic models, with every cross-field rule checked on load.

`DatasetSpec` is what a spec.yaml file holds (see `data_contracts.spec` for loading and
docs/datasets.md for the format). Each model rejects unknown keys. The cross-field rules (a
target that is not a column, categories on a numeric column, min > max, duplicate labels ...)
live in `data_contracts.spec_rules`; they are all collected so that one load reports every
mistake at once, each as "field.path: problem"; `SpecError` prefixes the spec file. The
constants the rules share with this module live below both, in `data_contracts.spec_values`;
the pandera schema is built from a spec by `data_contracts.spec_schema.build_schema`.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from data_contracts.spec_parse import ParseSpec
from data_contracts.spec_rules import column_problems, role_problems
from data_contracts.spec_text import ESTIMATED_TOKENS, TextSpec, TokenCounter
from data_contracts.spec_values import BOOLEAN_VALUES, RESERVED_COLUMNS, canonical_value
from risk_app.errors import ConfigError

DEFAULT_DATASET = "german_credit"
BUILTIN_DIR = Path(__file__).resolve().parent.parent / "risk_app" / "datasets"

ColumnType = Literal["integer", "float", "category", "boolean", "date", "text"]
NUMERIC_TYPES: frozenset[str] = frozenset({"integer", "float"})
# The most characters a free-text cell may be read for (about 5,000 tokens): cleaning patterns
# run on at most this many characters of a cell.
MAX_TEXT_CHARS = 20_000


class SpecError(ConfigError):
    """A spec file with mistakes: one message naming the file and, per mistake, the field."""

    def __init__(self, source: object, problems: list[str]) -> None:
        self.source = str(source)
        self.problems = list(problems)
        body = problems[0] if len(problems) == 1 else f"{len(problems)} problems: " + "; ".join(problems)
        super().__init__(f"{self.source}: {body}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Unit(_Strict):
    """Unit printed after a number: "1 month", "6 months"; amounts often use one word for both."""

    singular: str = Field(min_length=1, description="Unit after the number 1, e.g. 'month'.")
    plural: str = Field(min_length=1, description="Unit after any other number, e.g. 'months'.")

    @model_validator(mode="before")
    @classmethod
    def _from_short_form(cls, value: Any) -> Any:
        if isinstance(value, str):  # `unit: DM`
            return {"singular": value, "plural": value}
        if isinstance(value, list) and len(value) == 2:  # `unit: [month, months]`
            return {"singular": value[0], "plural": value[1]}
        return value


class ColumnSpec(_Strict):
    """One column: its type, how the model reads it, and what values are allowed."""

    type: ColumnType = Field(description="integer, float, category, boolean, date or text (free text).")
    label: str = Field(min_length=1, description="Human label in the model's text, e.g. 'Credit amount'.")
    unit: Unit | None = Field(default=None, description="Unit after a number (numeric columns only).")
    nullable: bool = Field(default=False, description="May the value be missing? Missing reads 'unknown'.")
    categories: dict[str, str] | None = Field(
        default=None,
        description="Allowed values of a category column: a list, or value -> text the model reads.",
    )
    min: float | None = Field(default=None, description="Smallest allowed value (numeric columns).")
    max: float | None = Field(default=None, description="Largest allowed value (numeric columns).")
    max_chars: int | None = Field(
        default=None,
        gt=0,
        le=MAX_TEXT_CHARS,
        description="Free text: hard cap on the characters read from a cell, before cleaning; a longer "
        "cell is cut on a word boundary and marked with '…'.",
    )
    text: TextSpec | None = Field(
        default=None,
        description="Free text: cleaning rules, token budget, place in the prompt and what an empty "
        "text reads (data_contracts.spec_text).",
    )
    perturb: bool = Field(
        default=False, description="number_perturbation augmentation may nudge this value within [min, max]."
    )
    parse: ParseSpec | None = Field(
        default=None, description="How the file writes the cells: money, percent or a date format."
    )
    description: str = Field(default="", description="What the column means, for reviewers.")
    inferred: list[str] = Field(
        default_factory=list, description="Fields `risk-app datasets init` guessed; review, then remove."
    )

    @field_validator("categories", mode="before")
    @classmethod
    def _categories_as_mapping(cls, value: Any) -> Any:
        # YAML reads `1: graduate school` with an int key; values are matched as text.
        if isinstance(value, list):
            return {str(v): str(v) for v in value}
        if isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items()}
        return value

    @property
    def is_numeric(self) -> bool:
        return self.type in NUMERIC_TYPES


class TargetSpec(_Strict):
    """The label column and which of its values means default."""

    column: str = Field(description="Name of the target column.")
    positive: str | int | bool = Field(description="The value that means default, e.g. bad or 1.")


class ProtectedSpec(_Strict):
    """A protected attribute and how fairness reports group it."""

    column: str = Field(description="The protected column.")
    name: str | None = Field(default=None, description="Group name in fairness tables (default: the column).")
    edges: list[float] | None = Field(
        default=None, description="Band edges for a numeric column: [25, 35, 50] -> <25, 25-34, 35-49, 50+."
    )
    groups: dict[str, list[str]] | None = Field(
        default=None, description="Group -> category values, e.g. sex from personal_status_and_sex."
    )

    @property
    def group_name(self) -> str:
        return self.name or self.column


class SynonymGroup(_Strict):
    """A data-set-specific synonym group for the financial_synonyms augmenter."""

    canonical: str = Field(description="One word that occurs in this data set's text.")
    alternatives: list[str] = Field(min_length=1, description="Words that mean the same wherever it occurs.")


class CreditCosts(_Strict):
    """Credit-policy costs of the two errors (German credit documentation: 5 to 1)."""

    cost_missed_default: float = Field(gt=0, description="Cost of approving an applicant who defaults.")
    cost_declined_good: float = Field(gt=0, description="Cost of declining an applicant who would repay.")


class DatasetSpec(_Strict):
    """A data set: identity, ordered columns and roles. Load with `data_contracts.spec.load_spec`."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="snake_case name, e.g. german_credit.")
    version: str = Field(min_length=1, description="Spec version; bump when a column or rule changes.")
    description: str = Field(description="What the data set is, printed on the model card.")
    source: str = Field(description="Where the data come from.")
    licence: str = Field(description="Licence of the data.")
    citation: str | None = Field(default=None, description="How to cite the data.")
    limitations: list[str] = Field(
        default_factory=list, description="Known limitations of the data, printed on the model card."
    )
    data: str | None = Field(default=None, description="Bundled data file, relative to the spec file.")
    columns: dict[str, ColumnSpec] = Field(min_length=1, description="Columns in text order.")
    id_column: str = Field(
        default="application_id", description="Unique id; generated when absent from a file."
    )
    target: TargetSpec = Field(description="Label column and its default value.")
    protected: list[ProtectedSpec] = Field(default_factory=list, description="Protected attributes.")
    exclude: list[str] = Field(default_factory=list, description="Columns never given to the model.")
    date_column: str | None = Field(default=None, description="Application date (out-of-time split).")
    synonyms: list[SynonymGroup] = Field(default_factory=list, description="Extra augmentation synonyms.")
    costs: CreditCosts | None = Field(default=None, description="Credit-policy error costs.")

    _spec_path: Path | None = PrivateAttr(default=None)
    _token_counter: TokenCounter | None = PrivateAttr(default=None)
    _token_counter_name: str = PrivateAttr(default=ESTIMATED_TOKENS)

    @model_validator(mode="after")
    def _check_rules(self) -> DatasetSpec:
        problems = [p for name, col in self.columns.items() for p in column_problems(name, col)]
        problems += role_problems(self)
        if problems:
            raise ValueError("\n".join(problems))
        return self

    # --- derived views -------------------------------------------------------------------
    @property
    def spec_path(self) -> Path | None:
        return self._spec_path

    @property
    def data_path(self) -> Path | None:
        if self.data is None:
            return None
        base = self._spec_path.parent if self._spec_path is not None else BUILTIN_DIR / self.name
        return (base / self.data).resolve()

    @property
    def contract_version(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def feature_columns(self) -> tuple[str, ...]:
        never = {self.id_column, self.target.column, self.date_column, *self.exclude}
        return tuple(name for name in self.columns if name not in never)

    def _features_of(self, *types: str) -> tuple[str, ...]:
        return tuple(c for c in self.feature_columns if self.columns[c].type in types)

    @property
    def numeric_columns(self) -> tuple[str, ...]:
        return self._features_of("integer", "float")

    @property
    def categorical_columns(self) -> tuple[str, ...]:
        return self._features_of("category", "boolean")

    @property
    def text_columns(self) -> tuple[str, ...]:
        return self._features_of("text")

    def text_spec(self, column: str) -> TextSpec:
        """How free-text column `column` is read (the defaults when it has no `text:` block)."""
        return self.columns[column].text or TextSpec()

    @property
    def protected_columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.column for p in self.protected))

    def label(self, column: str) -> str:
        if column not in self.columns:
            raise ConfigError(f"data set {self.name}: no column {column!r}")
        return self.columns[column].label

    @property
    def hash(self) -> str:
        data = self.model_dump(mode="json")
        for col in data["columns"].values():
            if col.get("text") is None:
                col.pop("text", None)  # a spec without text blocks keeps the hash it had before them
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    # --- how tokens of free text are counted ------------------------------------------------
    def counting_tokens_with(self, counter: TokenCounter, name: str) -> DatasetSpec:
        """A copy of this spec whose free-text budgets (`text.max_tokens`) count tokens with
        `counter` (e.g. the base model's tokenizer, `risk_app.data.text.tokenizer_counter`).

        The counter is part of how a model reads the data, not of the data contract: the copy
        has the same hash and YAML. A run binds it once, where the tokenizer is known, and
        every serialization from that spec (training examples, augmentation, the hybrid,
        reason codes, scoring through the artifact) counts the same way."""
        bound = self.model_copy()
        bound._token_counter = counter
        bound._token_counter_name = name
        return bound

    @property
    def token_counter(self) -> TokenCounter | None:
        """The bound token counter; None means the documented estimate (risk_app.data.text)."""
        return self._token_counter

    @property
    def token_counter_name(self) -> str:
        """What counts tokens: the name given to `counting_tokens_with`, or "estimate"."""
        return self._token_counter_name

    def to_yaml(self) -> str:
        data = self.model_dump(mode="json", exclude_defaults=True)
        for col in data["columns"].values():
            cats = col.get("categories")
            if cats and all(k == v for k, v in cats.items()):
                col["categories"] = list(cats)  # a plain list reads better when text == value
            for bound in ("min", "max"):
                if isinstance(col.get(bound), float) and col[bound].is_integer():
                    col[bound] = int(col[bound])  # "max: 120", not "max: 120.0"
            unit = col.get("unit")
            if unit and unit["singular"] == unit["plural"]:
                col["unit"] = unit["singular"]
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)

    def default_flag(self, series: pd.Series) -> pd.Series:
        """1 where the target means default, 0 otherwise; missing stays <NA> (Int64)."""
        positive = canonical_value(self.target.positive)
        is_bool = self.columns[self.target.column].type == "boolean"
        if is_bool:
            positive = str(BOOLEAN_VALUES[positive.lower()]).lower()

        def flag(value: Any) -> Any:
            if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
                return pd.NA
            text = canonical_value(value)
            if is_bool:
                text = str(BOOLEAN_VALUES.get(text.lower(), text)).lower()
            return int(text == positive)

        flags = series.map(flag)
        return flags.astype("int64") if flags.notna().all() else flags.astype("Int64")


__all__ = [
    "BOOLEAN_VALUES",
    "BUILTIN_DIR",
    "DEFAULT_DATASET",
    "RESERVED_COLUMNS",
    "ColumnSpec",
    "ColumnType",
    "CreditCosts",
    "DatasetSpec",
    "ProtectedSpec",
    "SpecError",
    "SynonymGroup",
    "TargetSpec",
    "Unit",
]
