"""Actions an analyst takes from the launchpad: promote a version, roll back the champion,
release a scoring batch held for drift.

Both go through the same library calls as `risk-app models promote/rollback` (a reason is
required and written to the audit log with the actor), so moving the champion from the UI is
as accountable as from the terminal. MLflow's own "Promote model" button and alias pencil skip
this; `champion_alias_watch` (sensors) flags such a move.
"""

import dagster as dg
from pydantic import Field

from pipelines.metadata import expected_failure, reconcile_first, user_errors
from risk_app.errors import NothingToRollBackError
from risk_app.registry.alias_audit import record_unaudited_move
from risk_app.registry.mlflow_registry import rollback_champion, set_champion
from risk_app.run.register import champion_version
from risk_app.storage.holds import release_batch


class PromoteVersionConfig(dg.Config):
    model_name: str = Field(description="Registered model (one per data set, e.g. german_credit).")
    version: int = Field(ge=1, description="Version to make champion.")
    reason: str = Field(min_length=10, description="Why (model-risk ticket, review outcome); audited.")


class RollbackConfig(dg.Config):
    model_name: str = Field(description="Registered model (one per data set, e.g. german_credit).")
    reason: str = Field(min_length=10, description="Why the current champion is withdrawn; audited.")


@dg.op(
    description="Make a registered version champion, with a reason recorded in the audit log.",
    out=dg.Out(io_manager_key="fs_io_manager"),
)
@user_errors
def promote_version(context: dg.OpExecutionContext, config: PromoteVersionConfig) -> dg.Output[str]:
    actor = f"dagster:{context.run.tags.get('dagster/user', 'ui')}"
    reconcile_first(context.log, config.model_name)
    previous = set_champion(config.model_name, config.version, reason=config.reason, actor=actor)
    sentence = f"version {config.version} of {config.model_name} is champion (was {previous or 'none'})"
    context.log.info(sentence)
    return dg.Output(sentence, metadata={"champion": config.version, "previous": previous or "none"})


@dg.op(
    description="Give the champion alias back to the version the current champion replaced.",
    out=dg.Out(io_manager_key="fs_io_manager"),
)
@user_errors
def rollback_to_previous_champion(context: dg.OpExecutionContext, config: RollbackConfig) -> dg.Output[str]:
    actor = f"dagster:{context.run.tags.get('dagster/user', 'ui')}"
    reconcile_first(context.log, config.model_name)
    withdrawn = champion_version(config.model_name)
    try:
        version = rollback_champion(config.model_name, reason=config.reason, actor=actor)
    except NothingToRollBackError as nothing:
        # Nothing moved and nothing is broken: one sentence, not a failure with Dagster's trace.
        context.log.warning(str(nothing))
        return dg.Output(str(nothing), metadata={"champion": withdrawn or "none", "rolled_back": False})
    sentence = (
        f"rolled back: version {withdrawn} withdrawn, "
        f"version {version} of {config.model_name} is champion again"
    )
    context.log.info(sentence)
    return dg.Output(sentence, metadata={"champion": version, "rolled_back": True})


class UnauditedMoveConfig(dg.Config):
    model_name: str = Field(description="Registered model whose champion alias moved outside risk-app.")


@dg.op(description="Record a champion alias moved outside risk-app in the audit log, then fail so it shows.")
@user_errors
def record_unaudited_alias_move(context: dg.OpExecutionContext, config: UnauditedMoveConfig) -> None:
    state = record_unaudited_move(config.model_name, detected_by=f"Dagster run {context.run_id}")
    if state is None:
        # Already recorded, or moved back through risk-app before this run started.
        context.log.info(f"nothing to record: the audit log explains the champion of {config.model_name}")
        return
    # A red run is the point: an alias moved past the reason-and-audit process needs a person.
    raise expected_failure(
        f"{state.sentence()}; recorded in the audit log as an unaudited move, so promote "
        "or roll back through risk-app with a reason."
    )


class ReleaseBatchConfig(dg.Config):
    batch_id: str = Field(
        min_length=8, description="The held batch: its id or at least its first 8 characters."
    )
    reason: str = Field(
        min_length=10, description="Why it may count despite the drift (what was checked, who agreed); kept."
    )


@dg.op(
    description="Release a scoring batch held for drift, with a reason: it counts in the labeled book again.",
    out=dg.Out(io_manager_key="fs_io_manager"),
)
@user_errors
def release_scoring_batch(context: dg.OpExecutionContext, config: ReleaseBatchConfig) -> dg.Output[str]:
    actor = f"dagster:{context.run.tags.get('dagster/user', 'ui')}"
    sentence = release_batch(config.batch_id, reason=config.reason, by=actor)
    context.log.info(sentence)
    return dg.Output(sentence, metadata={"released": config.batch_id, "reason": config.reason})
