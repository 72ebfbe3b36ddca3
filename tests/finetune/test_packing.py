"""Padding-free packing (`SpeedConfig.packing`): the same model as the padded loop, on the tiny model.

Packing must change where tokens sit, never what the model computes: each application's logits
in a packed row equal its logits in a padded batch, and a packed training run follows the padded
run's losses and reaches its validation AUC. A row whose applications could see each other (one
running position count) is shown to give different logits, so the checks can fail.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from risk_app.errors import ConfigError
from risk_app.finetune.packing import head_tap, pack_batch, pack_rows, packed_logits
from risk_app.finetune.predict import encode_texts, pad_batch
from risk_app.finetune.trainer import train_classifier
from risk_app.models.loader import load_classifier
from tests.finetune.test_method_suite import suite_data, suite_train_config


def test_pack_rows_fill_rows_within_capacity_and_keep_every_sequence_once() -> None:
    lengths = [50, 47, 34, 30, 44, 37, 49, 45, 25, 25, 54, 300]
    rows = pack_rows(lengths, 128)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in row) <= 128 for row in rows if row != [11])
    assert [11] in rows  # longer than a row: a row of its own
    assert len(rows) <= 6


def test_pack_batch_restarts_positions_and_points_at_each_last_token() -> None:
    seqs = [[5, 6, 7], [8, 9], [10, 11, 12, 13]]
    b = pack_batch(seqs, capacity=8, pad_id=0, multiple=8)
    assert b.input_ids.shape == (2, 8)
    for i, seq in enumerate(seqs):
        row, col = int(b.last_row[i]), int(b.last_col[i])
        assert int(b.input_ids[row, col]) == seq[-1]
        assert int(b.position_ids[row, col]) == len(seq) - 1
        start = col - len(seq) + 1
        assert b.input_ids[row, start : col + 1].tolist() == seq
        assert b.position_ids[row, start : col + 1].tolist() == list(range(len(seq)))


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_packed_logits_equal_padded_logits(_tiny_qwen2_build: Path, attention: str) -> None:
    model, tokenizer = load_classifier(str(_tiny_qwen2_build), num_labels=2, device=torch.device("cpu"))
    model.set_attn_implementation(attention)
    model.eval()
    sequences = encode_texts(tokenizer, suite_data().train_texts[:24], 64)
    with torch.no_grad():
        padded = model(**pad_batch(tokenizer, sequences)).logits
        batch = pack_batch(sequences, 160, tokenizer.pad_token_id)
        assert batch.input_ids.shape[0] < len(sequences)  # several applications share a row
        with head_tap(model) as tap:
            packed = packed_logits(model, tap, batch)
        # The control: one running position count, so no restart tells applications apart.
        batch.position_ids = torch.arange(batch.input_ids.shape[1]).expand_as(batch.input_ids)
        with head_tap(model) as tap:
            leaky = packed_logits(model, tap, batch)
    assert torch.allclose(packed, padded, atol=1e-5)
    assert (leaky - padded).abs().max() > 1e-2


def test_a_packed_run_trains_the_same_model(_tiny_qwen2_build: Path) -> None:
    # No dropout: the packed tensors' shapes differ, so dropout would draw other masks. The same
    # batches then give the same losses and AUC up to float rounding.
    data = suite_data()
    runs = {}
    for packing in (False, True):
        config = suite_train_config(
            "lora", str(_tiny_qwen2_build), epochs=2, method_params={"dropout": 0.0},
            speed={"token_budget": 768, "packing": packing, "pack_length": 192},
        )  # fmt: skip
        runs[packing] = train_classifier(
            data.train_texts, data.train_labels, data.val_texts, data.val_labels, config, None, progress=False
        )
    packed, padded = runs[True], runs[False]
    for a, b in zip(packed.history, padded.history, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-4)
        assert a["val_auc"] == pytest.approx(b["val_auc"], abs=1e-3)
    assert packed.best_val_auc > 0.8


def test_packing_refuses_prompt_tuning(_tiny_qwen2_build: Path) -> None:
    data = suite_data()
    config = suite_train_config("prompt", str(_tiny_qwen2_build), epochs=1, speed={"packing": True})
    with pytest.raises(ConfigError, match="packing"):
        train_classifier(
            data.train_texts, data.train_labels, data.val_texts, data.val_labels, config, None, progress=False
        )
