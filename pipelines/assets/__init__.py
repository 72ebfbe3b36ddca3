"""All assets, by stage: data (ingest → prepare), model (train → register), scoring, outcomes,
analyst overrides."""

from pipelines.assets.data import (
    augmented_training_examples,
    dataset_spec,
    raw_applications,
    training_examples,
    validated_applications,
)
from pipelines.assets.model import (
    champion_model,
    credit_policy,
    fine_tuned_model,
    model_comparison,
    model_evaluation,
    packaged_model,
    registered_model,
)
from pipelines.assets.outcomes import OUTCOME_ASSETS
from pipelines.assets.overrides import OVERRIDE_ASSETS
from pipelines.assets.scoring import scored_applications, scoring_batch

ALL_ASSETS = [
    dataset_spec,
    raw_applications,
    validated_applications,
    training_examples,
    augmented_training_examples,
    fine_tuned_model,
    credit_policy,
    model_evaluation,
    model_comparison,
    packaged_model,
    registered_model,
    champion_model,
    scoring_batch,
    scored_applications,
    *OUTCOME_ASSETS,
    *OVERRIDE_ASSETS,
]
