"""The typed record of one training run, filled in stage by stage.

A run flows one way: `fine_tune` → `choose_policy` → `evaluate` → `package` → `register`
(`risk_app.run.stages`). Each stage reads what the earlier ones wrote into the `RunRecord` and
adds its own section; no stage re-derives a fact an earlier one knew. Every report is one
function of the record: the model card (`evaluate.model_card.render_model_card`), the artifact
manifest (`run.package`), MLflow params/metrics/tags (`run.render.mlflow_payload`), the
Dagster metadata (`pipelines.metadata.record_metadata`) and the CLI summary
(`run.render.summary_rows`).

The record is JSON on disk (`<run_dir>/run_record.json`, written atomically after each
stage), so a Dagster asset can re-run one stage (a new policy, a new evaluation) without
retraining, and a run can be inspected after the fact.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, model_validator

from risk_app.atomic import atomic_write_json
from risk_app.data.text import TextColumnStats
from risk_app.errors import RiskAppError
from risk_app.evaluate.metric_table import Metrics
from risk_app.finetune.config import TrainConfig
from risk_app.finetune.registry import resolve_method
from risk_app.finetune.types import TrainingNumbers
from risk_app.hybrid.config import TABULAR_LABEL, HybridConfig, HybridFacts
from risk_app.policy.credit import PolicyConfig, policy_id
from risk_app.registry.promotion import PromotionDecision

RECORD_FILE = "run_record.json"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatasetFacts(_Section):
    """What the run was trained on."""

    name: str = Field(description="Data set name (from its spec).")
    spec_version: str = Field(description="Version of the data set's spec / data contract.")
    spec_hash: str = Field(default="", description="sha256 of the data set's spec file.")
    description: str = Field(default="", description="What the data set is (from its spec).")
    origin: str = Field(default="", description="Where the data set comes from (from its spec).")
    licence: str = Field(default="", description="Its licence (from its spec).")
    limitations: list[str] = Field(default_factory=list, description="Known limits stated in the spec.")
    target: str = Field(default="", description="Target column and which value means default.")
    protected: list[str] = Field(default_factory=list, description="Protected attributes (from the spec).")
    costs: tuple[float, float] | None = Field(
        default=None, description="(missed default, declined good) costs stated in the spec."
    )
    source: str = Field(default="", description="The file the applications came from.")
    data_hash: str = Field(description="sha256 of the training examples (texts, labels, splits).")
    split_strategy: str = Field(default="stratified", description="How rows were split.")
    split_seed: int = Field(default=42)
    vintages: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Months (YYYY-MM) of the application dates in each split, when the data set has a "
        "date column (e.g. a run on the labeled book with an out-of-time test on the newest vintage).",
    )
    rows: dict[str, int] = Field(description="Examples per split (train includes augmented copies).")
    augmented_rows: int = Field(default=0)
    excluded_fields: list[str] = Field(default_factory=list, description="Fields left out of the text.")
    quality_warnings: list[str] = Field(default_factory=list, description="Data-quality findings.")
    text_columns: dict[str, TextColumnStats] = Field(
        default_factory=dict,
        description="Per free-text column the model reads: rows cleaned, cut and empty, tokens read.",
    )
    text_tokens: str = Field(
        default="estimate",
        description="What counted free-text tokens for the budgets: 'estimate' or 'tokenizer of <base "
        "model>'; scoring counts the same way (the artifact's tokenizer).",
    )


class EpochRecord(_Section):
    epoch: int
    train_loss: float
    val_loss: float | None = None
    val_auc: float
    learning_rate: float | None = None
    seconds: float | None = None
    model_config = ConfigDict(extra="allow")  # objectives add their own per-epoch numbers


class TrainingFacts(TrainingNumbers, _Section):
    """What fine-tuning did (the trainer's `TrainingNumbers`, declared once in
    `risk_app.finetune.types`) and where it left the trained weights and raw scores."""

    config: TrainConfig
    method_params: SerializeAsAny[BaseModel] = Field(
        description="The method's own Config, parsed once when the run was planned (risk_app.run.plan); "
        "on disk, every parameter after validation."
    )
    epochs_run: int
    texts_over_max_length: int = Field(
        default=0,
        description="Original (not augmented) texts longer than max_length tokens: the model read only "
        "their first max_length tokens.",
    )
    longest_text_tokens: int = Field(default=0, description="Tokens of the longest original text.")
    history: list[EpochRecord] = Field(default_factory=list)
    trained_dir: str = Field(description="Folder with the trained weights and tokenizer.")
    mlflow_run_id: str = Field(default="", description="The MLflow run that logged training as it happened.")
    predictions_path: str = Field(description="Parquet of raw validation/test scores per application.")

    @model_validator(mode="before")
    @classmethod
    def _typed_method_params(cls, data: Any) -> Any:
        """A record read back from JSON: the stored parameters become the method's Config again."""
        if isinstance(data, dict) and isinstance(data.get("method_params"), Mapping):
            config = data.get("config")
            method = config.method if isinstance(config, TrainConfig) else dict(config or {}).get("method")
            method = method or TrainConfig.model_fields["method"].default
            data = {**data, "method_params": resolve_method(method, data["method_params"]).params}
        return data


