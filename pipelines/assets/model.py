"""Model assets, one per stage of a run: fine-tune → credit policy → evaluate → package → register.

Each asset reads its config, calls one `risk_app.run` stage on the run record and attaches the
metadata rendered from the record, so an analyst can re-materialize the policy, the evaluation
or the packaging without retraining. The stages after fine-tuning read the run's own rows and
spec from its folder (`workflow.run_inputs`), not the latest `valid_applications`: the lineage
shows one chain per run, and a policy chosen again never mixes in rows ingested since. The
record (a small pydantic object) travels between assets through the filesystem IO manager;
weights and scores stay in the run folder.
"""

import dagster as dg
import pandas as pd

from data_contracts.spec import DatasetSpec
from pipelines.configs import CreditPolicyLaunchpad, FineTuneConfig
from pipelines.metadata import reconcile_first, record_metadata, table, user_errors
from pipelines.pipes_training import fine_tune_in_dagster
from pipelines.resources import RiskAppSettings
from risk_app.hybrid.stage import hybrid_metadata, stack_hybrid
from risk_app.run import stages
from risk_app.run.evaluate import evaluate_run
from risk_app.run.package import package_run
from risk_app.run.plan import plan_training
from risk_app.run.record import RunRecord
from risk_app.run.register import champion_version, promote_run, register_run
from risk_app.run.render import champion_sentence, model_rows
from risk_app.workflow import run_inputs

PICKLED = "fs_io_manager"


@dg.asset(
    group_name="training",
    kinds={"pytorch", "peft"},
    io_manager_key=PICKLED,
    # Only the file name travels, for the model card's data section.
    ins={"raw_applications": dg.AssetIn(metadata={"columns": ["source_file"]})},
)
@user_errors
def fine_tuned_model(
    context: dg.AssetExecutionContext,
    config: FineTuneConfig,
    dataset_spec: DatasetSpec,
    raw_applications: pd.DataFrame,
    valid_applications: pd.DataFrame,
    augmented_training_examples: pd.DataFrame,
) -> dg.Output[RunRecord]:
    """A fine-tuned LLM: trained weights and raw validation/test scores in the run folder."""
    train_config = config.train_config()
    # Checked once, before a run folder is made (rlhf: that the data set has enough feedback).
    plan = plan_training(train_config, config.nproc, dataset_spec)
    context.log.info(f"fine-tuning {train_config.base_model} with method {train_config.method!r}")
    source = str(raw_applications["source_file"].iloc[0]) if len(raw_applications) else ""
    # A first attempt names its training run after its Dagster run; a retry ("re-execute from
    # failure", same root run) finds that folder and continues from the last epoch checkpoint.
    # A retry of a run that finished training gets a new run id: its registration is keyed by
    # the run id and must not be taken for the earlier model's.
    root = context.run.root_run_id
    resumable = stages.resumable_run(_dagster_run_id(train_config.method, root)) if root else None
    if resumable is not None:
        context.log.info(f"resuming training run {resumable.run_id} from its last epoch checkpoint")
        record, launched = fine_tune_in_dagster(
            context, resumable, augmented_training_examples, plan, resume=True
        )
    else:
        run_id = None if root else _dagster_run_id(train_config.method, context.run_id)
        record = stages.start_run(
            valid_applications, augmented_training_examples, source=source, spec=dataset_spec,
            method=train_config.method, run_id=run_id,
        )  # fmt: skip
        record, launched = fine_tune_in_dagster(context, record, augmented_training_examples, plan)
    return dg.Output(record, metadata={**record_metadata(record, "training"), **launched})


def _dagster_run_id(method: str, dagster_run_id: str) -> str:
    return f"{method}-dagster-{dagster_run_id[:12]}"


