"""The consortium in Flower's Simulation Engine (Ray): faults, resume, SecAgg+ with DP.

Slow-ish (Ray starts for each run); everything else about the consortium is tested in process.
Faults are injected from outside the product, with Flower mods around the lenders' ClientApp:
one lender sends an out-of-shape update, others drop out (raise) in later rounds.
"""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import Context, Message
from flwr.app.message_type import MessageType
from flwr.common import ndarrays_to_parameters, parameters_to_ndarrays
from flwr.compat.common import recorddict_compat as compat
from safetensors.numpy import load_file

from data_contracts.spec import load_spec
from risk_app.federated.privacy import epsilon_spent
from risk_app.federated.server import RoundReport
from risk_app.federated.simulation import run_sites
from tests.federated.conftest import quick_config

pytestmark = [pytest.mark.slow, pytest.mark.ray]  # ray: one Ray cluster at a time (tests/conftest.py)

# One Ray actor runs every virtual lender in turn. Each actor process imports torch, transformers
# and risk_app before its first lender (about 10 CPU-seconds); the lenders here train 32 rows for
# one epoch, so a second actor only doubled that import. Ray still starts for each run.
CPUS = 1


def _round_of(msg: Message) -> int:
    return int(compat.recorddict_to_fitins(msg.content, True).config.get("server_round", 0))


def faulty_lenders(msg: Message, ctx: Context, call_next):
    """Round 1: lender-3 sends an out-of-shape update, lender-4 drops out (raises); round 2:
    lenders 2, 3 and 4 drop out."""
    lender = int(ctx.node_config["partition-id"]) + 1
    if msg.metadata.message_type != MessageType.TRAIN:
        return call_next(msg, ctx)
    server_round = _round_of(msg)
    if (lender == 4 and server_round == 1) or (lender in (2, 3, 4) and server_round == 2):
        raise RuntimeError(f"lender-{lender} went offline")
    reply = call_next(msg, ctx)
    if lender == 3 and server_round == 1:
        res = compat.recorddict_to_fitres(reply.content, False)
        arrays = parameters_to_ndarrays(res.parameters)
        res.parameters = ndarrays_to_parameters([np.zeros((3, 3), np.float32), *arrays[1:]])
        reply = Message(compat.fitres_to_recorddict(res, False), reply_to=msg)
    return reply


class Killed(Exception):
    """The server process dying after a round."""


def test_faults_skip_refuse_and_resume(tiny_qwen2, make_sites, tmp_path) -> None:
    sites = make_sites(5, 80)
    spec = load_spec("german_credit")
    # lender-5 holds a spec whose category text differs from the consortium's.
    column = spec.categorical_columns[0]
    first = next(iter(spec.columns[column].categories))
    other = spec.model_copy(deep=True)
    other.columns[column].categories = {**other.columns[column].categories, first: "overdrawn"}
    (tmp_path / "other-spec.yaml").write_text(other.to_yaml())
    sites[4] = sites[4].model_copy(update={"spec": str(tmp_path / "other-spec.yaml")})
    config = quick_config(rounds=2, min_lenders=2)
    workdir = tmp_path / "server-run"

    def die_after_round_1(report: RoundReport) -> None:
        if report.server_round == 1:
            raise Killed("server killed after round 1")

    with pytest.raises(Exception, match="Ending simulation|server killed"):
        run_sites(sites, spec, config, workdir, on_round=die_after_round_1, extra_mods=[faulty_lenders],
                  cpus=CPUS)  # fmt: skip
    after_one = load_file(str(workdir / "server" / "checkpoint" / "global.safetensors"))

    ran: list[int] = []
    outcome = run_sites(sites, spec, config, workdir, extra_mods=[faulty_lenders], cpus=CPUS,
                        on_round=lambda report: ran.append(report.server_round))  # fmt: skip
    assert ran == [2]  # the restarted server resumed after round 1, it did not train round 1 again
    r1, r2 = outcome.rounds
    assert list(outcome.refused.values()) == [
        "lender-5: the lender's data set spec differs from the consortium's: "
        f"column {column!r} reads category {first!r} as 'overdrawn', the consortium's as "
        f"{spec.columns[column].categories[first]!r}"
    ]
    assert outcome.lenders == ["lender-1", "lender-2", "lender-3", "lender-4"]
    # Round 1 (in the server that was killed after it): one update refused, one lender offline,
    # the round aggregated from the two others.
    assert r1.status == "aggregated" and r1.returned == ["lender-1", "lender-2"] and r1.failed == ["lender-4"]
    assert list(r1.rejected) == ["lender-3"] and "has shape (3, 3)" in r1.rejected["lender-3"]
    # Round 2 (in the restarted server): three offline, one update is below the minimum.
    assert (
        r2.status == "skipped"
        and r2.failed == ["lender-2", "lender-3", "lender-4"]
        and r2.reason
        == (
            "round 2 skipped: 1 lender(s) returned a usable update, the consortium needs at least 2 "
            "(3 dropped out, 0 refused)"
        )
    )
    assert outcome.completed_rounds == 1
    # The skipped round changed nothing: the final weights are those saved after round 1.
    final = load_file(outcome.weights_file)
    assert all(np.array_equal(final[k], after_one[k]) for k in after_one)
    assert set(outcome.test_auc) == {"lender-1", "lender-2", "lender-3", "lender-4"}


def test_secure_aggregation_with_differential_privacy(tiny_qwen2, make_sites, tmp_path) -> None:
    sites = make_sites(3, 100)
    config = quick_config(
        rounds=1,
        min_lenders=3,
        secure_aggregation={"enabled": True, "num_shares": 3, "reconstruction_threshold": 2},
        privacy={"enabled": True, "clipping_norm": 0.5, "noise_multiplier": 1.0},
    )
    outcome = run_sites(sites, load_spec("german_credit"), config, tmp_path / "secagg", cpus=CPUS)
    (r1,) = outcome.rounds
    assert r1.status == "aggregated" and r1.returned == ["lender-1", "lender-2", "lender-3"]
    assert outcome.epsilon == pytest.approx(epsilon_spent(1.0, 1.0, 1, 1e-5))
    assert set(outcome.test_auc) == {"lender-1", "lender-2", "lender-3"}
