"""Where the `rlhf` reward model's preference pairs come from, and whether there are enough.

Three sources (`RlhfParams.feedback_source`):

* `override_ledger` (the default) — analysts' overrides of the run's data set, accepted into
  `risk.overrides` (`risk-app overrides add`, the override landing sensor), each a pair oriented
  and weighted by its outcome where one is known (`risk_app.overrides.pairs`);
* `file` — an analyst-feedback CSV (`data_contracts.analyst_feedback`) at `feedback_path` with
  its applications (`applications_path`, `applications_dataset`); chosen when a path is given;
* `synthetic_demo` — the bundled SYNTHETIC German credit sample (simulated analysts, made by
  `bench/make_feedback_sample.py`): a labelled demo, never feedback; every report says so.

`rlhf` refuses to start, in one sentence that says how many pairs it found and how many it needs
(`min_feedback_pairs`), when the source holds too few: a reward model fitted to a handful of
decisions learns the approval rate and little else (docs/methods.md, "rlhf").

    feedback = load_feedback(cfg, data.dataset, seed=42)
    feedback.pairs, feedback.description
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import pandas as pd

from data_contracts.spec import DatasetSpec, load_spec
from risk_app.errors import ConfigError
from risk_app.finetune.objectives.reward_model import DEFAULT_FEEDBACK_PATH, load_preference_pairs
from risk_app.overrides.pairs import PairDecisions, override_preference_pairs

FeedbackSource = Literal["override_ledger", "file", "synthetic_demo"]
DEMO_DATASET = "german_credit"  # the data set the synthetic sample's ids belong to


class FeedbackSettings(Protocol):
    """The feedback keys of `RlhfParams`."""

    feedback_source: FeedbackSource | None
    feedback_path: str | None
    applications_path: str | None
    applications_dataset: str | None
    max_feedback_rows: int | None
    min_feedback_pairs: int
    ledger_decisions: PairDecisions


@dataclass(frozen=True)
class Feedback:
    """The reward model's pairs, where they came from, and that in one phrase for the reports."""

    pairs: pd.DataFrame
    source: FeedbackSource
    description: str


def resolve_source(settings: FeedbackSettings) -> FeedbackSource:
    """The source in force: as set; else `file` when a feedback path is given; else the ledger."""
    if settings.feedback_source is not None:
        if settings.feedback_source != "file" and settings.feedback_path is not None:
            raise ConfigError(
                f"method 'rlhf': feedback_path is set but feedback_source is {settings.feedback_source!r}; "
                "a path is read only with feedback_source 'file'"
            )
        return settings.feedback_source
    return "file" if settings.feedback_path is not None else "override_ledger"


def _subset(pairs: pd.DataFrame, max_rows: int | None, seed: int) -> pd.DataFrame:
    if max_rows is None or max_rows >= len(pairs):
        return pairs
    return pairs.sample(n=max_rows, random_state=seed).sort_index()


def _ledger_pairs(
    settings: FeedbackSettings, dataset: DatasetSpec | str | None, exclude: Sequence[str]
) -> tuple[pd.DataFrame, str]:
    """(pairs, where they are) from the override ledger of the run's data set, their texts
    leaving out the fields the run's texts leave out."""
    named = settings.applications_dataset or dataset
    if named is None:
        raise ConfigError(
            "method 'rlhf': feedback_source 'override_ledger' needs the run's data set; train through "
            "`risk-app train` or the training job (they pass it), or set method_params applications_dataset"
        )
    spec = load_spec(named)
    pairs = override_preference_pairs(spec, exclude_fields=exclude, decisions=settings.ledger_decisions)
    return pairs, f"override ledger of {spec.name}" + (
        " with the book's standing decisions" if settings.ledger_decisions == "book" else ""
    )


def _file_pairs(
    settings: FeedbackSettings, source: FeedbackSource, seed: int, exclude: Sequence[str]
) -> tuple[pd.DataFrame, str]:
    """(pairs, where they are) from a feedback file, or from the synthetic demo sample."""
    if source == "synthetic_demo":
        if settings.applications_dataset not in (None, DEMO_DATASET):
            raise ConfigError(
                f"method 'rlhf': the synthetic demo feedback is about {DEMO_DATASET} applications, "
                f"not {settings.applications_dataset}"
            )
        pairs = load_preference_pairs(
            DEFAULT_FEEDBACK_PATH, None, None, seed=seed, spec=DEMO_DATASET, exclude_fields=exclude
        )
        return pairs, "SYNTHETIC demo sample"
    path, apps = settings.feedback_path, settings.applications_path
    pairs = load_preference_pairs(
        path, apps, None, seed=seed, spec=settings.applications_dataset, exclude_fields=exclude
    )
    return pairs, f"feedback file {path}"


def describe(pairs: pd.DataFrame, source: FeedbackSource, where: str) -> str:
    """The feedback in one phrase for the reports (the demo says it is not feedback)."""
    if source == "synthetic_demo":
        return f"{where} ({len(pairs)} simulated analyst decisions on German credit), not real feedback"
    if source == "override_ledger":
        by_outcome = int((pairs["decided_by"] == "outcome").sum())
        overrides = int((pairs["side"] != "none").sum())
        if overrides == len(pairs):
            return f"{where}, {len(pairs)} override pair(s), {by_outcome} of them decided by outcomes"
        return (
            f"{where}, {len(pairs)} pair(s) ({overrides} overrides), {by_outcome} of them decided by outcomes"
        )
    return f"{where}, {len(pairs)} pair(s)"


def load_feedback(
    settings: FeedbackSettings,
    dataset: DatasetSpec | str | None,
    seed: int,
    exclude_fields: Sequence[str] = (),
) -> Feedback:
    """The reward model's pairs from the source in force, or one `ConfigError` sentence saying
    how many there are and how many are needed. `exclude_fields`: the fields the run's texts
    leave out, left out of the pairs' texts too (the reward model reads what the policy reads)."""
    source = resolve_source(settings)
    if source == "override_ledger":
        pairs, where = _ledger_pairs(settings, dataset, exclude_fields)
    else:
        pairs, where = _file_pairs(settings, source, seed, exclude_fields)
    pairs = _subset(pairs, settings.max_feedback_rows, seed)
    if len(pairs) < settings.min_feedback_pairs:
        advice = {
            "override_ledger": "add analysts' overrides with `risk-app overrides add FILE` (or the override "
            "landing folder), or set feedback_source 'synthetic_demo' for the labelled synthetic demo",
            "file": "give a larger feedback file, or set feedback_source 'synthetic_demo' for the labelled "
            "synthetic demo",
            "synthetic_demo": "raise max_feedback_rows or lower min_feedback_pairs",
        }[source]
        raise ConfigError(
            f"method 'rlhf' needs at least {settings.min_feedback_pairs} feedback pairs (min_feedback_pairs) "
            f"and the {where} has {len(pairs)}: {advice}"
        )
    return Feedback(pairs, source, describe(pairs, source, where))


__all__ = ["Feedback", "FeedbackSource", "load_feedback", "resolve_source"]
