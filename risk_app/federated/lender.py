"""One lender of the consortium: a Flower client that trains the product's model on its own rows.

A lender is a folder of its own (`LenderSite`): its applications file, its data set spec and its
`RISK_APP_HOME`. It validates and serializes its rows with the product's own pipeline
(`ingest_and_validate`, `prepare_examples`: quarantine, the spec's text, a seeded 70/15/15
split) and never lets them out. `Lender` is the Flower `NumPyClient`:

* `get_properties` — the join: compare the consortium's terms with its own (`join.py`) and
  answer with its spec hash, its tensor signature and, if they differ, the sentence why;
* `fit` — load the round's global trainable tensors into its prepared model, train
  `local_epochs` with the product's trainer (`objectives.base.run_objective`: the method's own
  objective, optimizer and hooks; FedProx adds its proximal term through the method's
  regularizer hook), return the trainable tensors, the number of training rows (FedAvg's
  weight) and three scalars (train loss, validation AUC, seconds);
* `evaluate` — the global model on its validation split (each round) or its test split (the
  final evaluation): loss, row count and AUC.

The base model is loaded and prepared once per process (`_prepared`): the frozen base never
changes and every trainable tensor is overwritten by the global weights at the start of each
call, so nothing of one call (or, in a simulation where virtual lenders share a process, of one
lender) survives into the next.

    client = Lender(LenderSite.open(folder), config).to_client()
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from flwr.client import NumPyClient
from pydantic import BaseModel
from sklearn.metrics import roc_auc_score

from data_contracts.spec import DatasetSpec, load_spec
from risk_app.atomic import atomic_write_text
from risk_app.data.ingest import ingest_and_validate, prepare_examples
from risk_app.errors import ConfigError
from risk_app.federated.config import FederatedConfig
from risk_app.federated.dpsgd import dp_fit_head, head_features, lender_epsilon
from risk_app.federated.join import KEY_LENDER, KEY_REFUSAL, KEY_SPEC_HASH, KEY_TEMPLATE, terms_difference
from risk_app.federated.moments import (
    KEY_MEAN,
    KEY_PHASE,
    PHASE_SPREAD,
    ConsortiumStandardisation,
    decode_vector,
    lender_moment,
    statistics_releases,
)
from risk_app.federated.proximal import WithProximalTerm
from risk_app.federated.tensors import TensorTemplate
from risk_app.finetune.config import TrainConfig
from risk_app.finetune.features import base_fingerprint
from risk_app.finetune.objectives.base import ObjectiveInputs, run_objective
from risk_app.finetune.predict import predict_logits, softmax_default
from risk_app.finetune.registry import MethodChoice, resolve_method
from risk_app.finetune.run_setup import (
    resolve_device,
    seed_everything,
    subsample_train,
    weighted_cross_entropy,
)
from risk_app.finetune.speed import apply_load_levers
from risk_app.finetune.standardised_head import set_standardisation, standardised_head
from risk_app.finetune.trainer import plan_run
from risk_app.finetune.types import TrainData

SITE_FILE = "lender.json"
# Fit/evaluate config keys the server sends (besides Flower's own `proximal_mu`).
KEY_ROUND = "server_round"
KEY_SPLIT = "split"


class LenderSite(BaseModel):
    """A lender's folder: its name, data file, spec and home (where its caches and logs live)."""

    name: str
    data_file: Path
    spec: str
    home: Path
    split_seed: int = 42

    @classmethod
    def open(cls, folder: str | Path) -> LenderSite:
        path = Path(folder) / SITE_FILE
        if not path.is_file():
            raise ConfigError(f"{folder}: not a lender folder (no {SITE_FILE})")
        return cls.model_validate_json(path.read_text())

    def save(self, folder: str | Path) -> Path:
        return atomic_write_text(Path(folder) / SITE_FILE, self.model_dump_json(indent=2))


@dataclass(frozen=True)
class LenderData:
    """A lender's serialized applications and labels, by split (never sent anywhere)."""

    spec: DatasetSpec
    train: TrainData
    test_texts: list[str]
    test_labels: np.ndarray
    n_in: int
    n_quarantined: int

    @classmethod
    def load(cls, site: LenderSite) -> LenderData:
        spec = load_spec(site.spec)
        validation = ingest_and_validate(site.data_file, spec=spec)
        examples = prepare_examples(validation.valid, seed=site.split_seed, spec=spec)

        def part(split: str) -> tuple[list[str], np.ndarray]:
            rows = examples.loc[examples["split"] == split]
            return rows["text"].tolist(), rows["default"].to_numpy(dtype=np.int64)

        (tr_x, tr_y), (va_x, va_y), (te_x, te_y) = part("train"), part("validation"), part("test")
        return cls(
            spec=spec,
            train=TrainData.build(tr_x, tr_y, va_x, va_y),
            test_texts=te_x,
            test_labels=te_y,
            n_in=validation.n_in,
            n_quarantined=validation.n_quarantined,
        )


