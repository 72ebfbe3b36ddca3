"""Fairness of approve/decline decisions across protected groups (four-fifths rule).

Approval means P(default) < threshold. For each grouping (age band, sex, foreign worker, or any
column of the frame) and each of its values, the report gives n, approval and decline rates,
the adverse impact ratio (AIR = group approval rate / most-favoured group's approval rate) and
the decline-rate difference against a reference value. A group with AIR < 0.8 is flagged: that
is the four-fifths rule regulators use as a first screen for disparate impact.

The comparison group (the denominator of every AIR of a grouping) is the most-favoured value
among those with at least `min_group_size` applicants (30 by default): a group of one applicant
who happened to be approved would otherwise make every large group look disfavoured. Only when
no value of a grouping has that many applicants is the most-favoured of all values used, and
the notes say so. Values are shown as the spec's category texts ("married", not "1").

Each AIR comes with a 95 % interval by the Katz log method for a ratio of two independent
proportions: log(AIR) +- 1.96 * sqrt((1 - p_g)/a_g + (1 - p_f)/a_f), with p the approval rates and
a the approval counts of the group and of the most-favoured group (0.5 added to every cell of the
2x2 table when a count is 0, so an all-declined group still gets an interval). Why Katz rather
than a bootstrap: it is closed-form and deterministic (no seed, no resampling in a pipeline step),
it is the standard interval for a risk ratio, and for the group sizes here (tens to hundreds) its
coverage is close to 95 %. It treats the most-favoured group as fixed, so with several small
groups the picked "best" one is optimistic: one more reason for the small-group notes. The flag
rule is unchanged (AIR < 0.8); the interval only says how sure the flag is ("below four-fifths
with confidence" when the whole interval is below 0.8). A grouping whose most-favoured (or
chosen reference) value has fewer than `min_group_size` applicants gets a note too: every ratio
in it divides by that small group's rate.

    from risk_app.evaluate.fairness import fairness_report
    report = fairness_report(test_df, p_test, threshold=0.4)
    print(report.table)
    print(report.flags)

Groupings come from the data set's spec (`protected`): a numeric attribute is banded by its
`edges` (age [25, 35, 50] -> <25, 25-34, 35-49, 50+), a category attribute is mapped to groups
(sex from German credit's combined `personal_status_and_sex`), or its values are the groups.
Any other column of the frame can be named as a grouping too. A data set whose spec declares no
protected attribute (e.g. a loan book that records none) gets `not_assessable(spec)` in place
of a report: the run trains and evaluates, and every report says fairness was not assessed and why.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from data_contracts.spec import DatasetSpec, ProtectedSpec, load_spec
from risk_app.errors import RiskAppError

FOUR_FIFTHS = 0.8
Z_95 = 1.959963984540054
INTERVAL_METHOD = "AIR intervals are 95% Katz log intervals for a ratio of two approval rates"
NO_PROTECTED_ATTRIBUTE = "not assessable: the spec declares no protected attribute"


def air_interval(
    approvals: int, n: int, ref_approvals: int, ref_n: int, z: float = Z_95
) -> tuple[float, float]:
    """Katz log interval of (approvals/n) / (ref_approvals/ref_n); (nan, nan) when undefined."""
    if n <= 0 or ref_n <= 0:
        return float("nan"), float("nan")
    a, b, c, d = float(approvals), float(n - approvals), float(ref_approvals), float(ref_n - ref_approvals)
    if min(a, b, c, d) == 0:
        # Haldane's correction: an all-approved or all-declined cell would make log(0) or a zero variance.
        a, b, c, d = a + 0.5, b + 0.5, c + 0.5, d + 0.5
    p, q = a / (a + b), c / (c + d)
    centre = np.log(p / q)
    half = z * np.sqrt((1 - p) / a + (1 - q) / c)
    return float(np.exp(centre - half)), float(np.exp(centre + half))


@dataclass(frozen=True)
class FairnessReport:
    """Tidy per-group table, a JSON-friendly summary and human-readable flags."""

    table: pd.DataFrame
    summary: dict[str, Any]
    flags: list[str]
    threshold: float
    air_limit: float = FOUR_FIFTHS
    references: dict[str, str] = field(default_factory=dict)
    # Small most-favoured / reference groups: every ratio of their grouping is unreliable.
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form, also what `model_card.render_model_card(fairness=...)` reads."""
        rows = self.table.replace({np.nan: None}).to_dict(orient="records")
        return {
            "threshold": self.threshold,
            "air_limit": self.air_limit,
            "references": dict(self.references),
            "rows": rows,
            "flags": list(self.flags),
            "notes": list(self.notes),
            "interval_method": INTERVAL_METHOD,
            "summary": self.summary,
        }


