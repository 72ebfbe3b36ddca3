"""Champion aliases moved outside risk_app: compare each model's `champion` with the audit log.

Every champion move made through risk_app (`promote_if_better`, `set_champion`,
`rollback_champion`, a reconciled interrupted move) writes an audit line first. MLflow's own UI
("Promote model", the alias pencil) moves or deletes the alias with no line. This module finds
such moves: for each registered model, the version the last audited move set against the
version `champion` points at now.

    from risk_app.registry.alias_audit import unaudited_alias_moves, record_unaudited_move
    for state in unaudited_alias_moves():
        print(state.sentence())      # "champion of german_credit is version 2, but the audit log ..."
        record_unaudited_move(state.model_name)  # one audit line, so it is reported once

The Dagster sensor `champion_alias_watch` runs this every few minutes and turns each move into
one red run (pipelines/sensors.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from risk_app.registry import mlflow_registry as reg
from risk_app.registry.audit import append_audit_record, read_audit_log
from risk_app.registry.mlflow_registry import registry_lock
from risk_app.registry.reconcile import ALIAS_MOVES

UNAUDITED_MOVE = "unaudited_alias_move"
DETECTED_ACTOR = "detected outside risk-app"
# Lines that say where the champion alias is after them: risk_app's own moves, a reconciled
# interrupted move (it names its target), and a detected outside move (recorded, so flagged once).
EXPLAINING_ACTIONS = frozenset({*ALIAS_MOVES, "reconcile", UNAUDITED_MOVE})


@dataclass(frozen=True)
class ChampionAliasState:
    """Where `champion` of one registered model points, and where the audit log says it should."""

    model_name: str
    champion: str | None  # version the alias points at now; None when there is no champion
    audited: str | None  # version the last audited move set; None when nothing was ever audited
    audited_action: str | None = None
    audited_at: str | None = None
    in_flight: bool = False  # an audited move was announced and not finished (reconcile completes it)

    @property
    def unaudited(self) -> bool:
        return self.champion != self.audited and not self.in_flight

    def sentence(self) -> str:
        """Plain words for the sensor's skip reason or the failing run."""
        now = f"version {self.champion}" if self.champion else "no version (the alias was removed)"
        if not self.unaudited:
            if self.champion is None:
                return f"{self.model_name} has no champion, and none was ever audited"
            if self.in_flight:
                return (
                    f"champion of {self.model_name} is {now}; the audited move to version "
                    f"{self.audited} is not finished yet (risk-app reconcile completes it)"
                )
            if self.audited_action == UNAUDITED_MOVE:
                return (
                    f"champion of {self.model_name} is {now}, moved outside risk-app and already "
                    f"recorded as such at {self.audited_at} (promote it through risk-app to give a reason)"
                )
            return f"champion of {self.model_name} is {now}, as audited"
        was = (
            f"version {self.audited} ({self.audited_action} at {self.audited_at})"
            if self.audited
            else "no champion"
            if self.audited_action
            else "nothing (no champion move was ever audited)"
        )
        return (
            f"champion of {self.model_name} is {now}, but the audit log's last move set {was}: "
            "the alias was moved outside risk-app, for example in MLflow's UI"
        )


def _registered_names(client: Any) -> list[str]:
    return sorted(m.name for m in client.search_registered_models())


def _state(client: Any, name: str, records: list[dict[str, Any]]) -> ChampionAliasState:
    champion = reg._alias_version(client, name, reg.CHAMPION)
    current = str(champion.version) if champion is not None else None
    moves = [
        r
        for r in records
        if r.get("model_name") == name
        and r.get("action") in EXPLAINING_ACTIONS
        and (r.get("action") != "reconcile" or r.get("to_version") is not None)
    ]
    if not moves:
        return ChampionAliasState(name, current, None)
    last = moves[-1]
    target = None if last.get("to_version") is None else str(last["to_version"])
    # The audit line is written before the alias moves: a champion still at the line's
    # `from_version`, with no done-mark on the target, is a move in flight (or killed), not a UI move.
    in_flight = False
    if last["action"] in ALIAS_MOVES and current != target and current == last.get("from_version"):
        try:
            done = (reg._get_version(client, name, target).tags or {}).get(reg.MOVE_TAG)
        except reg.ModelNotFoundError:
            done = None
        in_flight = done != last.get("timestamp")
    return ChampionAliasState(name, current, target, last["action"], last.get("timestamp"), in_flight)


def champion_alias_states(model_name: str | None = None) -> list[ChampionAliasState]:
    """The champion of `model_name` (default: every registered model) against the audit log."""
    client = reg._client()
    names = [model_name] if model_name else _registered_names(client)
    records = read_audit_log()
    return [_state(client, name, records) for name in names]


def unaudited_alias_moves(model_name: str | None = None) -> list[ChampionAliasState]:
    """Models whose `champion` alias points somewhere the audit log does not explain."""
    return [state for state in champion_alias_states(model_name) if state.unaudited]


def record_unaudited_move(model_name: str, *, detected_by: str = "") -> ChampionAliasState | None:
    """If `model_name`'s champion moved outside risk-app, append the audit line that records it.

    Looked at again under the registry lock, so a move risk-app makes meanwhile is not mistaken
    for one. Returns the state recorded, or None when the audit log already explains the alias.
    Later checks take the recorded line as the explanation: each outside move is reported once.
    """
    with registry_lock(model_name):
        found = unaudited_alias_moves(model_name)
        if not found:
            return None
        state = found[0]
        by = f" by {detected_by}" if detected_by else ""
        append_audit_record(
            UNAUDITED_MOVE,
            model_name,
            from_version=state.audited,
            to_version=state.champion,
            reason=f"detected{by}: {state.sentence()}",
            actor=DETECTED_ACTOR,
        )
        return state


__all__ = [
    "ChampionAliasState",
    "champion_alias_states",
    "record_unaudited_move",
    "unaudited_alias_moves",
]
