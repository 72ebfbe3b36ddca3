"""Reports of the loop: the champion's model card with its latest backtest, and book summaries.

The champion's card is the `MODEL_CARD.md` packaged with its artifact, followed by the newest
vintage backtest recorded for that version (`risk.backtests`). The Dagster `backtest` asset shows
it in its metadata (`champion_model_card`), and `risk-app outcomes backtest` prints it.

    text = champion_card_with_backtest("german_credit")
"""

from __future__ import annotations

from pathlib import Path

from risk_app.errors import RiskAppError
from risk_app.outcomes.backtest import backtest_markdown, latest_backtest
from risk_app.registry.mlflow_registry import resolve_model


def champion_version(model_name: str) -> tuple[str, Path] | None:
    """(ledger model version `<name>/<version>`, artifact folder) of the champion, or None."""
    try:
        resolved = resolve_model("champion", name=model_name)
    except RiskAppError:
        return None
    return f"{model_name}/{resolved.version}", Path(resolved.local_artifact_dir)


def champion_card_with_backtest(dataset: str, model_name: str | None = None) -> str | None:
    """The champion's model card followed by its latest backtest (None without a champion)."""
    found = champion_version(model_name or dataset)
    if found is None:
        return None
    version, folder = found
    card_path = folder / "MODEL_CARD.md"
    card = card_path.read_text(encoding="utf-8") if card_path.is_file() else f"# Model {version}\n"
    latest = latest_backtest(dataset, version)
    section = (
        backtest_markdown(latest)
        if latest is not None
        else f"## Backtest\n\nNo vintage scored by {version} has known outcomes yet.\n"
    )
    return f"{card.rstrip()}\n\n{section}"


__all__ = ["champion_card_with_backtest", "champion_version"]
