"""Training across processes: 2 gloo processes on CPU give the single-process result.

The slow tests start `torchrun` with two ranks on a few dozen rows of the tiny model (about
20-40 s a launch on 2 cores) and compare with the same run in one process. LoRA runs DDP: with
its dropout off (the only random draw per step, which ranks make differently from one process)
the two runs are the same model up to float rounding: the same optimizer steps and schedule,
the same losses, the same validation scores on the whole split (gathered, not averaged per
rank). `full` runs FSDP (sharded weights): the same comparison over two epochs, on the test
split too (scored by rank 0 alone, from the gathered weights), then a resume on two ranks from
the epoch-1 checkpoint, which must end where the uninterrupted run did. Only rank 0's files are
in the run folder. The fast tests check the sharding arithmetic, the global-batch loss, the
strategy each method gets and what refuses to run across processes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from data_contracts.spec import load_spec
from risk_app.data.examples import build_training_examples
from risk_app.data.load import load_applications
from risk_app.data.validate import validate_applications
from risk_app.errors import ConfigError, RiskAppError
from risk_app.finetune import distributed
from risk_app.finetune.config import TrainConfig
from risk_app.finetune.methods.full import FullParams
from risk_app.finetune.resume import STATE_FILE, TRAINER_STATE
from risk_app.run import stages
from risk_app.run.launch import fine_tune_stage, read_launch_facts, torchrun_command
from risk_app.run.plan import plan_training
from risk_app.run.record import RunRecord

ROWS = 120  # 84 train, 18 validation: a few seconds of training per run


def _pretend_world(monkeypatch: pytest.MonkeyPatch, size: int, me: int) -> None:
    monkeypatch.setattr(distributed, "world_size", lambda: size)
    monkeypatch.setattr(distributed, "rank", lambda: me)


@pytest.mark.parametrize("n", [16, 15, 3, 1])
def test_shards_cover_the_global_batch_once(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    batch = list(range(100, 100 + n))
    shards = []
    for me in range(2):
        _pretend_world(monkeypatch, 2, me)
        shards.append(distributed.shard(batch))
    if n >= 2:
        assert shards[0] + shards[1] == batch  # contiguous, in order, nothing twice
        assert abs(len(shards[0]) - len(shards[1])) <= 1
    else:  # a rank with nothing to do repeats an example: every rank must run a backward
        assert shards == [batch, batch]


def test_one_process_is_the_identity() -> None:
    assert not distributed.is_distributed()
    assert distributed.shard([3, 1, 2]) == [3, 1, 2]
    assert distributed.sum_across_ranks(2.5) == 2.5
    model = torch.nn.Linear(2, 2)
    assert distributed.wrap_model(model) is model
    logits = distributed.predict_sharded(lambda texts: np.arange(len(texts) * 2).reshape(-1, 2), ["a", "b"])
    assert logits.tolist() == [[0, 1], [2, 3]]


def test_ranks_losses_average_to_the_global_batch_loss(monkeypatch: pytest.MonkeyPatch) -> None:
    # The class-weighted mean over a batch of 7 (3 defaults), against what 2 ranks' losses average to.
    labels = torch.tensor([1, 0, 0, 1, 0, 1, 0])
    logits = torch.randn(7, 2, generator=torch.Generator().manual_seed(0))
    plain = torch.nn.CrossEntropyLoss(weight=torch.tensor([0.7, 1.6]), label_smoothing=0.1)
    batch = list(range(7))
    per_rank = []
    for me in range(2):
        _pretend_world(monkeypatch, 2, me)
        mine = distributed.shard(batch)
        loss = distributed.GlobalBatchLoss(plain, labels)(logits[mine], labels[mine])
        per_rank.append(float(loss))
    assert sum(per_rank) / 2 == pytest.approx(float(plain(logits, labels)), rel=1e-6)
    # The per-rank means would not be (the halves hold 1 and 2 defaults).
    halves = [float(plain(logits[:3], labels[:3])), float(plain(logits[3:], labels[3:]))]
    assert sum(halves) / 2 != pytest.approx(float(plain(logits, labels)), rel=1e-3)
    # A batch of one goes to rank 1; rank 0 repeats it only to take part in the step, at weight zero.
    _pretend_world(monkeypatch, 2, 0)
    idle = distributed.shard([4])
    assert float(distributed.GlobalBatchLoss(plain, labels)(logits[idle], labels[idle])) == 0.0


def test_full_fine_tuning_gets_fsdp_and_a_frozen_base_ddp(monkeypatch: pytest.MonkeyPatch) -> None:
    assert distributed.choose_strategy("full", FullParams()) == ("single", "")  # no process group
    monkeypatch.setattr(distributed, "is_distributed", lambda: True)
    assert distributed.choose_strategy("full", FullParams()) == ("fsdp", "")
    assert distributed.choose_strategy("lora") == ("ddp", "")
    # EWC's penalty reads whole parameters outside the forward: DDP, and the facts say why.
    strategy, why = distributed.choose_strategy("full", FullParams(ewc_lambda=10.0))
    assert (strategy, why) == ("ddp", distributed.EWC_NEEDS_WHOLE_WEIGHTS)


def test_unsharded_state_passes_through_and_mixed_checkpoints_are_refused() -> None:
    model = torch.nn.Linear(2, 2)
    state = {"weight": model.weight.detach()}
    assert distributed.full_state(state)["weight"] is state["weight"]
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.ones(1, 2)).sum().backward()
    optimizer.step()
    saved = distributed.optimizer_state(model, optimizer)
    assert list(saved["state"]) == [0, 1]  # a plain run's state, by position
    distributed.load_optimizer_state(model, optimizer, saved)
    by_name = {"state": {"weight": saved["state"][0]}, "param_groups": saved["param_groups"]}
    with pytest.raises(RiskAppError, match="--nproc it was started with"):  # an FSDP run's checkpoint
        distributed.load_optimizer_state(model, optimizer, by_name)


def test_objectives_without_a_sharded_loop_are_refused() -> None:
    with pytest.raises(ConfigError, match="one process"):
        plan_training(TrainConfig(method="rlhf"), 2)
    with pytest.raises(ConfigError, match="one process"):
        plan_training(TrainConfig(method="freeze", method_params={"n_trainable_layers": 0}), 2)
    with pytest.raises(ConfigError, match="between 1 and"):
        plan_training(TrainConfig(), 0)
    with pytest.raises(ConfigError, match="names one GPU"):  # each rank takes its local rank's GPU
        plan_training(TrainConfig(device="cuda:0"), 2)
    if torch.cuda.device_count() < 2:
        with pytest.raises(ConfigError, match="one GPU per process"):
            plan_training(TrainConfig(device="cuda"), 2)
    plan_training(TrainConfig(method="lora"), 2)


def test_torchrun_command_runs_this_run_folder() -> None:
    command = torchrun_command(4, "/runs/x", resume=True)
    assert command[1:4] == ["-m", "torch.distributed.run", "--standalone"]
    assert "--nproc-per-node=4" in command
    assert command[-3:] == ["risk_app.run.launch", "/runs/x", "--resume"]


LORA = TrainConfig(method="lora", method_params={"dropout": 0.0}, epochs=1, batch_size=8, patience=0)
FULL = TrainConfig(method="full", learning_rate=1e-4, epochs=2, batch_size=8, patience=0)


def _fine_tune(nproc: int, config: TrainConfig = LORA) -> RunRecord:
    spec = load_spec("german_credit")
    frame = load_applications(spec.data_path, spec=spec)
    valid = validate_applications(frame, source="test", spec=spec).valid.head(ROWS)
    examples = build_training_examples(valid, seed=42, spec=spec)
    record = stages.start_run(valid, examples, spec=spec, method=config.method)
    return fine_tune_stage(record, examples, plan_training(config, nproc), progress=False)


def _scores(record: RunRecord, split: str) -> pd.DataFrame:
    frame = pd.read_parquet(record.need("training").predictions_path)
    return frame.loc[frame["split"] == split].reset_index(drop=True)


def _steps(record: RunRecord) -> int:
    state = torch.load(Path(record.run_dir) / "checkpoints" / "epoch-1" / TRAINER_STATE, weights_only=True)
    return int(state["counters"][0])


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(tiny_qwen2: Path) -> None:
    single, multi = _fine_tune(1), _fine_tune(2)
    one, two = single.need("training"), multi.need("training")

    # Same global batches: the same number of optimizer steps and the same point of the schedule.
    assert _steps(multi) == _steps(single) == 11  # ceil(84 / 8)
    assert two.history[0].learning_rate == pytest.approx(one.history[0].learning_rate)

    # Validation is scored on the whole split on every rank, not on rank 0's half.
    val_one, val_two = (pd.read_parquet(r.need("training").predictions_path) for r in (single, multi))
    val_one, val_two = (v.loc[v["split"] == "validation"] for v in (val_one, val_two))
    assert len(val_two) == len(val_one) == 18
    assert val_two["application_id"].tolist() == val_one["application_id"].tolist()
    # The same model up to float rounding (measured: differences of about 1e-7).
    assert np.abs(val_two["p_raw"].to_numpy() - val_one["p_raw"].to_numpy()).max() < 1e-4
    assert two.history[0].train_loss == pytest.approx(one.history[0].train_loss, abs=1e-5)
    assert two.history[0].val_loss == pytest.approx(one.history[0].val_loss, abs=1e-5)
    assert two.best_val_auc == pytest.approx(one.best_val_auc, abs=0.02)  # one swapped pair at most

    # Rank 0 wrote the run folder and said how the run was spread.
    facts = read_launch_facts(multi.run_dir)
    assert facts is not None
    assert (facts["world_size"], facts["backend"], facts["strategy"]) == (2, "gloo", "ddp")
    assert read_launch_facts(single.run_dir) is None
    assert (Path(multi.run_dir) / stages.TRAINED_DIR / stages.WEIGHTS_FILE).is_file()


@pytest.mark.slow
def test_full_fine_tuning_shards_over_two_gloo_processes_and_resumes(tiny_qwen2: Path) -> None:
    single, multi = _fine_tune(1, FULL), _fine_tune(2, FULL)
    one, two = single.need("training"), multi.need("training")
    facts = read_launch_facts(multi.run_dir)
    assert facts is not None and facts["note"] == ""
    assert (facts["world_size"], facts["backend"], facts["strategy"]) == (2, "gloo", "fsdp")

    # The same run up to float rounding (reduce-scatter and sharded gradient norms sum in another
    # order than one process). Measured: scores differ by at most 6e-8, losses by 3e-8; the
    # bounds are the DDP test's.
    assert _steps(multi) == _steps(single) == 11  # ceil(84 / 8) per epoch; the first checkpoint's count
    for a, b in zip(one.history, two.history, strict=True):
        assert b.train_loss == pytest.approx(a.train_loss, abs=1e-5)
        assert b.val_loss == pytest.approx(a.val_loss, abs=1e-5)
    for split in ("validation", "test"):  # validation gathered from both ranks; test scored by rank 0
        s1, s2 = _scores(single, split), _scores(multi, split)
        assert s2["application_id"].tolist() == s1["application_id"].tolist()
        assert np.abs(s2["p_raw"].to_numpy() - s1["p_raw"].to_numpy()).max() < 1e-4

    # Checkpoints and the artifact hold whole plain tensors, as one process writes them.
    run_dir = Path(multi.run_dir)
    saved = load_file(str(run_dir / "checkpoints" / "epoch-1" / STATE_FILE))
    plain = load_file(str(Path(single.run_dir) / "checkpoints" / "epoch-1" / STATE_FILE))
    assert {k: v.shape for k, v in saved.items()} == {k: v.shape for k, v in plain.items()}
    weights = load_file(str(run_dir / stages.TRAINED_DIR / stages.WEIGHTS_FILE))
    assert weights.keys() == plain.keys()

    # Kill after epoch 1 (as if): resume on two ranks from that checkpoint, end where it ended.
    shutil.rmtree(run_dir / "checkpoints" / "epoch-2")
    Path(two.predictions_path).unlink()
    examples = pd.read_parquet(run_dir / stages.EXAMPLES_FILE)
    resumed = fine_tune_stage(multi, examples, plan_training(FULL, 2), resume=True, progress=False)
    again = resumed.need("training")
    assert again.history[0].seconds == two.history[0].seconds  # epoch 1 read back, not retrained
    # Measured: bit for bit the same (whole weights and optimizer state scattered back exactly).
    assert again.history[1].train_loss == pytest.approx(two.history[1].train_loss, abs=1e-6)
    for split in ("validation", "test"):
        assert np.abs(_scores(resumed, split)["p_raw"] - _scores(multi, split)["p_raw"]).max() < 1e-5