def not_assessable(spec: DatasetSpec | str | None = None) -> dict[str, Any]:
    """What a run records in place of `FairnessReport.to_dict()` when the spec declares no
    protected attribute: no rows, no flags, and the reason in one sentence."""
    spec = load_spec(spec)
    return {
        "assessable": False,
        "reason": f"Fairness {NO_PROTECTED_ATTRIBUTE} (data set {spec.name}).",
        "rows": [],
        "flags": [],
        "notes": [],
    }


def _row_name(df: pd.DataFrame, position: int) -> str:
    if "application_id" in df.columns:
        return f"row {position} (application_id={df['application_id'].iloc[position]})"
    return f"row {position}"


def _require(df: pd.DataFrame, column: str, group: str) -> pd.Series:
    if column not in df.columns:
        raise RiskAppError(f"fairness group {group!r} needs column {column!r}, which the data lacks")
    return df[column]


def band_labels(edges: Sequence[float], integer: bool) -> list[str]:
    """Labels of the bands cut at `edges`: integer ages read "25-34", other numbers "25 to <35"."""
    cuts = [float(e) for e in edges]

    def num(x: float) -> str:
        return str(int(x)) if x.is_integer() else f"{x:g}"

    labels = [f"<{num(cuts[0])}"]
    for lo, hi in zip(cuts, cuts[1:], strict=False):
        upper = num(hi - 1) if integer and lo.is_integer() and hi.is_integer() else None
        labels.append(f"{num(lo)}-{upper}" if upper is not None else f"{num(lo)} to <{num(hi)}")
    labels.append(f"{num(cuts[-1])}+")
    return labels


def _banded(df: pd.DataFrame, item: ProtectedSpec, integer: bool) -> pd.Series:
    column, edges = item.column, list(item.edges or [])
    values = pd.to_numeric(_require(df, column, item.group_name), errors="coerce")
    bad = np.flatnonzero(values.isna().to_numpy())
    if bad.size:
        i = int(bad[0])
        raise RiskAppError(f"{_row_name(df, i)}: field {column}={df[column].iloc[i]!r} is not a number")
    bins = [-np.inf, *edges, np.inf]
    bands = pd.cut(values, bins=bins, labels=band_labels(edges, integer), right=False)
    return pd.Series(bands.astype(str), index=df.index, name=item.group_name)


def _mapped(df: pd.DataFrame, item: ProtectedSpec) -> pd.Series:
    lookup = {value: group for group, values in (item.groups or {}).items() for value in values}
    raw = _require(df, item.column, item.group_name)
    mapped = raw.astype(object).map(lambda v: lookup.get(str(v)))
    bad = np.flatnonzero(mapped.isna().to_numpy())
    if bad.size:
        i = int(bad[0])
        raise RiskAppError(
            f"{_row_name(df, i)}: field {item.column}={raw.iloc[i]!r} is in no group of "
            f"{item.group_name!r} (groups: {sorted(item.groups or {})})"
        )
    return pd.Series(mapped.to_numpy(dtype=object), index=df.index, name=item.group_name)