class StrategyRow(_Section):
    """One candidate cut-off and what it does on validation."""

    cutoff: float
    approval_rate: float
    bad_rate_approved: float
    defaults_caught: float
    expected_cost: float


class PolicyFacts(_Section):
    """The credit policy chosen on validation, with the trade-off it was chosen from."""

    config: PolicyConfig
    calibration: dict[str, Any] = Field(description="The fitted calibrator (Calibrator.to_dict).")
    threshold: float = Field(ge=0.0, le=1.0, description="Decline when PD >= threshold.")
    costs: tuple[float, float] = Field(description="(missed default, declined good) costs used.")
    validation: Metrics = Field(description="Validation metrics at the cut-off, calibrated PDs.")
    expected_cost: float = Field(description="Expected cost per application on validation at the cut-off.")
    strategy: list[StrategyRow] = Field(default_factory=list, description="Cut-offs and their effect.")

    @property
    def policy_id(self) -> str:
        """12 hex naming calibration, cut-off and config (`policy.credit.policy_id`)."""
        return policy_id(self.config, self.calibration, self.threshold)


class ChampionRowFacts(_Section):
    """The champion of the registered model, re-scored on this run's test rows (the row
    `champion` of the evaluation): which version, at which cut-off, and where both models'
    scores on those rows are, for the paired comparison promotion makes."""

    model_name: str = Field(description="The registered model whose champion was re-scored.")
    version: str = Field(description="The champion version that was re-scored.")
    threshold: float = Field(description="The champion's own cut-off.")
    scores_path: str = Field(
        description="Parquet of the test rows: application_id, default, and the calibrated PD of the "
        "challenger and of the champion."
    )
    rows: int = Field(description="Test rows both models scored.")
    defaults: int = Field(description="Defaults among them.")
    compared: int | None = Field(
        default=None,
        description="Test rows the comparison uses: those the champion was not fitted on (None in "
        "records made before fitted rows were left out: all rows).",
    )
    compared_defaults: int | None = Field(default=None, description="Defaults among the compared rows.")
    excluded_train: int = Field(default=0, description="Test rows left out: the champion trained on them.")
    excluded_validation: int = Field(
        default=0, description="Test rows left out: the champion was validated on them."
    )
    overlap_known: bool = Field(
        default=False,
        description="Whether the champion's artifact records the rows it was fitted on; when not "
        "(an older artifact), all rows are compared and the overlap is unknown.",
    )
    fallback: str | None = Field(
        default=None,
        description="Why the rows left cannot decide (too few, or one class only): promotion then "
        "decides on the recorded metrics and says this.",
    )


class EvaluationFacts(_Section):
    """Test-split results of the model beside each baseline, fairness and the report files."""

    test: Metrics
    baselines: dict[str, Metrics] = Field(default_factory=dict)
    baseline_notes: dict[str, str] = Field(
        default_factory=dict, description="Baseline name -> why it is not among `baselines` (e.g. skipped)."
    )
    ece: float
    top_decile_lift: float
    report_dir: str
    plots: dict[str, str] = Field(default_factory=dict, description="Chart name -> PNG path.")
    lift_table: str = Field(default="", description="CSV path of the decile lift table.")
    fairness: dict[str, Any] = Field(
        default_factory=dict,
        description="FairnessReport.to_dict(), or fairness.not_assessable() when the spec declares no "
        "protected attribute.",
    )
    fairness_flags: list[str] = Field(default_factory=list)
    champion_same_rows: ChampionRowFacts | None = Field(
        default=None, description="The champion re-scored on these test rows; None when there was none."
    )


class ArtifactFacts(_Section):
    """The packaged, self-describing model folder."""

    path: str
    version: str
    weights_sha256: str
    code_version: str
    library_versions: dict[str, str]
    created_at: str


