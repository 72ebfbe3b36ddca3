"""Benchmark: every fine-tuning method on the same split → docs/methods.md, one section per machine.

    python bench/compare_methods.py                                    # tiny-qwen2, this CPU
    python bench/compare_methods.py --base-model smollm2-135m --device cuda --epochs 3
    python bench/compare_methods.py --dataset uci_credit_card --method lora --method full

The training and measuring is the library's (`risk_app.finetune.compare`, also behind
`risk-app compare-methods`); this script adds what only documentation needs: the machine label,
the markdown table and the section it replaces in docs/methods.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import cpu_model, machine_label  # noqa: E402, F401 (re-exported)
from bench.markdown import replace_section  # noqa: E402
from risk_app import workflow  # noqa: E402
from risk_app.atomic import atomic_write_text  # noqa: E402
from risk_app.finetune import compare  # noqa: E402
from risk_app.finetune.config import TrainConfig  # noqa: E402

DOCS = Path(__file__).resolve().parents[1] / "docs"


def render_table(table: pd.DataFrame) -> str:
    columns = [
        ("method", "method", "{}"), ("trainable_percent", "trainable %", "{:.3f}"),
        ("trainable_params", "trainable params", "{:,.0f}"), ("wall_seconds", "wall s", "{:.1f}"),
        ("peak_memory_mb", "peak MB", "{:.0f}"),
        ("memory_growth_mb", "growth MB", "{:.0f}"), ("tokens_per_second", "tokens/s", "{:,.0f}"),
        ("val_roc_auc", "val AUC", "{:.3f}"), ("test_roc_auc", "test AUC", "{:.3f}"),
        ("test_ks", "test KS", "{:.3f}"), ("test_brier", "test Brier", "{:.3f}"),
    ]  # fmt: skip
    lines = ["| " + " | ".join(h for _, h, _ in columns) + " |", "|" + "---|" * len(columns)]
    for row in table.to_dict("records"):
        if isinstance(row.get("error"), str):
            lines.append(f"| {row['method']} | failed: {row['error']} |" + " |" * (len(columns) - 2))
            continue
        cells = []
        for key, _, fmt in columns:
            value = row.get(key)
            cells.append(
                "" if value is None or (isinstance(value, float) and np.isnan(value)) else fmt.format(value)
            )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


DOC_HEADER = (
    "# Fine-tuning methods compared\n\n"
    "Written by `python bench/compare_methods.py`. Every method "
    "trains on the same stratified split (seed 42) with the same epochs and learning rate; the "
    "threshold is chosen on validation and AUC/KS/Brier are measured once on test. Peak memory "
    "is CUDA's allocator peak on a GPU and sampled process RSS on a CPU (growth = peak minus "
    "the RSS before that method's run). Each section names the machine that produced it.\n"
)


def write_section(path: Path, key: str, body: str) -> None:
    """Replace this machine/base-model section in the doc (or append it); keep the others."""
    replace_section(path, f"methods: {key}", f"## {key}\n\n{body}", header=DOC_HEADER)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="german_credit", help="Built-in data set name or spec file.")
    parser.add_argument("--data", type=Path, default=None, help="Labelled file (default: the data set's).")
    parser.add_argument("--base-model", default="tiny-qwen2")
    parser.add_argument("--method", action="append", default=[], help="Only these methods (repeatable).")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=DOCS / "methods.md")
    parser.add_argument("--json", type=Path, default=None, help="Also write the table as JSON.")
    args = parser.parse_args(argv)

    values = {"base_model": args.base_model, "epochs": args.epochs, "device": args.device,
              "max_length": args.max_length, "batch_size": args.batch_size, "seed": args.seed}  # fmt: skip
    if args.lr is not None:
        values["learning_rate"] = args.lr
    base = TrainConfig.from_dict(values)
    variants = compare.select_variants(args.method)
    validation = workflow.ingest_and_validate(args.data or _default_file(args.dataset), spec=args.dataset)
    examples = workflow.prepare_examples(validation.valid, seed=args.seed, spec=args.dataset)
    table = compare.compare_methods(examples, base, variants, on_row=lambda row: print(row, flush=True))
    label = machine_label(args.device if args.device != "auto" else compare.auto_device())
    settings = (
        f"Data set `{args.dataset}`, base model `{Path(args.base_model).name}`, {args.epochs} epochs, "
        f"lr {base.learning_rate}, batch {args.batch_size}, max_length {args.max_length}, seed {args.seed} "
        f"({', '.join(f'{n} {s}' for s, n in examples['split'].value_counts().items())} rows)."
    )
    key = f"{label} / {Path(args.base_model).name}"
    write_section(args.out, key, settings + "\n\n" + render_table(table))
    if args.json is not None:
        atomic_write_text(args.json, table.to_json(orient="records", indent=2))
    print(f"wrote {args.out}")


def _default_file(dataset: str) -> Path:
    from data_contracts.spec import load_spec

    return load_spec(dataset).data_path


if __name__ == "__main__":
    main()
