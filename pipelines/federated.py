"""`federated_training_job`: a consortium of lenders fine-tunes one model (risk_app.federated).

One op, thin: the launchpad config is typed here and parsed once into the library's
`FederatedConfig` (unknown keys refused with the allowed ones), `risk_app.federated.simulation`
runs the consortium in Flower's Simulation Engine, and every round is reported as it ends as an
observation of the `federated_model` asset (lenders asked / returned / refused, loss, AUC per
lender, bytes sent, ε so far). The consortium's model is then packaged like any other run
(`risk_app.federated.product`) and, if asked, registered; the output's metadata carries its
provenance and the pooled test AUC.
"""

from typing import TYPE_CHECKING, Any, Literal

import dagster as dg
from pydantic import Field

from pipelines.metadata import user_errors
from risk_app import paths
from risk_app.federated.config import FederatedConfig, Partition

if TYPE_CHECKING:
    from risk_app.federated.server import RoundReport

FEDERATED_ASSET = dg.AssetKey("federated_model")


class FederatedTrainingConfig(dg.Config):
    dataset: str = Field(default="german_credit", description="Data set: a built-in name or a spec file.")
    lenders: int = Field(default=5, ge=2, description="Virtual lenders cut from the data set.")
    partition_by: str = Field(default="dirichlet:0.5", description="A spec column, or dirichlet:ALPHA.")
    rounds: int = Field(default=3, ge=1, description="Federated rounds.")
    strategy: Literal["fedavg", "fedprox"] = Field(default="fedavg", description="Aggregation strategy.")
    proximal_mu: float = Field(default=0.01, ge=0, description="FedProx's proximal weight.")
    fraction_fit: float = Field(default=1.0, gt=0, le=1, description="Fraction of lenders asked per round.")
    local_epochs: int = Field(default=1, ge=1, description="Epochs each lender trains per round.")
    min_lenders: int = Field(default=2, ge=1, description="Fewest lenders a round needs (else skipped).")
    secure_aggregation: bool = Field(default=False, description="SecAgg+: the server sees only sums.")
    dp_noise_multiplier: float | None = Field(
        default=None, ge=0, description="Turn on lender-level DP with this noise multiplier."
    )
    dp_clipping_norm: float = Field(default=1.0, gt=0, description="DP: L2 bound on one lender's update.")
    train: dict[str, Any] = Field(
        default_factory=dict, description="TrainConfig fields (method, base_model, max_length ...)."
    )
    # Not `register`: a field of that name shadows dg.Config's and warns at every start.
    register_model: bool = Field(default=False, description="Register the packaged model in MLflow.")
    model_name: str = Field(default="consortium", description="Registered model name.")

    def federated_config(self) -> FederatedConfig:
        return FederatedConfig.from_dict({
            "rounds": self.rounds, "strategy": self.strategy, "proximal_mu": self.proximal_mu,
            "fraction_fit": self.fraction_fit, "local_epochs": self.local_epochs,
            "min_lenders": self.min_lenders, "train": self.train,
            "secure_aggregation": {"enabled": self.secure_aggregation},
            "privacy": {"enabled": self.dp_noise_multiplier is not None,
                        "noise_multiplier": self.dp_noise_multiplier or 0.0,
                        "clipping_norm": self.dp_clipping_norm},
        })  # fmt: skip


def round_metadata(report: "RoundReport") -> dict[str, Any]:
    """One round as Dagster metadata."""
    meta: dict[str, Any] = {
        "round": report.server_round,
        "status": report.status,
        "lenders_returned": ", ".join(report.returned) or "none",
        "seconds": round(report.seconds, 1),
    }
    if report.reason:
        meta["reason"] = report.reason
    meta.update({f"val_auc/{k}": round(v, 4) for k, v in report.val_auc_global.items()})
    meta.update({f"train_loss/{k}": round(v, 4) for k, v in report.train_loss.items()})
    meta.update({f"bytes_sent/{k}": v for k, v in report.bytes_up.items()})
    meta.update({f"refused_update/{k}": v for k, v in report.rejected.items()})
    meta.update({f"epsilon/{k}": round(v, 4) for k, v in report.record_epsilon.items()})
    if report.epsilon is not None:
        meta["epsilon"] = round(report.epsilon, 4)
    return meta


@dg.op(
    description="Run a consortium of lenders on Flower, package (and register) its model.",
    out=dg.Out(io_manager_key="fs_io_manager"),
)
@user_errors
def train_consortium(context: dg.OpExecutionContext, config: FederatedTrainingConfig) -> dg.Output[str]:
    # Flower, Ray and the trainer load here, not when Dagster loads the definitions (start-up time).
    from risk_app.federated.product import package_federated, pooled_examples
    from risk_app.federated.simulation import simulate
    from risk_app.run.register import register_run

    fed = config.federated_config()
    workdir = paths.home() / "federated" / context.run_id

    def observe(report: "RoundReport") -> None:
        context.log_event(dg.AssetObservation(asset_key=FEDERATED_ASSET, metadata=round_metadata(report)))

    result = simulate(config.dataset, lenders=config.lenders, partition=Partition.parse(config.partition_by),
                      config=fed, workdir=workdir, on_round=observe)  # fmt: skip
    valid, examples = pooled_examples(result.sites)
    record = package_federated(result.outcome, valid, examples, spec=config.dataset, source=str(workdir))
    if config.register_model:
        record = register_run(record, model_name=config.model_name)
    outcome = result.outcome
    metadata: dict[str, Any] = {
        "model": record.model_label,
        "lenders": ", ".join(outcome.lenders),
        "rounds_completed": outcome.completed_rounds,
        "pooled_test_auc": round(record.need("evaluation").test.roc_auc, 4),
        "artifact": record.need("artifact").path,
        **{f"test_auc/{k}": round(v, 4) for k, v in outcome.test_auc.items()},
        **{f"refused/{k}": v for k, v in outcome.refused.items()},
    }
    if outcome.epsilon is not None:
        metadata["epsilon"] = round(outcome.epsilon, 4)
    if record.registration is not None:
        metadata["registered_version"] = record.registration.version
    return dg.Output(record.run_id, metadata=metadata)


@dg.job(description="Lenders fine-tune one risk model together without sharing a row (Flower).")
def federated_training_job() -> None:
    train_consortium()
