"""Benchmark: the effect of leaving protected attributes out of the text → docs/fairness.md.

    python bench/fairness_ablation.py [--seeds 3] [--epochs 3]

For each seed, trains the default method twice on the same split: with every field, and with
`personal_status_and_sex`, `age_in_years` and `foreign_worker` left out of the serialized text
(`exclude_fields`, the `--exclude-protected` option of `risk-app train`). Reports test AUC and
the lowest adverse impact ratio per protected grouping at the validation-chosen threshold.
The groups are still measured when the fields are left out: removing a field from the input
does not remove its proxies, which is exactly what this table checks.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import machine_label  # noqa: E402
from data_contracts.spec import load_spec  # noqa: E402
from risk_app import workflow  # noqa: E402
from risk_app.atomic import atomic_write_text  # noqa: E402
from risk_app.finetune.config import TrainConfig  # noqa: E402


def min_air(fairness: dict, group: str) -> float:
    rows = [
        r for r in fairness["rows"] if r.get("group") == group and r.get("adverse_impact_ratio") is not None
    ]
    return min((float(r["adverse_impact_ratio"]) for r in rows), default=float("nan"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--dataset", default="german_credit", help="Built-in data set name or spec file.")
    args = parser.parse_args()
    spec = load_spec(args.dataset)
    validation = workflow.ingest_and_validate(spec.data_path, spec=spec)
    groups = [p.group_name for p in spec.protected]
    rows = []
    for seed in range(args.seeds):
        for label, exclude in (("all fields", ()), ("protected left out", tuple(spec.protected_columns))):
            examples = workflow.prepare_examples(
                validation.valid, seed=seed, exclude_fields=exclude, spec=spec
            )
            config = TrainConfig(seed=seed, epochs=args.epochs)
            started = time.perf_counter()
            record = workflow.train_run(
                validation.valid, examples, config, spec=spec, progress=False, baselines=("logistic",)
            )
            fairness = record.need("evaluation").fairness
            rows.append({
                "seed": seed, "variant": label, "test_roc_auc": record.need("evaluation").test.roc_auc,
                **{f"min_air_{g}": min_air(fairness, g) for g in groups},
                "flags": len(fairness.get("flags", [])), "seconds": time.perf_counter() - started,
            })  # fmt: skip
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    summary = table.groupby("variant", sort=False).agg(["mean", "std"]).drop(columns=["seed", "seconds"])
    lines = [
        "# Fairness: leaving protected attributes out of the text",
        "",
        f"`python bench/fairness_ablation.py --seeds {args.seeds} --epochs {args.epochs}` "
        f"on {machine_label('cpu')}, {time.strftime('%Y-%m-%d')}: `tiny-qwen2`, "
        f"method `{TrainConfig().method}`, seeds 0..{args.seeds - 1}, "
        "bundled German credit. AIR = approval rate of a group / approval rate of the most-favoured "
        "group of the same grouping, at the validation-chosen threshold on the 150-row test split; "
        "below 0.8 fails the four-fifths rule.",
        "",
        "| variant | test AUC | min AIR age band | min AIR sex | min AIR foreign worker | flags |",
        "|---|---|---|---|---|---|",
    ]
    for variant, row in summary.iterrows():
        metrics = ("test_roc_auc", *(f"min_air_{g}" for g in groups), "flags")
        cells = [f"{row[(c, 'mean')]:.3f} ± {row[(c, 'std')]:.3f}" for c in metrics]
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Per seed:",
        "",
        table.drop(columns="seconds").to_markdown(index=False, floatfmt=".3f"),
        "",
        "Caveats: test groups are small (foreign workers are about 4 % of applicants, so a handful "
        "of rows), which makes AIR noisy (the model card gives each AIR a 95 % interval). The "
        "bundled file is in the original UCI row order, so the sex grouping follows the applicants. "
        "Each variant's cut-off comes from the default credit policy (least expected cost, the "
        "spec's 5:1 error costs) chosen on its own validation scores, so approval rates differ "
        "between variants as well as AUC.",
        "",
    ]
    atomic_write_text(ROOT / "docs" / "fairness.md", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as home:
        import os

        os.environ.setdefault("RISK_APP_HOME", home)
        np.seterr(all="ignore")
        main()