class RegistrationFacts(_Section):
    """The MLflow model version and the promotion verdict made when it was registered."""

    model_name: str
    version: int
    mlflow_run_id: str
    decision: PromotionDecision
    promoted: bool = False
    rechosen_from: int | None = Field(
        default=None,
        description="The earlier version of the same training run (same weights) whose policy this "
        "version re-chose; None for a version of newly trained weights.",
    )


class FederationFacts(_Section):
    """Provenance of a model fine-tuned by a consortium of lenders (risk_app.federated)."""

    lenders: list[str] = Field(description="Lenders whose updates the consortium admitted.")
    refused: dict[str, str] = Field(default_factory=dict, description="Lenders refused at join, and why.")
    rounds_planned: int
    rounds_completed: int = Field(description="Rounds whose aggregate became the global model.")
    rounds_skipped: list[str] = Field(default_factory=list, description="Each skipped round's sentence.")
    strategy: str = Field(description="fedavg or fedprox (with its mu).")
    fraction_fit: float
    local_epochs: int
    min_lenders: int
    secure_aggregation: bool
    epsilon: float | None = Field(
        default=None, description="ε spent (record-level DP: the largest lender's), None without DP."
    )
    delta: float | None = None
    noise_multiplier: float | None = None
    clipping_norm: float | None = Field(
        default=None, description="Bound on a lender's update (lender DP) or one example's gradient (record)."
    )
    privacy_level: str | None = Field(
        default=None,
        description="'lender' (central DP, noise added by the server) or 'record' (DP-SGD in each lender).",
    )
    lender_epsilon: dict[str, float] = Field(
        default_factory=dict, description="Record-level DP: each lender's ε over all its rounds."
    )
    template: str = Field(description="Signature of the trainable tensors that travelled.")
    bytes_per_round_per_lender: float | None = Field(
        default=None, description="Median bytes of one lender's update (without SecAgg+)."
    )
    lender_test_auc: dict[str, float] = Field(
        default_factory=dict, description="Each lender's ROC AUC of the final model on its own test split."
    )


class RunRecord(_Section):
    """One training run: each stage fills its section, in order."""

    run_id: str
    run_dir: str
    created_at: str = Field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    dataset: DatasetFacts
    planned_training: TrainConfig | None = Field(
        default=None, description="The training config, recorded before training starts (for --resume)."
    )
    planned_hybrid: HybridConfig | None = Field(
        default=None,
        description="The hybrid option the run was started with, recorded before training (for --resume).",
    )
    training: TrainingFacts | None = None
    hybrid: HybridFacts | None = Field(
        default=None,
        description="The LLM stacked with LightGBM (risk_app.hybrid), when the run asked for it.",
    )
    policy: PolicyFacts | None = None
    evaluation: EvaluationFacts | None = None
    artifact: ArtifactFacts | None = None
    registration: RegistrationFacts | None = None
    federation: FederationFacts | None = Field(
        default=None, description="Set when a consortium of lenders trained the model (federated)."
    )

    @property
    def method(self) -> str:
        return self.need("training").config.method

    @property
    def model_label(self) -> str:
        """How every report names the model: `llm:<method>`, `hybrid:<method>+<stacker>` when
        the LLM is stacked with LightGBM, or `tabular:lightgbm` when LightGBM alone is deployed
        (the CLI summary, the card, the Dagster metadata); `federated:<method>` when a consortium
        of lenders trained it."""
        if self.hybrid is not None and self.hybrid.config.tabular_only:
            return TABULAR_LABEL
        if self.hybrid is not None:
            return f"hybrid:{self.method}+{self.hybrid.config.stacker}"
        if self.federation is not None:
            return f"federated:{self.method}"
        return f"llm:{self.method}"

    def need(self, stage: str) -> Any:
        """A stage's section, or a clear error naming the stage that has not run yet."""
        section = getattr(self, stage)
        if section is None:
            raise RiskAppError(f"run {self.run_id}: the {stage} stage has not run yet")
        return section

    def save(self) -> Path:
        """Write the record next to the run's files, atomically."""
        path = Path(self.run_dir) / RECORD_FILE
        atomic_write_json(path, self.model_dump(mode="json"))
        return path

    @classmethod
    def load(cls, run_dir: str | Path) -> RunRecord:
        path = Path(run_dir) / RECORD_FILE
        if not path.is_file():
            raise RiskAppError(f"{path}: no run record (has the run started?)")
        return cls.model_validate_json(path.read_text(encoding="utf-8"))
