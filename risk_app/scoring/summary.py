"""What a batch scored in chunks shows about its scores without keeping them all.

A file scored chunk by chunk (`risk_app.scoring.staged`) never holds all its scores at once,
yet its report still needs the decline rate, the mean PD, the grade mix, a table of rows and a
drift verdict. `ScoreTally` takes one chunk at a time and keeps:

* exact running counts and sums over the whole batch (rows, declines, PD sum, grades);
* the batch's first rows, for the sample table;
* a seeded uniform random sample of at most `sample_rows` valid rows with their PDs, for the
  drift check. Each row gets a random key drawn in file order and the sample is the rows with
  the smallest keys (bottom-k sampling), so it is the same however the file is chunked, and a
  batch no bigger than the cap is kept whole (its drift verdict is then the whole batch's).

`model_drift` judges such a sample against the training population the model carries.

    tally = ScoreTally(sample_rows=10_000)
    for applications, scored in chunks:
        tally.add(applications, scored)
    summary = tally.summary()
    report = model_drift(model, tally.sample(), tally.sample_scores(), BatchDriftThresholds())
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from risk_app.evaluate.batch_drift import BatchDrift, BatchDriftThresholds, batch_drift

PD_COLUMN = "probability_of_default"
# At 10,000 rows the PSI noise band is already narrow, and the bootstrap behind it takes about
# 6 s on one core (20,000: about 9 s; 50,000: about 18 s), whatever the size of the file.
DRIFT_SAMPLE_ROWS = 10_000
HEAD_ROWS = 20


class BoundedSample:
    """A uniform random sample without replacement of at most `max_rows` rows, fed in chunks."""

    def __init__(self, max_rows: int, seed: int = 0) -> None:
        if max_rows < 1:
            raise ValueError(f"max_rows must be >= 1, got {max_rows}")
        self.max_rows = max_rows
        self._rng = np.random.default_rng(seed)
        self._rows: pd.DataFrame | None = None
        self._keys = np.empty(0)

    def add(self, frame: pd.DataFrame) -> None:
        # One key per row in file order: the keys (and so the sample) do not depend on chunking.
        keys = np.concatenate([self._keys, self._rng.random(len(frame))])
        if not len(frame):
            return
        rows = frame if self._rows is None else pd.concat([self._rows, frame], ignore_index=True)
        if len(rows) > self.max_rows:
            # The smallest keys, kept in file order.
            keep = np.sort(np.argpartition(keys, self.max_rows - 1)[: self.max_rows])
            rows, keys = rows.iloc[keep], keys[keep]
        self._rows, self._keys = rows.reset_index(drop=True), keys

    def frame(self) -> pd.DataFrame:
        return self._rows if self._rows is not None else pd.DataFrame()


@dataclass(frozen=True)
class ScoreSummary:
    """The batch's scores in a few numbers and one small table."""

    n_scored: int
    n_declined: int
    mean_probability_of_default: float
    grades: dict[str, int]
    head: pd.DataFrame

    @property
    def decline_rate(self) -> float:
        return self.n_declined / self.n_scored if self.n_scored else 0.0

    def grade_table(self) -> pd.DataFrame:
        """risk_grade | applications, in grade order."""
        return pd.DataFrame({"risk_grade": list(self.grades), "applications": list(self.grades.values())})


class ScoreTally:
    """Running counts, the first rows and a bounded drift sample of a batch scored in chunks."""

    def __init__(
        self, sample_rows: int = DRIFT_SAMPLE_ROWS, head_rows: int = HEAD_ROWS, seed: int = 0
    ) -> None:
        self.n_scored = self.n_declined = 0
        self._pd_sum = 0.0
        self._grades: Counter[str] = Counter()
        self._head_rows = head_rows
        self._head: list[pd.DataFrame] = []
        self._sample = BoundedSample(sample_rows, seed)

    def add(self, applications: pd.DataFrame, scored: pd.DataFrame) -> None:
        """One chunk: its valid applications and their scores, row for row."""
        if len(applications) != len(scored) or not np.array_equal(
            applications["application_id"].astype(str).to_numpy(),
            scored["application_id"].astype(str).to_numpy(),
        ):
            raise ValueError("ScoreTally.add: scores are not row for row the applications given")
        self.n_scored += len(scored)
        self.n_declined += int((scored["decision"] == "decline").sum())
        self._pd_sum += float(scored[PD_COLUMN].sum())
        self._grades.update(scored["risk_grade"].astype(str).value_counts().to_dict())
        taken = sum(len(h) for h in self._head)
        if taken < self._head_rows:
            self._head.append(scored.head(self._head_rows - taken))
        self._sample.add(applications.assign(**{PD_COLUMN: scored[PD_COLUMN].to_numpy()}))

    def sample(self) -> pd.DataFrame:
        """The drift sample's applications (without their PDs)."""
        return self._sample.frame().drop(columns=[PD_COLUMN], errors="ignore")

    def sample_scores(self) -> np.ndarray:
        frame = self._sample.frame()
        return frame[PD_COLUMN].to_numpy() if len(frame) else np.empty(0)

    def summary(self) -> ScoreSummary:
        head = pd.concat(self._head, ignore_index=True) if self._head else pd.DataFrame()
        return ScoreSummary(
            n_scored=self.n_scored,
            n_declined=self.n_declined,
            mean_probability_of_default=self._pd_sum / self.n_scored if self.n_scored else 0.0,
            grades={g: int(self._grades[g]) for g in sorted(self._grades)},
            head=head,
        )


def model_drift(
    model: Any, applications: pd.DataFrame, scores: np.ndarray, thresholds: BatchDriftThresholds
) -> BatchDrift:
    """Drift of `applications` (and their PDs `scores`) against the training population `model`
    carries; models packaged before they carried it are judged on the score alone."""
    reference = list(getattr(model, "metadata", {}).get("extra", {}).get("reference_scores") or [])
    # Test doubles and older models may carry neither the training rows nor the spec.
    train = getattr(model, "reference_features", lambda: None)()
    spec = getattr(model, "dataset_spec", None)
    return batch_drift(train, applications, spec, reference, scores, thresholds)


__all__ = [
    "DRIFT_SAMPLE_ROWS",
    "BoundedSample",
    "ScoreSummary",
    "ScoreTally",
    "model_drift",
]
