"""Free text in tokens: the estimate against a real tokenizer, and how long whole prompts get.

    python bench/text_tokens.py --base qwen2.5-coder-0.5b     # a catalogue base, a folder or tiny-qwen2
    python bench/text_tokens.py --base tiny-qwen2 --spec docs/examples/lendingclub_2014_jan.yaml \
        --data ../shared/data/lendingclub_2014_jan.csv

For every free-text column of the data set, over its cleaned non-empty texts
(`risk_app.data.text.clean_text_column`): tokens by the base model's tokenizer and by the
tokenizer-free estimate (`estimate_tokens`), the estimate / real ratio (median, 5th and 95th
percentile) and the share of texts the estimate under-counts (where a budget by the estimate
would let a text run over). Then the whole serialized prompt in that tokenizer's tokens with
the budgets counted by it: mean, 95th percentile, maximum, and how many exceed 256 / 384 / 512
(the `max_length` the training run needs). Counts, not timings: one run is the answer. The
table goes to docs/datasets.md ("Tokens: the tokenizer and the estimate").
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from data_contracts.spec import load_spec
from risk_app.data.serialize import serialize_frame
from risk_app.data.text import clean_text_column, estimate_tokens, tokenizer_counter
from risk_app.models.loader import load_tokenizer
from risk_app.workflow import ingest_and_validate

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SPEC = REPO / "docs" / "examples" / "lendingclub_2014_jan.yaml"
DEFAULT_DATA = REPO.parent / "shared" / "data" / "lendingclub_2014_jan.csv"
LIMITS = (256, 384, 512)


def column_rows(spec: object, valid: object, count: object) -> list[str]:
    """One markdown row per free-text column: real vs estimated tokens."""
    rows = []
    for column in spec.text_columns:  # type: ignore[attr-defined]
        texts = [t for t in clean_text_column(spec, column, valid[column]) if t]  # type: ignore[index]
        real = np.array([count(t) for t in texts])  # type: ignore[operator]
        est = np.array([estimate_tokens(t) for t in texts])
        ratio = est / np.maximum(real, 1)
        chars = np.mean([len(t) for t in texts])
        rows.append(
            f"| `{column}` | {len(texts)} | {real.mean():.1f} / {real.max()} | "
            f"{est.mean():.1f} / {est.max()} | "
            f"{np.median(ratio):.2f} ({np.percentile(ratio, 5):.2f} to {np.percentile(ratio, 95):.2f}) | "
            f"{(est < real).mean():.1%} | {chars / real.mean():.2f} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="qwen2.5-coder-0.5b", help="Base model whose tokenizer counts.")
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    spec = load_spec(args.spec)
    tokenizer = load_tokenizer(args.base)
    count = tokenizer_counter(tokenizer)
    valid = ingest_and_validate(args.data, spec=spec).valid
    print(f"{spec.name}: {len(valid)} rows; tokenizer of {args.base}\n")
    print("| column | texts | tokens mean / max | estimate mean / max | estimate / real: median (5-95 %) "
          "| under-counted | characters a token |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|")
    print("\n".join(column_rows(spec, valid, count)))
    bound = spec.counting_tokens_with(count, f"tokenizer of {args.base}")
    prompts = serialize_frame(valid, spec=bound).tolist()
    lengths = np.array([len(ids) for ids in tokenizer(prompts, verbose=False)["input_ids"]])
    over = ", ".join(f"{(lengths > n).sum()} over {n}" for n in LIMITS)
    print(
        f"\nWhole prompt: mean {lengths.mean():.0f}, 95th percentile {np.percentile(lengths, 95):.0f}, "
        f"max {lengths.max()} tokens; {over} (of {len(lengths)})."
    )


if __name__ == "__main__":
    main()