def group_values(df: pd.DataFrame, group: str, spec: DatasetSpec | str | None = None) -> pd.Series:
    """The value of grouping `group` for each row: a spec grouping (banded, mapped) or a column."""
    spec = load_spec(spec)
    item = next((p for p in spec.protected if p.group_name == group), None)
    if item is not None and item.edges is not None:
        return _banded(df, item, integer=spec.columns[item.column].type == "integer")
    if item is not None and item.groups is not None:
        return _mapped(df, item)
    column = item.column if item is not None else group
    values = _require(df, column, group)
    missing = np.flatnonzero(values.isna().to_numpy())
    if missing.size:
        raise RiskAppError(f"{_row_name(df, int(missing[0]))}: field {column} is missing")
    return values.astype(str).map(_category_texts(spec, column)).rename(group)


def _category_texts(spec: DatasetSpec, column: str) -> Callable[[str], str]:
    """A mapper from a category's stored value to the text the spec gives it (itself when none)."""
    col = spec.columns.get(column)
    texts = dict(col.categories or {}) if col is not None and col.type == "category" else {}
    return lambda value: texts.get(value, value)


def _group_order(group: str, spec: DatasetSpec) -> dict[str, int] | None:
    """Band order for a banded grouping (youngest first, not "<25" sorted after "50+")."""
    item = next((p for p in spec.protected if p.group_name == group), None)
    if item is None or item.edges is None:
        return None
    labels = band_labels(item.edges, spec.columns[item.column].type == "integer")
    return {name: i for i, name in enumerate(labels)}


def _checked_inputs(
    df: pd.DataFrame, p_default: Any, threshold: float, groups: Sequence[str], spec: Any, reference: dict
) -> np.ndarray:
    """The scores as an array once every input is usable; one clear error naming the problem."""
    if not isinstance(df, pd.DataFrame):
        raise RiskAppError(f"fairness_report expects a DataFrame, got {type(df).__name__}")
    p = np.asarray(p_default, dtype=float).reshape(-1)
    if p.shape[0] != len(df):
        raise RiskAppError(
            f"fairness_report: {p.shape[0]} scores for {len(df)} applications (lengths differ)"
        )
    if len(df) == 0:
        raise RiskAppError("fairness_report: no applications to assess")
    bad = np.flatnonzero(~np.isfinite(p) | (p < 0) | (p > 1))
    if bad.size:
        i = int(bad[0])
        raise RiskAppError(f"{_row_name(df, i)}: probability_of_default={p[i]!r} is not in [0, 1]")
    if not 0.0 <= float(threshold) <= 1.0:
        raise RiskAppError(f"threshold={threshold!r} must be a probability in [0, 1]")
    if not groups:
        raise RiskAppError(f"fairness_report: no groups given and data set {spec.name} declares no protected")
    unknown = set(reference) - set(groups)
    if unknown:
        raise RiskAppError(
            f"fairness_report: reference given for {sorted(unknown)}, not among groups {list(groups)}"
        )
    return p


def _grouping_with_reference(
    df: pd.DataFrame, approved: np.ndarray, group: str, spec: Any, air_limit: float, reference: dict,
    min_group_size: int,
) -> tuple[pd.DataFrame, tuple[str, float], str]:  # fmt: skip
    """One grouping's table with decline-rate differences to its reference value."""
    stats = _grouping_table(df, approved, group, spec, air_limit, min_group_size)
    top = stats.loc[stats["is_most_favoured"]].iloc[0]
    favoured = (str(top["value"]), float(top["approval_rate"]))
    ref = reference.get(group, favoured[0])
    item = next((p for p in spec.protected if p.group_name == group), None)
    if item is None or (item.edges is None and item.groups is None):
        ref = _category_texts(spec, item.column if item else group)(ref)  # a stored code names its text
    if ref not in set(stats["value"]):
        raise RiskAppError(
            f"fairness_report: reference {group}={ref!r} not found; values are {stats['value'].tolist()}"
        )
    ref_decline = float(stats.loc[stats["value"] == ref, "decline_rate"].iloc[0])
    stats["decline_rate_diff_vs_reference"] = stats["decline_rate"] - ref_decline
    stats["is_reference"] = stats["value"] == ref
    return stats, favoured, ref


