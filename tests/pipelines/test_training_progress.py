"""Training shows progress in the Dagster run's events (issue 21 §6): a log line and an
observation per epoch, a log line every `speed.log_every` optimizer steps."""

from pathlib import Path

import dagster as dg

from pipelines.pipes_training import training_events_to
from risk_app.finetune.config import TrainConfig
from risk_app.finetune.trainer import train_classifier
from tests.finetune.helpers import credit_texts


def test_each_epoch_and_every_n_steps_reach_the_run_events(tiny_qwen2: Path) -> None:
    @dg.asset
    def probe(context: dg.AssetExecutionContext) -> int:
        texts, labels = credit_texts(64)
        val_texts, val_labels = credit_texts(24, offset=900)
        config = TrainConfig(
            epochs=2, batch_size=16, max_length=64, patience=0, speed={"log_every": 2}
        )  # 4 optimizer steps per epoch: a step line at steps 2 and 4
        with training_events_to(context):
            result = train_classifier(texts, labels, val_texts, val_labels, config, None, progress=False)
        return len(result.history)

    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([probe], instance=instance)
    assert result.success
    observations = [
        e.event_specific_data.asset_observation
        for e in result.all_events
        if e.event_type_value == "ASSET_OBSERVATION"
    ]
    assert [o.metadata["epoch"].value for o in observations] == [1, 2]
    assert {"train_loss", "val_auc"} <= set(observations[0].metadata)
    messages = [r.user_message for r in instance.all_logs(result.run_id)]
    steps = [m.split(",")[0] for m in messages if ": step " in m]
    assert steps == ["epoch 1: step 2/4", "epoch 1: step 4/4", "epoch 2: step 2/4", "epoch 2: step 4/4"]
    assert [m.split(":")[0] for m in messages if " done: " in m] == ["epoch 1 done", "epoch 2 done"]
