"""The embedded consortium: N virtual lenders cut from one data set, run by Flower's Simulation Engine.

`simulate(...)` validates the data set's file once, cuts the valid rows into N lenders
(`partition.py`), gives each lender a folder of its own (its rows as Parquet, its spec, its
`RISK_APP_HOME`: `LenderSite`), and runs the consortium with `flwr.simulation.run_simulation`:
the ServerApp runs `server.run_consortium` in this process, the ClientApps run `lender.Lender` in
Ray actors, one core each by default (several lenders train side by side). Each lender reads
only its own folder.

The Simulation Engine needs Ray (`flwr[simulation]`). On a 2-core machine Ray's start-up and
message passing cost seconds per round that a real consortium would not notice; measured in
docs/federated.md.

    result = simulate("german_credit", lenders=5, partition=Partition.parse("dirichlet:0.5"),
                      config=FederatedConfig(rounds=3), workdir="var/federated/demo")
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from flwr.app import Context
from flwr.client import Client, ClientApp
from flwr.clientapp.typing import Mod
from flwr.server import ServerApp
from flwr.serverapp import Grid
from flwr.simulation import run_simulation

from data_contracts.spec import DatasetSpec, load_spec
from risk_app.errors import RiskAppError
from risk_app.federated.config import FederatedConfig, Partition
from risk_app.federated.lender import Lender, LenderSite, check_federable
from risk_app.federated.partition import describe_partition, partition_applications
from risk_app.federated.privacy import client_mods
from risk_app.federated.server import ConsortiumOutcome, RoundReport, ServerPlan, run_consortium
from risk_app.workflow import ingest_and_validate

DATA_FILE = "applications.parquet"


@dataclass
class SimulationResult:
    """The consortium's outcome plus where everything lies."""

    outcome: ConsortiumOutcome
    workdir: Path
    sites: list[LenderSite]
    partition: list[dict[str, float]]
    n_in: int
    n_quarantined: int


def write_lender_sites(
    parts: Sequence[pd.DataFrame], spec: DatasetSpec, workdir: Path, split_seed: int = 42
) -> list[LenderSite]:
    """One folder per lender: its rows (the spec's own columns, as in a lender's file), its site file."""
    sites = []
    columns = list(spec.columns)
    for k, part in enumerate(parts, start=1):
        folder = workdir / "lenders" / f"lender-{k}"
        (folder / "home").mkdir(parents=True, exist_ok=True)
        data_file = folder / DATA_FILE
        part[[c for c in columns if c in part.columns]].to_parquet(data_file, index=False)
        spec_ref = str(spec.spec_path) if spec.spec_path is not None else spec.name
        site = LenderSite(name=f"lender-{k}", data_file=data_file, spec=spec_ref, home=folder / "home",
                          split_seed=split_seed)  # fmt: skip
        site.save(folder)
        sites.append(site)
    return sites


def make_client_app(
    sites: Sequence[LenderSite], config: FederatedConfig, extra_mods: Sequence[Mod] = ()
) -> ClientApp:
    """The ClientApp of the simulation: virtual node k is lender k (`partition-id`)."""
    site_list = list(sites)

    def client_fn(context: Context) -> Client:
        return Lender(site_list[int(context.node_config["partition-id"])], config).to_client()

    # Extra mods (tests record or tamper with messages) sit outermost: they see what leaves.
    return ClientApp(client_fn=client_fn, mods=[*extra_mods, *client_mods(config)])


def make_server_app(plan: ServerPlan, sink: list[ConsortiumOutcome]) -> ServerApp:
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        sink.append(run_consortium(grid, context, plan))

    return app


def backend_config(lenders: int, cpus: int, cpus_per_lender: int) -> dict:
    """Ray's settings: `cpus` cores for the engine, `cpus_per_lender` per virtual lender, no
    dashboard. (Flower hands this process's sys.path to Ray's workers itself.)"""
    return {
        "client_resources": {"num_cpus": cpus_per_lender, "num_gpus": 0.0},
        "init_args": {"num_cpus": cpus, "include_dashboard": False},
    }


def simulate(
    dataset: str | DatasetSpec,
    *,
    lenders: int,
    partition: Partition,
    config: FederatedConfig,
    workdir: str | Path,
    data_file: str | Path | None = None,
    on_round: Callable[[RoundReport], None] | None = None,
    extra_mods: Sequence[Mod] = (),
    cpus: int | None = None,
    cpus_per_lender: int | None = None,
) -> SimulationResult:
    """Cut `dataset` into `lenders` lenders and run the consortium in Flower's Simulation Engine."""
    check_federable(config)
    spec = load_spec(dataset)
    source = Path(data_file) if data_file is not None else spec.data_path
    if source is None:
        raise RiskAppError(f"data set {spec.name} has no bundled file; pass data_file")
    validation = ingest_and_validate(source, spec=spec)
    parts = partition_applications(validation.valid, spec, lenders, partition, seed=config.seed)
    workdir = Path(workdir)
    sites = write_lender_sites(parts, spec, workdir, split_seed=config.seed)
    outcome = run_sites(sites, spec, config, workdir, on_round=on_round, extra_mods=extra_mods, cpus=cpus,
                        cpus_per_lender=cpus_per_lender)  # fmt: skip
    return SimulationResult(outcome, workdir, sites, describe_partition(parts), validation.n_in,
                            validation.n_quarantined)  # fmt: skip


def run_sites(
    sites: Sequence[LenderSite],
    spec: DatasetSpec,
    config: FederatedConfig,
    workdir: Path,
    *,
    on_round: Callable[[RoundReport], None] | None = None,
    extra_mods: Sequence[Mod] = (),
    cpus: int | None = None,
    cpus_per_lender: int | None = None,
) -> ConsortiumOutcome:
    """Run the consortium of these lender folders in the Simulation Engine (the server's state and
    outcome under `workdir`: run it again with the same folder and config to resume)."""
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")  # Flower's telemetry would call home
    cpus = cpus or max(1, os.cpu_count() or 1)
    # One core per virtual lender, lenders side by side: torch's two threads in one lender were
    # 10-25x slower than one on a busy 2-core machine (OpenMP threads waiting on each other;
    # docs/federated.md), and Ray sets each actor's thread count from its CPUs.
    per_lender = cpus_per_lender or 1
    sink: list[ConsortiumOutcome] = []
    plan = ServerPlan(config=config, spec=spec, state_dir=workdir / "server", expected_lenders=len(sites),
                      on_round=on_round, outcome_file=workdir / "outcome.json")  # fmt: skip
    run_simulation(
        server_app=make_server_app(plan, sink),
        client_app=make_client_app(sites, config, extra_mods),
        num_supernodes=len(sites),
        backend_config=backend_config(len(sites), cpus, per_lender),
    )
    if not sink:
        raise RiskAppError(f"the federated simulation in {workdir} ended without an outcome; see the log")
    return sink[0]