def _flag_sentences(
    table: pd.DataFrame, favoured: dict[str, tuple[str, float]], air_limit: float
) -> list[str]:
    flags = []
    for row in table[table["flagged"]].itertuples(index=False):
        best_value, best_rate = favoured[row.group]
        flags.append(
            f"{row.group}={row.value}: adverse impact ratio {row.adverse_impact_ratio:.3f} < {air_limit:.2f} "
            f"(approval {row.approval_rate:.1%} vs {best_rate:.1%} for most favoured {best_value}, "
            f"n={row.n}): {row.note}"
        )
    return flags


def _summary(
    table: pd.DataFrame, approved: np.ndarray, threshold: float, air_limit: float,
    references: dict[str, str], favoured: dict[str, tuple[str, float]], n_flags: int,
) -> dict[str, Any]:  # fmt: skip
    def of(group: str) -> dict[str, Any]:
        rows = table.loc[table["group"] == group]
        return {
            "reference": references[group],
            "most_favoured": favoured[group][0],
            "min_adverse_impact_ratio": _nan_to_none(rows["adverse_impact_ratio"].min()),
            "max_decline_rate_diff": float(rows["decline_rate_diff_vs_reference"].max()),
            "flagged_values": rows.loc[rows["flagged"], "value"].tolist(),
        }

    return {
        "threshold": float(threshold),
        "n": len(approved),
        "overall_approval_rate": float(approved.mean()),
        "air_limit": air_limit,
        "groups": {group: of(group) for group in references},
        "n_flags": n_flags,
        "n_confident_flags": int((table["flagged"] & (table["air_ci_high"] < air_limit)).sum()),
    }


def fairness_report(
    df: pd.DataFrame,
    p_default: Any,
    threshold: float,
    groups: Sequence[str] | None = None,
    *,
    spec: DatasetSpec | str | None = None,
    reference: Mapping[str, str] | None = None,
    air_limit: float = FOUR_FIFTHS,
    min_group_size: int = 30,
) -> FairnessReport:
    """Approval/decline rates, adverse impact ratio and flags per protected group.

    `reference` picks, per grouping, the value decline-rate differences are measured against;
    by default it is the most-favoured value (highest approval rate) among values with at least
    `min_group_size` applicants, which is also every AIR's denominator (module docstring).
    Smaller groups are still reported and flagged, with a note that the rate is noisy.
    `groups` defaults to the spec's protected groupings (`protected[].name`, else the column).
    """
    spec = load_spec(spec)
    groups = [p.group_name for p in spec.protected] if groups is None else groups
    reference = dict(reference or {})
    p = _checked_inputs(df, p_default, threshold, groups, spec, reference)
    approved = p < float(threshold)
    frames, references, favoured = [], {}, {}
    for group in groups:
        stats, favoured[group], references[group] = _grouping_with_reference(
            df, approved, group, spec, air_limit, reference, min_group_size
        )
        frames.append(stats)
    table = pd.concat(frames, ignore_index=True)
    table = table.astype({"n": int, "approvals": int, "flagged": bool})
    notes = _small_reference_notes(table, favoured, references, min_group_size)
    table["note"] = [
        _row_note(row, air_limit, min_group_size, notes) for row in table.itertuples(index=False)
    ]
    flags = _flag_sentences(table, favoured, air_limit)
    summary = _summary(table, approved, threshold, air_limit, references, favoured, len(flags))
    return FairnessReport(
        table, summary, flags, float(threshold), air_limit, references, list(notes.values())
    )


