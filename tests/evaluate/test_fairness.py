"""Group derivation, approval rates, adverse impact ratio and the four-fifths flag."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from data_contracts.spec import load_spec
from risk_app.errors import RiskAppError
from risk_app.evaluate.fairness import air_interval, band_labels, fairness_report, group_values
from risk_app.paths import DEFAULT_DATASET


def constructed_case() -> tuple[pd.DataFrame, np.ndarray]:
    """100 applicants. Approval: foreign workers 50% vs 54/70 locals (AIR 0.648 -> flagged);
    men 51/75 vs women 72% (AIR 0.944 -> not flagged)."""
    rows, scores = [], []

    def add(n: int, n_approved: int, sex: str, foreign: str, age: int) -> None:
        for i in range(n):
            status = "female : divorced/separated/married" if sex == "female" else "male : single"
            rows.append({"personal_status_and_sex": status, "foreign_worker": foreign, "age_in_years": age})
            scores.append(0.1 if i < n_approved else 0.9)

    add(25, 18, "female", "yes", 30)  # 72%
    add(45, 36, "male", "yes", 40)  # 80%
    add(30, 15, "male", "no", 55)  # 50%
    df = pd.DataFrame(rows)
    df.insert(0, "application_id", [f"app-{i}" for i in range(len(df))])
    return df, np.array(scores)


def test_groupings_come_from_the_spec() -> None:
    df = pd.DataFrame(
        {
            "age_in_years": [19, 24, 25, 34, 35, 49, 50, 75],
            "personal_status_and_sex": [
                "male : single",
                "female : divorced/separated/married",
                "male : married/widowed",
                "male : divorced/separated",
            ]
            * 2,
        }
    )
    assert group_values(df, "age_band").tolist() == [
        "<25",
        "<25",
        "25-34",
        "25-34",
        "35-49",
        "35-49",
        "50+",
        "50+",
    ]
    assert group_values(df, "sex").tolist() == ["male", "female", "male", "male"] * 2
    # A category the spec does not map is an error naming the row, not a silent group.
    odd = df.assign(personal_status_and_sex="female : single")
    with pytest.raises(
        RiskAppError, match=r"row 0: field personal_status_and_sex='female : single' is in no group of 'sex'"
    ):
        group_values(odd, "sex")
    # Bands of a float attribute read as half-open ranges.
    assert band_labels([25, 35, 50], integer=True) == ["<25", "25-34", "35-49", "50+"]
    assert band_labels([0.5, 1.5], integer=False) == ["<0.5", "0.5 to <1.5", "1.5+"]


def test_default_groups_are_the_specs_protected_groupings() -> None:
    df, p = constructed_case()
    report = fairness_report(df, p, threshold=0.5)
    assert list(dict.fromkeys(report.table["group"])) == [
        g.group_name for g in load_spec("german_credit").protected
    ]
    # Another data set: its own grouping (marital status), from its own spec.
    cards = pd.DataFrame({"MARRIAGE": ["1", "2", "2", "3"] * 10})
    other = fairness_report(cards, np.linspace(0, 1, 40), 0.5, spec="uci_credit_card")
    assert set(other.table["group"]) == {"marital_status"}
    # Shown as the spec's texts, not the stored codes (issue 21 §4).
    assert set(other.table["value"]) == {"married", "single", "other"}


def test_the_comparison_group_has_enough_applicants() -> None:
    """A group of one approved applicant is not the yardstick for 439 others (issue 21 §4)."""
    cards = pd.DataFrame({"MARRIAGE": ["3"] + ["1"] * 439 + ["2"] * 200})
    # Everyone in the small group is approved; 60 % of 'married', 70 % of 'single'.
    p = np.r_[[0.1], np.where(np.arange(439) < 263, 0.1, 0.9), np.where(np.arange(200) < 140, 0.1, 0.9)]
    report = fairness_report(cards, p, 0.5, spec="uci_credit_card")
    table = report.table.set_index("value")
    assert report.summary["groups"]["marital_status"]["most_favoured"] == "single"
    assert table.loc["married", "adverse_impact_ratio"] == pytest.approx((263 / 439) / 0.7)
    assert not table.loc["married", "flagged"]  # 0.856: above four-fifths once measured against 200
    assert table.loc["other", "adverse_impact_ratio"] == pytest.approx(1 / 0.7)
    assert "too few applicants" not in table.loc["married", "note"]
    # A reference named by its stored code finds its row.
    coded = fairness_report(cards, p, 0.5, spec="uci_credit_card", reference={"marital_status": "1"})
    assert coded.references == {"marital_status": "married"}


def test_four_fifths_flags_only_the_group_below_point_eight() -> None:
    df, p = constructed_case()
    # Every value here has at least 25 applicants: all may be the comparison group.
    report = fairness_report(df, p, threshold=0.5, min_group_size=25)
    table = report.table.set_index(["group", "value"])

    assert table.loc[("foreign_worker", "yes"), "approval_rate"] == pytest.approx(54 / 70)
    assert table.loc[("foreign_worker", "no"), "adverse_impact_ratio"] == pytest.approx(0.5 / (54 / 70))
    assert bool(table.loc[("foreign_worker", "no"), "flagged"])
    assert table.loc[("sex", "male"), "adverse_impact_ratio"] == pytest.approx((51 / 75) / 0.72)
    assert not bool(table.loc[("sex", "male"), "flagged"])
    assert table.loc[("sex", "female"), "adverse_impact_ratio"] == pytest.approx(1.0)
    assert table.loc[("sex", "male"), "n"] == 75

    assert table.loc[("age_band", "50+"), "decline_rate_diff_vs_reference"] == pytest.approx(0.5 - 0.2)
    assert table.loc[("age_band", "35-49"), "is_reference"]
    flagged = {(g, v) for g, v in table.index[table["flagged"]]}
    # age 30 -> 25-34 (72%, AIR 0.9), 40 -> 35-49 (80%), 55 -> 50+ (50%, AIR 0.625)
    assert flagged == {("foreign_worker", "no"), ("age_band", "50+")}
    assert any(
        flag.startswith("foreign_worker=no: adverse impact ratio 0.648 < 0.80") for flag in report.flags
    )
    assert report.summary["groups"]["foreign_worker"]["flagged_values"] == ["no"]
    assert report.summary["groups"]["sex"]["flagged_values"] == []
    payload = report.to_dict()
    assert payload["flags"] == report.flags and len(payload["rows"]) == len(report.table)


def test_explicit_reference_changes_decline_difference_not_air() -> None:
    df, p = constructed_case()
    report = fairness_report(df, p, 0.5, groups=("foreign_worker",), reference={"foreign_worker": "no"})
    table = report.table.set_index("value")
    assert table.loc["no", "decline_rate_diff_vs_reference"] == pytest.approx(0.0)
    assert table.loc["yes", "decline_rate_diff_vs_reference"] == pytest.approx((16 / 70) - 0.5)
    assert table.loc["no", "adverse_impact_ratio"] == pytest.approx(0.5 / (54 / 70))


def test_any_column_can_be_a_group_and_real_data_runs() -> None:
    df = pd.read_csv(DEFAULT_DATASET).head(300)
    p = np.where(df["duration_in_month"] > 24, 0.8, 0.2)
    report = fairness_report(df, p, 0.5, groups=("age_band", "sex", "foreign_worker", "housing"))
    assert set(report.table["group"]) == {"age_band", "sex", "foreign_worker", "housing"}
    for group, frame in report.table.groupby("group"):
        assert frame["n"].sum() == 300, group
        # The comparison group (AIR 1) has at least 30 applicants; a smaller one may lie above it.
        favoured = frame[frame["is_most_favoured"]]
        assert len(favoured) == 1 and favoured["adverse_impact_ratio"].iloc[0] == pytest.approx(1.0)
        assert favoured["n"].iloc[0] >= 30 or (frame["n"] < 30).all()
        assert frame.loc[frame["n"] >= 30, "adverse_impact_ratio"].max() == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda df, p: (df, p[:-1]), "lengths differ"),
        (lambda df, p: (df.drop(columns="age_in_years"), p), "needs column 'age_in_years'"),
        (
            lambda df, p: (
                df.assign(personal_status_and_sex=["x : y"] + list(df.personal_status_and_sex[1:])),
                p,
            ),
            r"row 0 \(application_id=app-0\): field personal_status_and_sex='x : y'",
        ),
        (lambda df, p: (df.assign(age_in_years=[None] + list(df.age_in_years[1:])), p), "age_in_years"),
        (lambda df, p: (df, np.r_[np.nan, p[1:]]), "row 0"),
    ],
)
def test_bad_inputs_raise_clear_errors(mutate, message) -> None:
    df, p = mutate(*constructed_case())
    with pytest.raises(RiskAppError, match=message):
        fairness_report(df, p, 0.5)


def test_bad_reference_and_threshold() -> None:
    df, p = constructed_case()
    with pytest.raises(RiskAppError, match="reference foreign_worker='maybe' not found"):
        fairness_report(df, p, 0.5, reference={"foreign_worker": "maybe"})
    with pytest.raises(RiskAppError, match="threshold"):
        fairness_report(df, p, 2.0)
    with pytest.raises(RiskAppError, match="needs column 'nonexistent'"):
        fairness_report(df, p, 0.5, groups=("nonexistent",))


def test_air_interval_covers_the_true_ratio_and_narrows_with_n() -> None:
    rng = np.random.default_rng(11)
    true_group, true_best, n = 0.6, 0.8, 200  # true AIR 0.75
    covered = 0
    for _ in range(400):
        a, b = rng.binomial(n, true_group), rng.binomial(n, true_best)
        lo, hi = air_interval(int(a), n, int(b), n)
        covered += lo <= true_group / true_best <= hi
    assert 0.91 <= covered / 400 <= 0.99
    widths = [np.subtract(*air_interval(int(0.6 * m), m, int(0.8 * m), m)[::-1]) for m in (40, 400, 4000)]
    assert widths[0] > widths[1] > widths[2] > 0
    # An all-declined group still gets a finite interval, not log(0).
    lo, hi = air_interval(0, 20, 16, 20)
    assert 0 < lo < hi < 0.8


def synthetic_groups(
    n_yes: int, n_no: int, rate_yes: float, rate_no: float
) -> tuple[pd.DataFrame, np.ndarray]:
    """Applicants in foreign_worker yes/no with exact approval rates (scores 0.1 approve, 0.9 decline)."""
    frames, scores = [], []
    for value, n, rate in (("yes", n_yes, rate_yes), ("no", n_no, rate_no)):
        frames.append(pd.DataFrame({"foreign_worker": [value] * n}))
        k = round(n * rate)
        scores.append(np.r_[np.full(k, 0.1), np.full(n - k, 0.9)])
    return pd.concat(frames, ignore_index=True), np.concatenate(scores)


def test_a_clear_gap_is_below_four_fifths_with_confidence() -> None:
    df, p = synthetic_groups(1000, 1000, 0.5, 0.9)
    report = fairness_report(df, p, 0.5, groups=("foreign_worker",))
    row = report.table.set_index("value").loc["yes"]
    assert bool(row["flagged"]) and row["air_ci_high"] < 0.8 < 1.0
    assert row["air_ci_low"] < row["adverse_impact_ratio"] < row["air_ci_high"]
    assert report.flags == [
        "foreign_worker=yes: adverse impact ratio 0.556 < 0.80 (approval 50.0% vs 90.0% for most favoured "
        "no, n=1000): below four-fifths with confidence (95% interval 0.52 to 0.59)"
    ]
    assert report.notes == [] and report.summary["n_confident_flags"] == 1
    # The most favoured is the denominator: no interval of its own.
    assert pd.isna(report.table.set_index("value").loc["no", "air_ci_low"])


def test_a_clear_pass_is_not_flagged() -> None:
    df, p = synthetic_groups(1000, 1000, 0.85, 0.9)
    report = fairness_report(df, p, 0.5, groups=("foreign_worker",))
    assert report.flags == [] and not report.table["flagged"].any() and report.notes == []


def test_a_small_group_is_never_the_yardstick_while_a_large_one_exists() -> None:
    # foreign_worker = no with n = 4, all approved: the 296 others are measured against their own
    # group's peers of at least 30, not against a rate from 4 people (issue 21 §4).
    df, p = synthetic_groups(300, 4, 0.7, 1.0)
    report = fairness_report(df, p, 0.5, groups=("foreign_worker",), min_group_size=30)
    assert report.flags == [] and report.notes == []
    table = report.table.set_index("value")
    assert report.summary["groups"]["foreign_worker"]["most_favoured"] == "yes"
    assert table.loc["no", "adverse_impact_ratio"] == pytest.approx(1 / 0.7)


def test_when_every_group_is_small_the_note_says_so() -> None:
    df, p = synthetic_groups(20, 4, 0.7, 1.0)
    flagged = fairness_report(df, p, 0.5, groups=("foreign_worker",), min_group_size=30)
    (flag,) = flagged.flags
    assert "the interval reaches 0.8" in flag and "too few applicants to be sure" in flag
    assert "has only 4 applicants" in flag
    assert flagged.notes == [
        "foreign_worker=no, the most favoured group, has only 4 applicants (fewer than 30), "
        "so every foreign_worker ratio measured against it is unreliable"
    ]
    payload = flagged.to_dict()
    json.dumps(payload)
    assert payload["notes"] == flagged.notes and {"air_ci_low", "air_ci_high", "note"} <= set(
        payload["rows"][0]
    )


def test_the_dagster_check_says_it_in_one_sentence() -> None:
    from pipelines.checks import _fairness_sentence

    df, p = synthetic_groups(1000, 1000, 0.5, 0.9)
    assert _fairness_sentence(fairness_report(df, p, 0.5, groups=("foreign_worker",)).to_dict()) == (
        "1 group(s) below four-fifths: foreign_worker=yes at 0.56 (with confidence)."
    )
    df, p = synthetic_groups(25, 4, 0.85, 1.0)
    assert _fairness_sentence(fairness_report(df, p, 0.5, groups=("foreign_worker",)).to_dict()) == (
        "Every group's adverse impact ratio is at least 0.8 (but 1 grouping(s) are measured against "
        "a small group)."
    )