@cache
def _lender_data(site_json: str) -> LenderData:
    return LenderData.load(LenderSite.model_validate_json(site_json))


@dataclass
class PreparedModel:
    choice: MethodChoice
    model: Any
    tokenizer: Any
    template: TensorTemplate


_PREPARED: dict[str, PreparedModel] = {}


def prepared_model(train: TrainConfig) -> PreparedModel:
    """The base model loaded and prepared by the method (one per process, keyed by the config)."""
    key = json.dumps([train.base_model, train.method, train.method_params, train.seed], sort_keys=True)
    if key not in _PREPARED:
        _PREPARED.clear()  # one model per process: a new consortium config replaces the old one
        choice = resolve_method(train.method, train.method_params)
        method, cfg = choice.method, choice.method_cfg
        seed_everything(train.seed)  # the initial adapters / head: the same on every side
        model, tokenizer = method.load_base(train.base_model, cfg, train)
        model = apply_load_levers(model, train.speed, resolve_device(train.device))
        model = method.prepare(model, cfg, plan_run(1, train))
        _PREPARED[key] = PreparedModel(choice, model, tokenizer, TensorTemplate.of(method, model))
    return _PREPARED[key]


def check_federable(config: FederatedConfig) -> None:
    """Refuse method settings a consortium cannot train, each in one sentence."""
    choice = resolve_method(config.train.method, config.train.method_params)
    cfg, objective = choice.params, choice.objective
    if objective == "rlhf":
        raise ConfigError("method 'rlhf' learns from analyst feedback, which stays with each lender; "
                          "federate its policy method instead")  # fmt: skip
    linear_head = objective == "frozen_features" and getattr(cfg, "head", "") in ("linear", "standardised")
    if config.record_privacy.enabled and not linear_head:
        raise ConfigError(
            "record-level DP-SGD (record_privacy) trains the linear head on frozen features only: use "
            "method freeze with n_trainable_layers 0 and head 'linear' or 'standardised' (the supervised "
            "loop has no per-example clipping)"
        )
    if objective == "frozen_features":
        if getattr(cfg, "head", "linear") == "logistic":
            raise ConfigError(
                "a head on frozen features federates only as head 'linear' or 'standardised': the "
                "logistic head is refitted from scratch each round, so averaging it would ignore the "
                "global model"
            )
        if getattr(cfg, "head", "") == "standardised" and config.privacy.enabled:
            raise ConfigError(
                "the standardised head's statistics rounds are not covered by lender-level DP (privacy); "
                "use record_privacy, whose ε counts them, or head 'linear'"
            )
        if config.strategy == "fedprox" and config.proximal_mu > 0:
            raise ConfigError(
                "FedProx's proximal term is added in the supervised loop; a head on frozen features "
                "trains outside it, so use strategy fedavg (or proximal_mu 0)"
            )


@contextmanager
def lender_home(site: LenderSite) -> Iterator[None]:
    """RISK_APP_HOME set to the lender's own home while it works (caches, base models, logs)."""
    before = os.environ.get("RISK_APP_HOME")
    os.environ["RISK_APP_HOME"] = str(site.home)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("RISK_APP_HOME", None)
        else:
            os.environ["RISK_APP_HOME"] = before


