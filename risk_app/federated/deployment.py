"""Real deployment: a SuperLink for the consortium, a SuperNode per lender, each its own process.

Flower's Deployment Engine (1.42: every API over HTTP on one port per process) runs the app in
`apps.py`: the SuperLink starts the ServerApp (`run_consortium`) in a subprocess, each lender's
SuperNode starts its ClientApp (`Lender`) with the lender's folder as node config. This module
writes what the operator runs and starts the processes:

* `write_app(folder, ...)` — the Flower App (`pyproject.toml`: components, run config with the
  consortium's `FederatedConfig`, spec, state folder, lender count), what `flwr run` submits;
* `superlink_argv`, `supernode_argv`, `write_cli_config` — the commands for real hosts: TLS
  (`--ssl-certfile/--ssl-keyfile` on the SuperLink, `--root-certificates` on SuperNodes and the
  CLI) and authenticated nodes (`--enable-supernode-auth`, each SuperNode's key pair) are
  arguments, `insecure=True` only for loopback;
* `LocalConsortium` — everything on this machine over loopback (tests, demos): each process gets
  its own `RISK_APP_HOME` and `FLWR_HOME`, runtime dependency installation off (no network), and
  the processes are ended by their ids when done.

    with LocalConsortium(workdir, sites, config, spec="german_credit", base_port=19091) as c:
        outcome = c.run(timeout=900)
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import tomli_w

from risk_app.atomic import atomic_write_text
from risk_app.errors import RiskAppError
from risk_app.federated.apps import KEY_CONSORTIUM, KEY_LENDER_FOLDER, KEY_LENDERS, KEY_SPEC, KEY_STATE_DIR
from risk_app.federated.config import FederatedConfig
from risk_app.federated.lender import LenderSite
from risk_app.federated.server import ConsortiumOutcome

CONNECTION = "consortium"
OUTCOME_FILE = "outcome.json"


@dataclass(frozen=True)
class Tls:
    """Certificate files for a deployment over the network (None on loopback)."""

    ca_certfile: Path
    certfile: Path
    keyfile: Path


def write_app(folder: Path, config: FederatedConfig, spec: str, state_dir: Path, lenders: int) -> Path:
    """The Flower App `flwr run` submits: this consortium's components and run config."""
    project = {
        "build-system": {"requires": ["hatchling"], "build-backend": "hatchling.build"},
        "project": {"name": "risk-app-consortium", "version": "1.0.0", "license": "Apache-2.0",
                    "description": "A risk_app consortium (risk_app.federated.apps)", "dependencies": []},
        "tool": {"flwr": {"app": {
            "publisher": "risk-app",
            "components": {"serverapp": "risk_app.federated.apps:server_app",
                           "clientapp": "risk_app.federated.apps:client_app"},
            "config": {KEY_CONSORTIUM: config.model_dump_json(), KEY_SPEC: spec,
                       KEY_STATE_DIR: str(state_dir), KEY_LENDERS: lenders},
        }}},
    }  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "pyproject.toml", tomli_w.dumps(project))
    return folder


def write_cli_config(flwr_home: Path, address: str, tls: Tls | None) -> Path:
    """The operator's `flwr` connection to the SuperLink (`$FLWR_HOME/config.toml`)."""
    connection: dict[str, object] = {"address": address}
    if tls is None:
        connection["insecure"] = True
    else:
        connection["root-certificates"] = str(tls.ca_certfile)
    text = tomli_w.dumps({"superlink": {"default": CONNECTION, CONNECTION: connection}})
    flwr_home.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(flwr_home / "config.toml", text)


def _bin(name: str) -> str:
    """A Flower console script of this interpreter's environment."""
    return str(Path(sys.executable).with_name(name))


def superlink_argv(
    host: str, port: int, database: Path, tls: Tls | None = None, authenticate_nodes: bool = False
) -> list[str]:
    argv = [_bin("flower-superlink"), "--host", host, "--port", str(port), "--database", str(database),
            "--disable-runtime-dependency-installation"]  # fmt: skip
    argv += ["--insecure"] if tls is None else [
        "--ssl-ca-certfile", str(tls.ca_certfile), "--ssl-certfile", str(tls.certfile),
        "--ssl-keyfile", str(tls.keyfile),
    ]  # fmt: skip
    return argv + (["--enable-supernode-auth"] if authenticate_nodes else [])


