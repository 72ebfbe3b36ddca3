"""Joining a consortium: the terms a lender must share, and the one sentence when it does not.

Before a lender trains, the server sends it the consortium's terms (`ConsortiumTerms`): the data
set spec (the contract, not data: column names, types, categories, target), the fine-tuning
method, base model (and a content hash of its weights) and the signature of the trainable
tensors. The lender compares them with its
own and answers with its spec hash, its tensor signature and, where they differ, one sentence
naming the first difference (`spec_difference`). The server admits a lender only when both
hashes match; a refused lender is never sampled, and the sentence is in the round report.

    terms = ConsortiumTerms.build(spec, config, template)
    spec_difference(terms.spec_json, lender_spec)  # None, or "column 'purpose': ..."
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from data_contracts.spec import DatasetSpec
from risk_app.federated.tensors import TensorTemplate
from risk_app.finetune.config import TrainConfig

# Keys of the join messages (config records of Flower's get_properties exchange).
KEY_SPEC = "consortium_spec"
KEY_SPEC_HASH = "spec_hash"
KEY_TEMPLATE = "template"
KEY_METHOD = "method"
KEY_BASE = "base_model"
KEY_BASE_HASH = "base_hash"
KEY_LENDER = "lender"
KEY_REFUSAL = "refusal"


@dataclass(frozen=True)
class ConsortiumTerms:
    """What every member must share: the spec, the method and the tensors that travel."""

    spec_json: str
    spec_hash: str
    method: str
    method_params: str
    base_model: str
    base_hash: str
    template: str

    @classmethod
    def build(
        cls, spec: DatasetSpec, train: TrainConfig, template: TensorTemplate, base_hash: str
    ) -> ConsortiumTerms:
        return cls(
            spec_json=canonical_spec(spec),
            spec_hash=spec.hash,
            method=train.method,
            method_params=json.dumps(train.method_params, sort_keys=True),
            base_model=train.base_model,
            base_hash=base_hash,
            template=template.signature,
        )

    def as_config(self) -> dict[str, str]:
        return {
            KEY_SPEC: self.spec_json,
            KEY_SPEC_HASH: self.spec_hash,
            KEY_METHOD: self.method,
            "method_params": self.method_params,
            KEY_BASE: self.base_model,
            KEY_BASE_HASH: self.base_hash,
            KEY_TEMPLATE: self.template,
        }


def canonical_spec(spec: DatasetSpec) -> str:
    """The spec as JSON, keys in the spec's own order (the column order is part of the contract)."""
    return json.dumps(spec.model_dump(mode="json"), separators=(",", ":"))


def spec_difference(consortium_json: str, own: DatasetSpec) -> str | None:
    """None when the lender's spec is the consortium's; else one sentence naming the first difference."""
    theirs: dict[str, Any] = json.loads(consortium_json)
    mine: dict[str, Any] = own.model_dump(mode="json")
    if theirs == mine:
        return None
    lead = "the lender's data set spec differs from the consortium's"
    for key in ("name", "version"):
        if theirs.get(key) != mine.get(key):
            return f"{lead}: {key} is {mine.get(key)!r}, the consortium's is {theirs.get(key)!r}"
    their_cols: dict[str, Any] = theirs.get("columns", {})
    my_cols: dict[str, Any] = mine.get("columns", {})
    missing = [c for c in their_cols if c not in my_cols]
    if missing:
        return f"{lead}: column {missing[0]!r} is missing"
    extra = [c for c in my_cols if c not in their_cols]
    if extra:
        return f"{lead}: column {extra[0]!r} is not in the consortium's spec"
    if list(their_cols) != list(my_cols):
        return f"{lead}: the columns are in another order ({', '.join(my_cols)})"
    for column, their_col in their_cols.items():
        my_col = my_cols[column]
        for field in sorted(set(their_col) | set(my_col)):
            if their_col.get(field) != my_col.get(field):
                return _field_sentence(lead, column, field, my_col.get(field), their_col.get(field))
    for key in sorted(set(theirs) | set(mine)):
        if theirs.get(key) != mine.get(key):
            return f"{lead}: {key} is {mine.get(key)!r}, the consortium's is {theirs.get(key)!r}"
    return f"{lead}"  # unreachable: the dumps differ somewhere above


def _field_sentence(lead: str, column: str, field: str, mine: Any, theirs: Any) -> str:
    if field == "categories" and isinstance(mine, dict) and isinstance(theirs, dict):
        extra = [k for k in mine if k not in theirs]
        missing = [k for k in theirs if k not in mine]
        if extra:
            return f"{lead}: column {column!r} has category {extra[0]!r}, which the consortium's lacks"
        if missing:
            return f"{lead}: column {column!r} lacks category {missing[0]!r} of the consortium's"
        changed = next(k for k in theirs if theirs[k] != mine[k])
        return (
            f"{lead}: column {column!r} reads category {changed!r} as {mine[changed]!r}, "
            f"the consortium's as {theirs[changed]!r}"
        )
    return f"{lead}: column {column!r} has {field} {mine!r}, the consortium's is {theirs!r}"


def terms_difference(
    terms: dict[str, Any], own_spec: DatasetSpec, train: TrainConfig, template: str, base_hash: str
) -> str | None:
    """The lender's side of the join: None to accept the terms, else the first difference."""
    difference = spec_difference(str(terms[KEY_SPEC]), own_spec)
    if difference:
        return difference
    if terms[KEY_METHOD] != train.method or terms["method_params"] != json.dumps(
        train.method_params, sort_keys=True
    ):
        return (
            f"the lender fine-tunes with method {train.method!r} {train.method_params}, the consortium with "
            f"{terms[KEY_METHOD]!r} {terms['method_params']}"
        )
    if terms[KEY_BASE] != train.base_model:
        return f"the lender's base model is {train.base_model!r}, the consortium's is {terms[KEY_BASE]!r}"
    if terms[KEY_BASE_HASH] != base_hash:
        return (
            f"the lender's copy of base model {train.base_model!r} has other weights than the consortium's "
            f"(content hash {base_hash[:12]}, the consortium's {str(terms[KEY_BASE_HASH])[:12]})"
        )
    if terms[KEY_TEMPLATE] != template:
        return "the lender's trainable tensors (names and shapes) differ from the consortium's"
    return None
