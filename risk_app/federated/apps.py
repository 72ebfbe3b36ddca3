"""The consortium as a Flower App for the Deployment Engine: `server_app` and `client_app`.

A SuperLink runs `server_app` (the consortium's server, `server.run_consortium`) and each
lender's SuperNode runs `client_app` (`lender.Lender`) in their own processes. Everything they
need comes from Flower's contexts, set by the operator and by each lender, never from code:

* run config (the operator's `flwr run`, written by `deployment.write_app`): `consortium` (the
  `FederatedConfig` as JSON), `spec` (the consortium's spec, a built-in name or a file),
  `state-dir` (the server's checkpoint folder), `lenders` (how many to wait for);
* node config (each lender's `flower-supernode --node-config`): `lender-folder`, the lender's
  folder (`LenderSite`: its data file, spec and home).

The privacy mods (SecAgg+, clipping) follow the run's config, so one app serves every
consortium (`consortium_mods`).
"""

from __future__ import annotations

from pathlib import Path

from flwr.app import Context, Message
from flwr.client import Client, ClientApp
from flwr.clientapp.typing import ClientAppCallable
from flwr.server import ServerApp
from flwr.serverapp import Grid

from data_contracts.spec import load_spec
from risk_app.federated.config import FederatedConfig
from risk_app.federated.lender import Lender, LenderSite
from risk_app.federated.privacy import client_mods
from risk_app.federated.server import ServerPlan, run_consortium

KEY_CONSORTIUM = "consortium"
KEY_SPEC = "spec"
KEY_STATE_DIR = "state-dir"
KEY_LENDERS = "lenders"
KEY_LENDER_FOLDER = "lender-folder"


def run_config(context: Context) -> FederatedConfig:
    return FederatedConfig.model_validate_json(str(context.run_config[KEY_CONSORTIUM]))


def client_fn(context: Context) -> Client:
    site = LenderSite.open(str(context.node_config[KEY_LENDER_FOLDER]))
    return Lender(site, run_config(context)).to_client()


def consortium_mods(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """Flower's SecAgg+ / clipping mods, as the run's config asks, around the lender."""
    handler = call_next
    for mod in reversed(client_mods(run_config(context))):
        handler = lambda m, c, mod=mod, inner=handler: mod(m, c, inner)  # noqa: E731 - a chain
    return handler(msg, context)


client_app = ClientApp(client_fn=client_fn, mods=[consortium_mods])
server_app = ServerApp()


@server_app.main()
def main(grid: Grid, context: Context) -> None:
    state_dir = Path(str(context.run_config[KEY_STATE_DIR]))
    plan = ServerPlan(
        config=run_config(context),
        spec=load_spec(str(context.run_config[KEY_SPEC])),
        state_dir=state_dir,
        expected_lenders=int(context.run_config[KEY_LENDERS]),
        outcome_file=state_dir / "outcome.json",
    )
    run_consortium(grid, context, plan)
