"""One suite for every registered fine-tuning method, driven by the registry.

For each name in `list_methods()` (so methods added later are covered without editing this
file), on the tiny Qwen2 and a small learnable data set:

1. the training loss falls from the first to the last epoch;
2. only the parameters `prepare` marked trainable change (frozen ones stay bit-identical),
   and the trainer's trainable count matches them;
3. a save/load round trip through `risk_app.registry.artifact` predicts the same;
4. an unknown config key is rejected with the allowed keys listed.

A method class (or an objective method's registry entry) may set `suite_params` (quick
parameters for this CPU run); a method class may set `suite_skip_reason` (why it cannot run
here, e.g. it needs CUDA). Each name runs as `registry.resolve_method` resolves it: `rlhf` is
its policy method prepared and trained by the rlhf objective.

    pytest tests/finetune/test_method_suite.py -q
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from risk_app.errors import ConfigError
from risk_app.finetune.config import TrainConfig
from risk_app.finetune.objectives.base import ObjectiveInputs, run_objective
from risk_app.finetune.predict import predict_proba
from risk_app.finetune.registry import (
    MethodChoice,
    get_method,
    list_methods,
    method_config_class,
    objective_method,
    resolve_method,
    suite_params,
)
from risk_app.finetune.run_setup import seed_everything
from risk_app.finetune.trainer import plan_run
from risk_app.finetune.types import TrainData, TrainResult
from risk_app.registry.artifact import load_risk_model, save_risk_model

pytestmark = pytest.mark.slow  # slow: scheduled first (tests/conftest.py)

METHOD_NAMES = [name for name, _ in list_methods()]

# ---- a small, learnable data set -----------------------------------------------------------
# Ordinary application clauses in random order, then one clause that decides the label. It
# comes last because the classifier pools the last token: even a method that trains little
# more than the head can learn it, so "the loss falls" is a fair test of every method.
_NOISE_CLAUSES = {
    "Duration": ["6 months", "12 months", "18 months", "24 months", "36 months", "48 months"],
    "Purpose": [
        "car (new)",
        "car (used)",
        "radio/television",
        "furniture/equipment",
        "business",
        "education",
    ],
    "Savings account": ["< 100 DM", "100 <= ... < 500 DM", ">= 1000 DM", "unknown/ no savings account"],
    "Housing": ["own", "rent", "for free"],
    "Age": ["22 years", "29 years", "35 years", "44 years", "58 years"],
    "Credit amount": ["1169 DM", "2096 DM", "5951 DM", "7882 DM"],
}
_SIGNAL_CLAUSE = {
    0: "Credit history: existing credits paid back duly till now.",
    1: "Credit history: delay in paying off in the past.",
}


def learnable_texts(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """`n` serialized applications whose label (0 good / 1 bad) is set by the last clause."""
    rng = random.Random(seed)
    labels = np.array([i % 2 for i in range(n)], dtype=np.int64)
    rng.shuffle(labels)  # type: ignore[arg-type]
    texts = []
    for label in labels:
        keys = rng.sample(list(_NOISE_CLAUSES), k=rng.randint(2, len(_NOISE_CLAUSES)))
        clauses = [f"{key}: {rng.choice(_NOISE_CLAUSES[key])}." for key in keys]
        texts.append(" ".join([*clauses, _SIGNAL_CLAUSE[int(label)]]))
    return texts, labels


def suite_data() -> TrainData:
    train_texts, train_labels = learnable_texts(128, seed=1)
    val_texts, val_labels = learnable_texts(32, seed=2)
    return TrainData.build(train_texts, train_labels, val_texts, val_labels)


def suite_train_config(method_name: str, base_model: str, **overrides: Any) -> TrainConfig:
    values: dict[str, Any] = {
        "method": method_name,
        "base_model": base_model,
        "epochs": 3,
        "batch_size": 16,
        "max_length": 64,
        "learning_rate": 2e-3,
        "patience": 0,
        "seed": 0,
        "device": "cpu",
        "precision": "fp32",
    }
    values.update(overrides)
    return TrainConfig(**values)




# ---- one training run per method, shared by the checks ----------------------------------------
@dataclass
class PreparedRun:
    """A training run with the parameter snapshot taken between `prepare` and `fit`."""

    choice: MethodChoice
    config: TrainConfig
    data: TrainData
    before: dict[str, torch.Tensor]
    trainable: set[str]
    result: TrainResult


def prepare_and_fit(
    method_name: str, params: dict[str, Any], config: TrainConfig, data: TrainData
) -> PreparedRun:
    """`train_classifier`'s steps, with a snapshot of every parameter after `prepare`."""
    choice = resolve_method(method_name, params)
    method, cfg = choice.method, choice.method_cfg
    seed_everything(config.seed)
    model, tokenizer = method.load_base(config.base_model, cfg, config)
    model = method.prepare(model, cfg, choice.plan_for_method(plan_run(len(data.train_texts), config)))
    before = {name: param.detach().clone() for name, param in model.named_parameters()}
    trainable = {name for name, param in model.named_parameters() if param.requires_grad}
    result = run_objective(ObjectiveInputs(choice, model, tokenizer, data, config, progress=False))
    return PreparedRun(choice, config, data, before, trainable, result)