def supernode_argv(
    superlink: str,
    lender_folder: Path,
    port: int,
    root_certificates: Path | None = None,
    auth_keys: tuple[Path, Path] | None = None,
) -> list[str]:
    # The node config value is TOML: a quoted string (the folder path cannot hold a quote:
    # LenderSite folders are created by risk_app, and this is an argv, never a shell line).
    if "'" in str(lender_folder):
        raise RiskAppError(f"{lender_folder}: a lender folder path may not contain a single quote")
    argv = [_bin("flower-supernode"), "--superlink", superlink, "--port", str(port),
            "--node-config", f"{KEY_LENDER_FOLDER}='{lender_folder}'"]  # fmt: skip
    argv += ["--insecure"] if root_certificates is None else ["--root-certificates", str(root_certificates)]
    if auth_keys is not None:
        argv += ["--auth-supernode-private-key", str(auth_keys[0]),
                 "--auth-supernode-public-key", str(auth_keys[1])]  # fmt: skip
    return argv


class LocalConsortium:
    """A SuperLink and one SuperNode per lender as separate processes on loopback."""

    def __init__(
        self,
        workdir: Path,
        sites: Sequence[tuple[Path, LenderSite]],
        config: FederatedConfig,
        *,
        spec: str,
        base_port: int = 19091,
    ) -> None:
        self.workdir = Path(workdir)
        self.sites = list(sites)
        self.config = config
        self.spec = spec
        self.base_port = base_port
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.base_port}"

    def _env(self, risk_home: Path, flwr_home: Path) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            RISK_APP_HOME=str(risk_home), FLWR_HOME=str(flwr_home), FLWR_TELEMETRY_ENABLED="0",
            # Flower starts its helper processes by name (flower-superexec, flwr-serverapp ...).
            PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
            PYTHONPATH=os.pathsep.join(p for p in sys.path if p),
            # Every process on one machine: one torch thread each, no oversubscription (two
            # threads per lender were 10-25x slower on a busy 2-core machine).
            OMP_NUM_THREADS="1",
        )  # fmt: skip
        return env

    def _start(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "wb") as handle:
            # A session of its own: a SuperNode's helper (flower-superexec) outlives a SIGTERM to
            # the SuperNode alone, so the whole group is ended at exit.
            process = subprocess.Popen(argv, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                       start_new_session=True)  # fmt: skip
        self.processes.append(process)

    def __enter__(self) -> LocalConsortium:
        link = self.workdir / "superlink"
        self._start(superlink_argv("127.0.0.1", self.base_port, link / "state.db"),
                    self._env(link / "home", link / "flwr"), link / "superlink.log")  # fmt: skip
        for k, (folder, site) in enumerate(self.sites, start=1):
            self._start(supernode_argv(self.address, folder, self.base_port + k),
                        self._env(site.home, folder / "flwr"), folder / "supernode.log")  # fmt: skip
        return self

    def run(self, timeout: float = 900.0) -> ConsortiumOutcome:
        """Submit the consortium with `flwr run` and wait for the server's outcome."""
        state_dir = self.workdir / "server"
        outcome_file = state_dir / OUTCOME_FILE
        app = write_app(self.workdir / "app", self.config, self.spec, state_dir, len(self.sites))
        cli_home = self.workdir / "operator"
        write_cli_config(cli_home, self.address, None)
        env = self._env(cli_home / "home", cli_home)
        deadline = time.monotonic() + timeout
        while True:  # the SuperLink may still be starting
            done = subprocess.run([_bin("flwr"), "run", str(app), CONNECTION], env=env, capture_output=True)
            if done.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise RiskAppError(
                    f"flwr run failed: {done.stdout.decode()[-500:]} {done.stderr.decode()[-500:]}"
                )
            time.sleep(2)
        while not outcome_file.is_file():
            if time.monotonic() > deadline:
                raise RiskAppError(
                    f"the consortium produced no outcome in {timeout:.0f} s; see {self.workdir}"
                )
            if any(p.poll() is not None for p in self.processes):
                raise RiskAppError(
                    f"a SuperLink or SuperNode process ended early; see the logs in {self.workdir}"
                )
            time.sleep(2)
        return ConsortiumOutcome.model_validate_json(outcome_file.read_text())

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for process in reversed(self.processes):
            _signal_group(process, signal.SIGTERM)
        for process in reversed(self.processes):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
            _signal_group(process, signal.SIGKILL)  # helpers left in the group


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    """Signal the process group this consortium started (its id is the process's own)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