def _grouping_table(
    df: pd.DataFrame, approved: np.ndarray, group: str, spec: DatasetSpec, air_limit: float, min_n: int
) -> pd.DataFrame:
    """One grouping's rows: n, approvals, rates, AIR against the most favoured, its interval, flag.

    The most favoured is the highest approval rate among values with at least `min_n` rows (the
    highest of all values when none is that large)."""
    values = group_values(df, group, spec).to_numpy()
    stats = (
        pd.DataFrame({"value": values, "approved": approved})
        .groupby("value", sort=True)
        .agg(n=("approved", "size"), approvals=("approved", "sum"))
        .reset_index()
    )
    order = _group_order(group, spec)
    if order is not None:
        stats = stats.sort_values("value", key=lambda v: v.map(order)).reset_index(drop=True)
    stats.insert(0, "group", group)
    stats["approval_rate"] = stats["approvals"] / stats["n"]
    stats["decline_rate"] = 1.0 - stats["approval_rate"]
    eligible = stats[stats["n"] >= min_n] if (stats["n"] >= min_n).any() else stats
    top = stats.loc[eligible["approval_rate"].idxmax()]
    stats["is_most_favoured"] = stats["value"] == top["value"]
    best = float(top["approval_rate"])
    # All declined: nobody is favoured, and AIR has no meaning.
    stats["adverse_impact_ratio"] = stats["approval_rate"] / best if best > 0 else np.nan
    intervals = [
        air_interval(int(a), int(n), int(top["approvals"]), int(top["n"]))
        if best > 0 and v != top["value"]
        else (np.nan, np.nan)  # the most favoured is the denominator: its AIR is 1 by definition
        for v, a, n in zip(stats["value"], stats["approvals"], stats["n"], strict=True)
    ]
    stats["air_ci_low"] = [lo for lo, _ in intervals]
    stats["air_ci_high"] = [hi for _, hi in intervals]
    stats["flagged"] = stats["adverse_impact_ratio"] < air_limit
    return stats


def _small_reference_notes(
    table: pd.DataFrame, favoured: Mapping[str, tuple[str, float]], references: Mapping[str, str], min_n: int
) -> dict[tuple[str, str], str]:
    """A note for each grouping whose most-favoured or reference value has fewer than `min_n` rows."""
    notes: dict[tuple[str, str], str] = {}
    for group, (best, _) in favoured.items():
        for value, role in ((best, "most favoured"), (references[group], "reference")):
            if (group, value) in notes:
                continue
            n = int(table.loc[(table["group"] == group) & (table["value"] == value), "n"].iloc[0])
            if n < min_n:
                notes[(group, value)] = (
                    f"{group}={value}, the {role} group, has only {n} applicants (fewer than {min_n}), "
                    f"so every {group} ratio measured against it is unreliable"
                )
    return notes


def _row_note(row: Any, air_limit: float, min_n: int, notes: Mapping[tuple[str, str], str]) -> str:
    """Plain words on how sure a row's result is; empty for an unflagged row with nothing to say."""
    parts = []
    if row.flagged:
        interval = f"95% interval {row.air_ci_low:.2f} to {row.air_ci_high:.2f}"
        if row.air_ci_high < air_limit:
            parts.append(f"below four-fifths with confidence ({interval})")
        else:
            parts.append(
                f"below four-fifths, but the interval reaches {air_limit:.1f} ({interval}): "
                "too few applicants to be sure"
            )
        if row.n < min_n:
            parts.append(f"small group (n < {min_n}), rate is noisy")
    if (row.group, row.value) in notes:
        parts.append(notes[(row.group, row.value)])
    elif row.flagged:
        # A flagged group's ratio divides by its grouping's small reference: say so here too.
        parts.extend(note for (group, _), note in notes.items() if group == row.group)
    return "; ".join(parts)


def _nan_to_none(value: float) -> float | None:
    return None if pd.isna(value) else float(value)