class Lender(NumPyClient):
    """The Flower client of one lender."""

    def __init__(self, site: LenderSite, config: FederatedConfig) -> None:
        self.site = site
        self.config = config

    # ---- state that stays here ---------------------------------------------------------
    def _data(self) -> LenderData:
        with lender_home(self.site):
            return _lender_data(self.site.model_dump_json())

    def _model(self) -> PreparedModel:
        with lender_home(self.site):
            return prepared_model(self.config.train)

    # ---- Flower ------------------------------------------------------------------------
    def get_properties(self, config: dict[str, Any]) -> dict[str, Any]:
        """The join: this lender's spec hash, tensor signature, and the first difference (or '')."""
        spec = load_spec(self.site.spec)
        prepared = self._model()
        with lender_home(self.site):
            base_hash = base_fingerprint(self.config.train.base_model)
        refusal = terms_difference(config, spec, self.config.train, prepared.template.signature, base_hash)
        refusal = refusal or self._over_budget()
        return {
            KEY_LENDER: self.site.name,
            KEY_SPEC_HASH: spec.hash,
            KEY_TEMPLATE: prepared.template.signature,
            KEY_REFUSAL: refusal or "",
        }

    def _over_budget(self) -> str | None:
        """Record-level DP: the sentence why this lender's planned rounds would spend too much ε."""
        privacy, cfg = self.config.record_privacy, self.config
        if not privacy.enabled or privacy.max_epsilon is None:
            return None
        rows = len(self._data().train.train_texts)
        if cfg.train.max_train_rows is not None:
            rows = min(rows, cfg.train.max_train_rows)
        planned = lender_epsilon(
            privacy, rows, cfg.train.batch_size, cfg.rounds * cfg.local_epochs, statistics_releases(cfg)
        )
        if planned <= privacy.max_epsilon:
            return None
        return (
            f"its {rows} training rows would spend ε = {planned:.2f} at δ = {privacy.delta:g} over "
            f"{cfg.rounds} rounds of DP-SGD, above the consortium's max_epsilon {privacy.max_epsilon:g}"
        )

    def get_parameters(self, config: dict[str, Any]) -> list[np.ndarray]:
        prepared = self._model()
        return prepared.template.arrays(prepared.model)

    def _statistics(self, phase: str, config: dict[str, Any]) -> tuple[list[np.ndarray], int, dict]:
        """A statistics round (moments.py): this lender's feature mean or spread, and its row count."""
        data, prepared, train = self._data(), self._model(), self.config.train
        rows = subsample_train(data.train, train.max_train_rows, train.seed)
        mean = decode_vector(config[KEY_MEAN], "mean") if phase == PHASE_SPREAD else None
        privacy = self.config.record_privacy if self.config.record_privacy.enabled else None
        with lender_home(self.site):
            features = head_features(prepared, train, rows.train_texts)
        return [lender_moment(features, phase, mean, privacy)], len(rows.train_texts), {}

    def take_standardisation(self, prepared: PreparedModel, config: dict[str, Any]) -> None:
        """The standardised head takes the consortium's mean and scale from the instruction."""
        head = standardised_head(prepared.model)
        if head is None:
            return
        standardisation = ConsortiumStandardisation.from_instructions(config)
        if standardisation is None:
            raise ConfigError(
                "the standardised head needs the consortium's feature statistics in each instruction"
            )
        set_standardisation(head, standardisation.mean, standardisation.scale, fixed=True)

    def fit(self, parameters: list[np.ndarray], config: dict[str, Any]) -> tuple[list[np.ndarray], int, dict]:
        if KEY_PHASE in config:
            return self._statistics(str(config[KEY_PHASE]), config)
        started = time.perf_counter()
        data, prepared = self._data(), self._model()
        prepared.template.load(prepared.model, parameters)
        self.take_standardisation(prepared, config)
        server_round = int(config.get(KEY_ROUND, 1))
        train_config = self.config.lender_train_config(server_round)
        mu = float(config.get("proximal_mu", 0.0))
        choice = prepared.choice
        if mu > 0:
            choice = replace(choice, method=WithProximalTerm(choice.method, mu))
        with lender_home(self.site):
            seed_everything(train_config.seed)
            train_data = subsample_train(data.train, train_config.max_train_rows, train_config.seed)
            if self.config.record_privacy.enabled:
                loss, val_auc, epsilon = dp_fit_head(
                    prepared, train_data, train_config, self.config.record_privacy, server_round
                )
                metrics = {"train_loss": loss, "val_auc": val_auc, "epsilon": epsilon,
                           "seconds": time.perf_counter() - started}  # fmt: skip
                return prepared.template.arrays(prepared.model), len(train_data.train_texts), metrics
            inputs = ObjectiveInputs(
                choice, prepared.model, prepared.tokenizer, train_data, train_config, progress=False
            )
            result = run_objective(inputs)
        last = result.history[-1]
        metrics = {
            "train_loss": float(last.get("train_loss", float("nan"))),
            "val_auc": float(result.best_val_auc),
            "seconds": time.perf_counter() - started,
        }
        return prepared.template.arrays(result.model), len(train_data.train_texts), metrics

    def evaluate(self, parameters: list[np.ndarray], config: dict[str, Any]) -> tuple[float, int, dict]:
        data, prepared = self._data(), self._model()
        prepared.template.load(prepared.model, parameters)
        self.take_standardisation(prepared, config)
        split = str(config.get(KEY_SPLIT, "validation"))
        texts, labels = (
            (data.test_texts, data.test_labels)
            if split == "test"
            else (data.train.val_texts, data.train.val_labels)
        )
        train = self.config.train
        prepared.model.eval()
        with torch.no_grad():
            logits = predict_logits(
                prepared.model, prepared.tokenizer, texts, train.eval_batch_size, train.max_length
            )
        proba = softmax_default(logits)
        loss = weighted_cross_entropy(torch.from_numpy(logits), labels)
        auc = float(roc_auc_score(labels, proba)) if len(np.unique(labels)) == 2 else float("nan")
        return loss, len(texts), {"auc": auc}
