"""Helpers that turn risk_app results into Dagster metadata: tables, images, user errors."""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import dagster as dg
import pandas as pd

from risk_app.errors import RiskAppError

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(fn: F) -> F:
    """Show a RiskAppError as one clear failure message instead of a raw traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RiskAppError as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from None

    return wrapper  # type: ignore[return-value]


def png(path: str | Path, title: str = "") -> dg.MetadataValue:
    """An image embedded in markdown, so it shows in the asset's materialization page."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return dg.MetadataValue.md(
        f"{f'**{title}**' if title else ''}\n\n![{title}](data:image/png;base64,{data})"
    )


def table(df: pd.DataFrame, max_rows: int = 20) -> dg.MetadataValue:
    # Empty cells (no reason codes for an approval) read better blank than "nan".
    return dg.MetadataValue.md(df.head(max_rows).astype(object).fillna("").to_markdown(index=False))


def scalars(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Numbers and short strings only: Dagster shows them as typed metadata and plots numbers."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, (bool, str)):
            out[f"{prefix}{key}"] = value
        elif isinstance(value, (int, float)):
            out[f"{prefix}{key}"] = (
                dg.MetadataValue.float(float(value)) if isinstance(value, float) else value
            )
    return out


def validation_counts(result: Any) -> dict[str, Any]:
    """Rows in, valid and quarantined (in = valid + quarantined) and the quarantine rate."""
    return {
        "rows_in": result.n_in,
        "rows_valid": result.n_valid,
        "rows_quarantined": result.n_quarantined,
        "quarantine_rate": dg.MetadataValue.float(result.n_quarantined / max(result.n_in, 1)),
    }