@dg.asset(group_name="training", kinds={"sklearn", "lightgbm"}, io_manager_key=PICKLED)
@user_errors
def credit_policy(config: CreditPolicyLaunchpad, fine_tuned_model: RunRecord) -> dg.Output[RunRecord]:
    """[The LLM stacked with LightGBM, then] PD calibration and the decline cut-off, chosen on
    validation by the analyst's policy (on the run's own rows and spec, from its folder)."""
    spec, valid, examples = run_inputs(fine_tuned_model)
    record = stack_hybrid(fine_tuned_model, valid, examples, config.hybrid_config(), spec=spec)
    record = stages.choose_credit_policy(record, config.policy_config())
    return dg.Output(record, metadata={**record_metadata(record, "policy"), **hybrid_metadata(record)})


@dg.asset(group_name="evaluation", kinds={"sklearn", "duckdb"}, io_manager_key=PICKLED)
@user_errors
def model_evaluation(credit_policy: RunRecord, settings: RiskAppSettings) -> dg.Output[RunRecord]:
    """Test metrics beside the classical baselines and the champion (re-scored on the same rows,
    which promotion decides on), charts, lift and fairness (the run's test rows)."""
    spec, valid, examples = run_inputs(credit_policy)
    champion_of = settings.registered_name(spec.name)
    record = evaluate_run(credit_policy, valid, examples, spec=spec, champion_model=champion_of)
    return dg.Output(record, metadata=record_metadata(record, "evaluation"))


@dg.asset(group_name="evaluation", kinds={"duckdb"})
def model_comparison(model_evaluation: RunRecord) -> dg.Output[pd.DataFrame]:
    """The same test metrics as a warehouse table: one row per model of the run, shown whole."""
    rows = [
        {"run_id": model_evaluation.run_id, "model": name, **values}
        for name, values in model_rows(model_evaluation)
    ]
    frame = pd.DataFrame(rows)
    shown = frame.drop(columns="run_id").round(4) if not frame.empty else frame
    return dg.Output(frame, metadata={"comparison": table(shown, max_rows=40)})


@dg.asset(group_name="registry", kinds={"safetensors"}, io_manager_key=PICKLED)
@user_errors
def packaged_model(model_evaluation: RunRecord) -> dg.Output[RunRecord]:
    """The self-describing artifact folder: weights, manifest, spec and model card."""
    record = package_run(model_evaluation, spec=run_inputs(model_evaluation)[0])
    return dg.Output(record, metadata=record_metadata(record, "artifact"))


@dg.asset(group_name="registry", kinds={"mlflow"}, io_manager_key=PICKLED)
@user_errors
def registered_model(
    context: dg.AssetExecutionContext, packaged_model: RunRecord, settings: RiskAppSettings
) -> dg.Output[RunRecord]:
    """A new MLflow model version (alias `challenger`) with the promotion rule's verdict."""
    name = settings.registered_name(packaged_model.dataset.name)
    reconcile_first(context.log, name)
    record = register_run(
        packaged_model,
        model_name=name,
        rule=settings.promotion_rule(),
        benchmark_margin=settings.gate_margin(),
    )
    return dg.Output(record, metadata=record_metadata(record, "registration"))


@dg.asset(group_name="registry", kinds={"mlflow"}, io_manager_key=PICKLED)
@user_errors
def champion_model(
    context: dg.AssetExecutionContext, registered_model: RunRecord, settings: RiskAppSettings
) -> dg.Output[RunRecord]:
    """The version behind alias `champion`: the new version when the promotion rule says so,
    else the current champion stays, and the reason says why."""
    rule, margin = settings.promotion_rule(), settings.gate_margin()
    record = promote_run(registered_model, rule, actor="dagster", benchmark_margin=margin)
    registration = record.need("registration")
    champion = champion_version(registration.model_name)
    sentence = champion_sentence(registration, champion)
    context.log.info(sentence)
    return dg.Output(
        record,
        metadata={
            "champion_version": champion or 0,
            "challenger_version": registration.version,
            "promoted": registration.promoted,
            "outcome": dg.MetadataValue.text(sentence),
        },
    )
