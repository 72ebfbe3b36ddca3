"""The options several `risk-app` commands take, declared once: `train` and `run` (the same
training through Dagster) and the data-set option of every command.

An option left out means "the library's default": the data set is `$RISK_APP_DATASET`, else
the built-in default (`data_contracts.spec.deployment_spec`), and the training settings are
`TrainConfig`'s defaults (`risk_app.finetune.defaults`, which the help shows), so the CLI never
states a default of its own that could drift.

    def train(dataset: DatasetOption = None, method: MethodOption = None, ...) -> None:
        spec = deployment_spec(dataset)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from data_contracts.spec import DATASET_ENV, DEFAULT_DATASET
from risk_app.finetune.defaults import DEFAULT_BASE_MODEL, DEFAULT_EPOCHS, DEFAULT_METHOD

DatasetOption = Annotated[
    str | None,
    typer.Option(
        "--dataset",
        "-d",
        help=f"Data set: a built-in name or a spec file (default: ${DATASET_ENV}, else {DEFAULT_DATASET}).",
    ),
]
DataOption = Annotated[
    Path | None, typer.Option(help="Labelled applications (default: the data set's own file).")
]
MethodOption = Annotated[
    str | None, typer.Option(help=f"Fine-tuning method; see `risk-app methods` (default: {DEFAULT_METHOD}).")
]
ParamOption = Annotated[list[str], typer.Option("--param", "-p", help="Method parameter key=value.")]
BaseModelOption = Annotated[
    str | None,
    typer.Option(
        help="Hub id, local folder, .gguf file, catalogue name or tiny-qwen2 "
        f"(default: {DEFAULT_BASE_MODEL})."
    ),
]
EpochsOption = Annotated[int | None, typer.Option(help=f"Maximum epochs (default: {DEFAULT_EPOCHS}).")]
AugmentOption = Annotated[bool, typer.Option(help="Augment the training split with nlpaug.")]

SourceOption = Annotated[
    Literal["file", "book"],
    typer.Option(
        help="file: --data (or the data set's own file); book: the labeled book (scored applications "
        "with a known outcome; declined ones excluded and counted)."
    ),
]
WindowOption = Annotated[
    int, typer.Option(help="--source book: train on the last N vintages with outcomes (0: all).")
]
SplitOption = Annotated[
    Literal["random", "out_of_time"],
    typer.Option(
        help="random: stratified by label; out_of_time: oldest train, newest test, on the spec's date column."
    ),
]
TestOnOption = Annotated[
    Literal["latest_vintage", "fractions"],
    typer.Option(
        help="--split out_of_time: test on the newest month and validate on the month before, or cut "
        "at the 70/15/15 fractions."
    ),
]


def given(**values: Any) -> dict[str, Any]:
    """The options the user gave (not None), as config keys: the config's defaults fill the rest."""
    return {key: value for key, value in values.items() if value is not None}


__all__ = [
    "AugmentOption",
    "BaseModelOption",
    "DataOption",
    "DatasetOption",
    "EpochsOption",
    "MethodOption",
    "ParamOption",
    "SourceOption",
    "SplitOption",
    "TestOnOption",
    "WindowOption",
    "given",
]
