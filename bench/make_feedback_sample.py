"""Make `risk_app/datasets/analyst_feedback_sample.csv`: SYNTHETIC analyst feedback.

There is no real analyst feedback for German credit, so the `rlhf` method ships with a
simulated sample as a labelled demo (`method_params feedback_source: synthetic_demo`; by
default `rlhf` learns from the override ledger), made reproducibly by this script:

1. Load and validate the bundled German credit file; draw 240 applications (seed 7) as the
   "reviewed" set; the other 760 are the model's training data.
2. *Model decisions* come from the class-balanced logistic-regression baseline
   (`risk_app.evaluate.baselines`, "logistic") fitted on the 760 rows: decline when
   P(default) >= 0.5, else approve.
3. *Analyst decisions* are SIMULATED from the true label: decline for `bad`, approve for
   `good`, then flipped with probability 0.10 (analyst noise) from the same seeded RNG.
4. `confidence` is drawn uniformly in [0.55, 0.95] (independent of correctness, so it leaks
   nothing), and `comment` is a template: agreement, or an override naming the applicant's
   values of the spec's first two categorical features, by their labels (on German credit:
   checking account and credit history).

It is synthetic, not real analyst feedback: use it to exercise the pipeline, never to claim
anything about analysts. Run from the repo root:

    python bench/make_feedback_sample.py            # rewrites the CSV (same bytes every time)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from data_contracts.analyst_feedback import LABEL_TO_DECISION, validate_feedback
from data_contracts.spec import load_spec
from risk_app.atomic import atomic_write_text
from risk_app.data.load import load_applications
from risk_app.data.validate import validate_applications
from risk_app.evaluate.baselines import fit_baseline, predict_default
from risk_app.paths import PACKAGE_DIR

OUTPUT = PACKAGE_DIR / "datasets" / "analyst_feedback_sample.csv"
SEED = 7
N_REVIEWED = 240
ANALYST_NOISE = 0.10
DECLINE_THRESHOLD = 0.5


def make_feedback_sample(
    n_reviewed: int = N_REVIEWED, noise: float = ANALYST_NOISE, seed: int = SEED
) -> pd.DataFrame:
    """The synthetic feedback frame described in the module docstring (contract-validated)."""
    spec = load_spec()  # the built-in default data set, as its spec declares it
    source = spec.data_path
    if source is None:
        raise SystemExit(f"data set {spec.name!r} ships no data file to draw the sample from")
    valid = validate_applications(load_applications(source, spec=spec), str(source), spec=spec).valid
    named = [c for c in spec.feature_columns if spec.columns[c].type == "category"][:2]
    valid = valid.reset_index(drop=True)
    rng = np.random.default_rng(seed)
    reviewed_idx = np.sort(rng.choice(len(valid), size=n_reviewed, replace=False))
    reviewed = valid.iloc[reviewed_idx].reset_index(drop=True)
    rest = valid.drop(index=reviewed_idx).reset_index(drop=True)

    baseline = fit_baseline("logistic", rest, seed=seed)
    p_default = predict_default(baseline, reviewed)
    model_label = (p_default >= DECLINE_THRESHOLD).astype(int)

    true_label = reviewed["default"].to_numpy(dtype=int)
    flipped = rng.random(n_reviewed) < noise
    analyst_label = np.where(flipped, 1 - true_label, true_label)
    confidence = np.round(rng.uniform(0.55, 0.95, size=n_reviewed), 2)

    comments = []
    for i, row in reviewed.iterrows():
        if analyst_label[i] == model_label[i]:
            comments.append("Agrees with the model.")
        else:
            verb = "declined" if analyst_label[i] == 1 else "approved"
            values = ", ".join(f"{spec.label(c).lower()} '{row[c]}'" for c in named)
            comments.append(f"Override, {verb}: {values}.")
    frame = pd.DataFrame(
        {
            "application_id": reviewed["application_id"].astype(str),
            "model_decision": [LABEL_TO_DECISION[int(v)] for v in model_label],
            "analyst_decision": [LABEL_TO_DECISION[int(v)] for v in analyst_label],
            "confidence": confidence,
            "comment": comments,
        }
    )
    return validate_feedback(frame, "<generated feedback>")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUTPUT, help="CSV to write.")
    args = parser.parse_args()
    frame = make_feedback_sample()
    atomic_write_text(args.out, frame.to_csv(index=False, float_format="%.2f"))
    agree = (frame["model_decision"] == frame["analyst_decision"]).mean()
    print(f"wrote {len(frame)} rows to {args.out}; model/analyst agreement {agree:.1%}")


if __name__ == "__main__":
    main()
