"""A loaded LoRA artifact scores with its adapters folded into the base weights, and the scores
are the trained model's: each variant round-trips through save and load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from risk_app.finetune.config import TrainConfig
from risk_app.finetune.methods.qlora import QLoraMethod, QLoraParams
from risk_app.finetune.predict import predict_proba
from risk_app.finetune.trainer import train_classifier
from risk_app.registry.artifact import load_risk_model, save_risk_model
from tests.finetune.helpers import credit_texts


@pytest.mark.parametrize("variant", ["lora", "dora", "adalora"])
def test_loaded_lora_is_folded_and_scores_as_trained(tiny_qwen2: Path, tmp_path: Path, variant: str) -> None:
    texts, labels = credit_texts(48)
    val_texts, val_labels = credit_texts(40, offset=900)
    config = TrainConfig(
        method_params={"variant": variant, "r": 4}, epochs=1, batch_size=16, max_length=96
    )
    result = train_classifier(texts, labels, val_texts, val_labels, config, None, progress=False)
    folder = save_risk_model(
        tmp_path / "artifact", method_name=result.method_name, method_config=result.method_config,
        train_config=config, model=result.model, tokenizer=result.tokenizer, threshold=0.5,
        metrics={}, data_hash="sha256:0", contract_version="1.0.0",
    )  # fmt: skip
    before = predict_proba(result.model, result.tokenizer, val_texts, max_length=96)

    loaded = load_risk_model(folder)

    names = [name for name, _ in loaded.model.named_modules()]
    assert not any("lora_" in n or "modules_to_save" in n for n in names), "adapters were not folded"
    raw = predict_proba(loaded.model, loaded.tokenizer, val_texts, max_length=96)
    np.testing.assert_allclose(raw, before, rtol=0, atol=1e-6)
    assert np.ptp(raw) > 1e-4  # the scores vary: the comparison says something


def test_qlora_keeps_its_adapters_unfolded() -> None:
    # Folding into 4-bit weights would quantize the adapters' update again.
    model = torch.nn.Linear(2, 2)
    assert QLoraMethod().for_inference(model, QLoraParams()) is model