@pytest.fixture(scope="module", params=METHOD_NAMES)
def suite_run(request: pytest.FixtureRequest, _tiny_qwen2_build: Path) -> PreparedRun:
    name = request.param
    reason = None if objective_method(name) else get_method(name).suite_skip_reason
    if reason:
        pytest.skip(f"{name}: {reason}")
    config = suite_train_config(name, str(_tiny_qwen2_build), method_params=suite_params(name))
    return prepare_and_fit(name, suite_params(name), config, suite_data())


# ---- the checks --------------------------------------------------------------------------
def test_training_loss_falls(suite_run: PreparedRun) -> None:
    losses = [record["train_loss"] for record in suite_run.result.history]
    assert len(losses) == suite_run.config.epochs
    assert all(np.isfinite(losses))
    assert losses[-1] < losses[0], f"{suite_run.choice.name}: train loss per epoch {losses}"


def test_only_intended_parameters_change(suite_run: PreparedRun) -> None:
    after = dict(suite_run.result.model.named_parameters())
    assert set(after) == set(suite_run.before), "training changed the parameter names"
    assert suite_run.trainable, "prepare left nothing trainable"
    changed_frozen = [
        name
        for name, old in suite_run.before.items()
        if name not in suite_run.trainable and not torch.equal(old, after[name].detach())
    ]
    assert not changed_frozen, f"frozen parameters changed: {changed_frozen[:5]}"
    changed_trainable = [
        name for name in suite_run.trainable if not torch.equal(suite_run.before[name], after[name].detach())
    ]
    assert changed_trainable, "no trainable parameter changed"


def test_trainable_count_matches_prepared_parameters(suite_run: PreparedRun) -> None:
    result = suite_run.result
    expected = sum(suite_run.before[name].numel() for name in suite_run.trainable)
    # Quantized (frozen) weights never count as trainable, so this holds for qlora too.
    assert result.trainable_params == expected
    assert 0 < result.trainable_params <= result.total_params
    # The result names what the optimizer updated: exactly what `prepare` left trainable.
    assert set(result.trainable_parameter_names) == suite_run.trainable


def test_method_object_keeps_no_state_of_the_run(suite_run: PreparedRun) -> None:
    # Everything of one run (step counts, optimizer choice, EWC's Fisher, trained names, the
    # policy method) is passed in or returned; the method object stays as the registry made it.
    assert vars(suite_run.choice.method) == {}


def test_artifact_round_trip_predicts_the_same(suite_run: PreparedRun, tmp_path: Path) -> None:
    result, config = suite_run.result, suite_run.config
    texts = suite_run.data.val_texts
    expected = predict_proba(
        result.model, result.tokenizer, texts, batch_size=8, max_length=config.max_length
    )
    folder = save_risk_model(
        tmp_path / "artifact",
        method_name=suite_run.choice.name,
        method_config=suite_run.choice.params,
        train_config=config,
        model=result.model,
        tokenizer=result.tokenizer,
        threshold=0.5,
        metrics={"val_auc": result.best_val_auc},
        data_hash="suite-data",
        contract_version="test",
    )
    loaded = load_risk_model(folder)
    got = loaded.predict_proba(texts, batch_size=8)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    # The round trip must reproduce the *trained* model, not just any model: a freshly
    # prepared base predicts differently.
    fresh = resolve_method(suite_run.choice.name, suite_run.choice.params)
    seed_everything(config.seed + 1)
    base, tokenizer = fresh.method.load_base(config.base_model, fresh.method_cfg, config)
    untrained_model = fresh.method.prepare(base, fresh.method_cfg)
    untrained = predict_proba(untrained_model, tokenizer, texts, batch_size=8, max_length=config.max_length)
    assert not np.allclose(untrained, expected, atol=1e-4)


@pytest.mark.parametrize("method_name", METHOD_NAMES)
def test_unknown_config_key_rejected_with_allowed_keys(method_name: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_method(method_name, {"definitely_not_a_key": 1})
    message = str(info.value)
    assert "definitely_not_a_key" in message
    assert "Allowed keys:" in message
    for field_name in method_config_class(method_name).model_fields:
        assert field_name in message
    # The suite's own quick parameters must be valid for the method.
    resolve_method(method_name, suite_params(method_name))
