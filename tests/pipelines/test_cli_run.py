"""`risk-app run` (the training and scoring jobs through Dagster) takes `train`'s options from
one declaration (`risk_app.cli.options`) and builds a run config the training job accepts."""

from __future__ import annotations

import click
import dagster as dg
import pytest
import typer

from pipelines.cli import app, training_run_config
from pipelines.definitions import defs

SHARED = ("dataset", "data", "source", "window_months", "split", "test_on", "method", "param",
          "base_model", "epochs", "augment")  # fmt: skip


def _options(command: str) -> dict[str, click.Option]:
    group = typer.main.get_command(app)
    assert isinstance(group, click.Group)
    return {p.name: p for p in group.commands[command].params if isinstance(p, click.Option) and p.name}


@pytest.mark.parametrize("name", SHARED)
def test_run_and_train_share_each_training_option(name: str) -> None:
    run, train = _options("run")[name], _options("train")[name]
    assert (run.opts, run.help, run.default) == (train.opts, train.help, train.default)
    assert (type(run.type), run.type.name) == (type(train.type), train.type.name)


def test_no_data_set_is_hard_coded() -> None:
    for name in ("run", "train", "validate"):
        assert _options(name)["dataset"].default is None  # $RISK_APP_DATASET, else the spec default


def test_the_run_config_of_run_is_one_the_training_job_accepts() -> None:
    config = training_run_config(
        "german_credit",
        {"source": "book", "path": "", "window_months": 3},
        {"split": "out_of_time", "test_on": "latest_vintage"},
        {"method_params": {"r": 4}, "method": "lora", "epochs": 1, "speed": {"fused_kernels": "measure"}},
        augment=False,
    )
    job = defs.resolve_job_def("training_job")
    assert dg.validate_run_config(job, config)
    wrong = training_run_config("german_credit", {"source": "ledger"}, {}, {}, augment=False)
    with pytest.raises(dg.DagsterInvalidConfigError, match="source"):
        dg.validate_run_config(job, wrong)
