"""The consortium's model as a product model: packaged, evaluated and registered like any other.

A federated run ends with the global trainable tensors (`ConsortiumOutcome.weights_file`). This
module puts them on the base model the method prepares, and from there the model takes the
product's ordinary path (`risk_app.run`): a run folder (`start_run`), its weights and raw
validation/test scores (`record_training`), the credit policy chosen on validation, the
evaluation on test beside the classical baselines, the packaged artifact, the MLflow version
with its promotion verdict. The run record carries the consortium's provenance
(`FederationFacts`: lenders, rounds, strategy, SecAgg+, ε), which the model card, the manifest
and MLflow's tags show, and the model is named `federated:<method>`.

Whose rows choose the policy and evaluate? The caller's: a lender packaging the consortium's
model for itself passes its own validated rows and examples; the simulation (and the bench)
pass the lenders' rows pooled (`pooled_examples`), so the test split is the union of the
lenders' own test splits.

    valid, examples = pooled_examples(result.sites)
    record = package_federated(result.outcome, valid, examples, spec="german_credit")
    record = register_run(record, model_name="consortium")
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

import pandas as pd
from safetensors.numpy import load_file

from data_contracts.spec import load_spec
from risk_app.errors import RiskAppError
from risk_app.federated.lender import LenderSite
from risk_app.federated.moments import ConsortiumStandardisation
from risk_app.federated.server import ConsortiumOutcome
from risk_app.federated.tensors import TensorTemplate
from risk_app.finetune.registry import resolve_method
from risk_app.finetune.run_setup import count_parameters, seed_everything
from risk_app.finetune.standardised_head import set_standardisation, standardised_head
from risk_app.finetune.types import TrainResult
from risk_app.policy.credit import PolicyConfig
from risk_app.run.evaluate import DEFAULT_BASELINES, evaluate_run
from risk_app.run.package import package_run
from risk_app.run.plan import TrainingPlan
from risk_app.run.record import FederationFacts, RunRecord
from risk_app.run.stages import choose_credit_policy, record_training, start_run
from risk_app.workflow import ingest_and_validate, prepare_examples


def pooled_examples(sites: Sequence[LenderSite]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every lender's validated rows and examples (its own seeded split), concatenated."""
    valid, examples = [], []
    for site in sites:
        validation = ingest_and_validate(site.data_file, spec=site.spec)
        valid.append(validation.valid)
        examples.append(prepare_examples(validation.valid, seed=site.split_seed, spec=site.spec))
    pooled = pd.concat(examples, ignore_index=True)
    if pooled["application_id"].duplicated().any():
        raise RiskAppError(
            "two lenders hold an application with the same id; pooled evaluation needs unique ids"
        )
    return pd.concat(valid, ignore_index=True), pooled


def federation_facts(outcome: ConsortiumOutcome) -> FederationFacts:
    cfg = outcome.config
    sizes = [b for r in outcome.rounds for b in r.bytes_up.values()]
    level: str | None = None
    noise: float | None = None
    clip: float | None = None
    if cfg.privacy.enabled:
        level, noise, clip = "lender", cfg.privacy.noise_multiplier, cfg.privacy.clipping_norm
    elif cfg.record_privacy.enabled:
        level, noise, clip = "record", cfg.record_privacy.noise_multiplier, cfg.record_privacy.max_grad_norm
    return FederationFacts(
        lenders=outcome.lenders,
        refused=outcome.refused,
        rounds_planned=cfg.rounds,
        rounds_completed=outcome.completed_rounds,
        rounds_skipped=[r.reason for r in outcome.rounds if r.status == "skipped"],
        strategy=cfg.strategy if cfg.strategy == "fedavg" else f"fedprox (mu {cfg.proximal_mu:g})",
        fraction_fit=cfg.fraction_fit,
        local_epochs=cfg.local_epochs,
        min_lenders=cfg.min_lenders,
        secure_aggregation=cfg.secure_aggregation.enabled,
        epsilon=outcome.epsilon,
        delta=outcome.delta,
        noise_multiplier=noise,
        clipping_norm=clip,
        privacy_level=level,
        lender_epsilon=dict(outcome.record_epsilon),
        template=outcome.template,
        bytes_per_round_per_lender=float(statistics.median(sizes)) if sizes else None,
        lender_test_auc=outcome.test_auc,
    )


