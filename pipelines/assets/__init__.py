"""All assets, by stage: data (ingest → prepare), model (train → register), scoring."""

from pipelines.assets.data import (
    augmented_training_examples,
    raw_applications,
    training_examples,
    validated_applications,
)
from pipelines.assets.model import champion_model, fine_tuned_model, model_evaluation, registered_model
from pipelines.assets.scoring import scored_applications, scoring_batch

ALL_ASSETS = [
    raw_applications,
    validated_applications,
    training_examples,
    augmented_training_examples,
    fine_tuned_model,
    model_evaluation,
    registered_model,
    champion_model,
    scoring_batch,
    scored_applications,
]
