"""Real deployment on loopback: a SuperLink and two SuperNodes, each its own process and home."""

from __future__ import annotations

import socket

import pytest

from risk_app.federated.deployment import LocalConsortium, superlink_argv, supernode_argv
from tests.federated.conftest import quick_config

pytestmark = pytest.mark.slow


def _free_port_block(size: int) -> int:
    """A base port with `size` free ports after it on 127.0.0.1 (checked, not reserved)."""
    for base in range(19091, 29091, 50):
        try:
            for port in range(base, base + size):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise RuntimeError("no free loopback ports")


def test_commands_for_real_hosts_use_tls_and_node_auth(tmp_path) -> None:
    from risk_app.federated.deployment import Tls

    tls = Tls(tmp_path / "ca.crt", tmp_path / "server.pem", tmp_path / "server.key")
    link = superlink_argv("0.0.0.0", 9091, tmp_path / "state.db", tls, authenticate_nodes=True)
    assert "--insecure" not in link and "--enable-supernode-auth" in link
    assert link[link.index("--ssl-certfile") + 1] == str(tmp_path / "server.pem")
    node = supernode_argv("link.example:9091", tmp_path / "lender-1", 9095, tmp_path / "ca.crt",
                          (tmp_path / "node.key", tmp_path / "node.pub"))  # fmt: skip
    assert "--insecure" not in node and node[node.index("--root-certificates") + 1] == str(
        tmp_path / "ca.crt"
    )
    assert f"lender-folder='{tmp_path / 'lender-1'}'" in node


def test_superlink_and_supernodes_as_separate_processes(tiny_qwen2, make_sites, tmp_path) -> None:
    sites = make_sites(2, 150)
    folders = [(site.data_file.parent, site) for site in sites]
    config = quick_config(rounds=1, min_lenders=2)
    with LocalConsortium(tmp_path / "deploy", folders, config, spec="german_credit",
                         base_port=_free_port_block(4)) as consortium:  # fmt: skip
        outcome = consortium.run(timeout=900)
        processes = list(consortium.processes)
    assert all(p.poll() is not None for p in processes)  # every process ended
    assert outcome.lenders == ["lender-1", "lender-2"] and outcome.completed_rounds == 1
    (r1,) = outcome.rounds
    assert r1.returned == ["lender-1", "lender-2"] and set(r1.bytes_up) == {"lender-1", "lender-2"}
    assert set(outcome.test_auc) == {"lender-1", "lender-2"}
    # Each lender's SuperNode worked in its own home: its base model and caches are there.
    for site in sites:
        assert (site.home / "models" / "tiny-qwen2").is_dir()