def federated_model(outcome: ConsortiumOutcome) -> tuple[Any, Any, TensorTemplate]:
    """(model, tokenizer, template): the method's prepared base with the consortium's weights."""
    train = outcome.config.train
    choice = resolve_method(train.method, train.method_params)
    method, cfg = choice.method, choice.method_cfg
    seed_everything(train.seed)
    model, tokenizer = method.load_base(train.base_model, cfg, train)
    model = method.prepare(model, cfg, None)
    template = TensorTemplate.of(method, model)
    if template.signature != outcome.template:
        raise RiskAppError(
            f"{outcome.weights_file}: the consortium's tensors ({outcome.template}) do not fit "
            f"{train.base_model} prepared by {train.method} here ({template.signature})"
        )
    tensors = load_file(outcome.weights_file)
    template.load(model, [tensors[name] for name in template.names], outcome.weights_file)
    standardisation = ConsortiumStandardisation.from_json(outcome.standardisation)
    head = standardised_head(model)
    if head is not None:  # the consortium's statistics go into the model, so the artifact carries them
        if standardisation is None:
            raise RiskAppError(
                f"{outcome.weights_file}: a standardised head without the consortium's statistics"
            )
        set_standardisation(head, standardisation.mean, standardisation.scale, fixed=True)
    return model.eval(), tokenizer, template


def package_federated(
    outcome: ConsortiumOutcome,
    valid: pd.DataFrame,
    examples: pd.DataFrame,
    *,
    spec: Any,
    source: str = "",
    policy_config: PolicyConfig | None = None,
    baselines: Sequence[str] = DEFAULT_BASELINES,
    run_id: str | None = None,
) -> RunRecord:
    """A run of the product for the consortium's model, up to the packaged artifact."""
    if outcome.completed_rounds == 0:
        raise RiskAppError("the consortium completed no round: there is no federated model to package")
    spec = load_spec(spec)
    if spec.hash != outcome.spec_hash:
        raise RiskAppError(f"data set {spec.name}: its spec is not the consortium's (spec hash differs)")
    train = outcome.config.train
    record = start_run(
        valid, examples, source=source, spec=spec, method=f"federated-{train.method}", run_id=run_id
    )
    model, tokenizer, template = federated_model(outcome)
    trainable, total = count_parameters(model)
    history = [
        {
            "epoch": r.server_round,
            "train_loss": statistics.fmean(r.train_loss.values()) if r.train_loss else float("nan"),
            "val_auc": statistics.fmean(r.val_auc_global.values()) if r.val_auc_global else float("nan"),
            "seconds": r.seconds,
        }
        for r in outcome.rounds
        if r.status == "aggregated"
    ]
    result = TrainResult(
        model=model, tokenizer=tokenizer, history=history,
        best_epoch=history[-1]["epoch"], best_val_auc=history[-1]["val_auc"],
        trainable_params=trainable, total_params=total, trainable_percent=100.0 * trainable / max(total, 1),
        wall_seconds=sum(r.seconds for r in outcome.rounds), peak_memory_mb=0.0, tokens_per_second=0.0,
        device="cpu", method_name=train.method, method_config=dict(train.method_params),
        trainable_parameter_names=list(template.names),
    )  # fmt: skip
    record = record_training(record, result, examples, TrainingPlan.of(train))
    record = record.model_copy(update={"federation": federation_facts(outcome)})
    record.save()
    record = choose_credit_policy(record, policy_config)
    record = evaluate_run(record, valid, examples, spec=spec, baselines=baselines)
    return package_run(record, spec=spec)
