"""Cutting one data set into virtual lenders: every row once, skewed as asked, refusals in one sentence."""

from __future__ import annotations

import numpy as np
import pytest

from data_contracts.spec import load_spec
from risk_app.errors import ConfigError
from risk_app.federated.config import FederatedConfig, Partition
from risk_app.federated.partition import partition_applications
from risk_app.paths import DEFAULT_DATASET
from risk_app.workflow import ingest_and_validate


@pytest.fixture(scope="module")
def valid():
    return ingest_and_validate(DEFAULT_DATASET, spec="german_credit").valid


def test_dirichlet_keeps_every_row_once_and_skews_default_rates(valid) -> None:
    spec = load_spec("german_credit")
    parts = partition_applications(valid, spec, 5, Partition.parse("dirichlet:0.3"), seed=1)
    ids = np.concatenate([p["application_id"].to_numpy() for p in parts])
    assert len(ids) == len(valid) and len(set(ids)) == len(valid)
    rates = [p["default"].mean() for p in parts]
    # alpha 0.3 gives lenders clearly different portfolios; alpha 1000 nearly identical ones.
    even = partition_applications(valid, spec, 5, Partition.parse("dirichlet:1000"), seed=1)
    assert np.std(rates) > 3 * np.std([p["default"].mean() for p in even])
    assert all(p["default"].sum() >= 4 and (1 - p["default"]).sum() >= 4 for p in parts)


def test_column_split_gives_each_value_to_one_lender(valid) -> None:
    spec = load_spec("german_credit")
    column = spec.categorical_columns[3]  # a category column named by the spec, not by this test
    parts = partition_applications(valid, spec, 3, Partition.parse(column))
    assert sum(len(p) for p in parts) == len(valid)
    owners = [set(p[column].astype(str)) for p in parts]
    for a in range(3):
        for b in range(a + 1, 3):
            assert not owners[a] & owners[b]


def test_refusals_name_the_problem(valid) -> None:
    spec = load_spec("german_credit")
    with pytest.raises(ConfigError, match="no such column"):
        partition_applications(valid, spec, 3, Partition.parse("no_such_column"))
    with pytest.raises(ConfigError, match="ALPHA must be > 0"):
        Partition.parse("dirichlet:0")
    two_valued = next(c for c in spec.categorical_columns if valid[c].nunique() == 2)
    with pytest.raises(ConfigError, match="2 distinct values, fewer than the 5 lenders"):
        partition_applications(valid, spec, 5, Partition.parse(two_valued))
    with pytest.raises(ConfigError, match=r"lender \d gets \d+ rows"):
        partition_applications(valid.head(60), spec, 4, Partition.parse("dirichlet:0.5"))


def test_config_refuses_unknown_keys_listing_the_allowed_ones() -> None:
    with pytest.raises(ConfigError, match="unknown key 'roundz'.*Allowed keys: rounds"):
        FederatedConfig.from_dict({"roundz": 3})
    with pytest.raises(ConfigError, match="'strategy'"):
        FederatedConfig.from_dict({"strategy": "fedsgd"})
