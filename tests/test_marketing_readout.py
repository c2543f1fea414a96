"""Campaign readout: the lift's interval keeps its coverage, nothing in the outcome log is lost."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from recsys.errors import ConfigError, DataError
from recsys.marketing.campaign_stats import newcombe_difference
from recsys.marketing.readout import read_out

START = pd.Timestamp("2024-03-01")


def make_plan(n: int, holdout_every: int = 5, segments: int = 4) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer": [f"c{i}" for i in range(n)],
            "segment": [f"s{i % segments}" for i in range(n)],
            "group": np.where(np.arange(n) % holdout_every == 0, "holdout", "contact"),
        }
    )


def simulate_outcomes(plan, rate_contact, rate_holdout, rng) -> pd.DataFrame:
    """One to three in-window events per converter, with a value each."""
    p = np.where(plan["group"] == "contact", rate_contact, rate_holdout)
    buyers = plan["customer"].to_numpy()[rng.random(len(plan)) < p]
    customers = np.repeat(buyers, rng.integers(1, 4, len(buyers)))
    return pd.DataFrame(
        {
            "customer": customers,
            "timestamp": START + pd.to_timedelta(rng.random(len(customers)) * 30, unit="D"),
            "value": rng.gamma(2.0, 10.0, len(customers)),
        }
    )


@pytest.mark.parametrize(
    ("p_contact", "p_holdout", "n_contact", "n_holdout"),
    [(0.12, 0.08, 1800, 200), (0.05, 0.02, 900, 100), (0.30, 0.30, 500, 500)],
)
def test_lift_interval_covers_the_true_lift(p_contact, p_holdout, n_contact, n_holdout):
    """4,000 simulated campaigns with a known lift, small holdouts and rates of a few percent
    included: Newcombe's interval holds the true lift close to 95% of the time."""
    rng = np.random.default_rng(5)
    x_c = rng.binomial(n_contact, p_contact, 4000)
    x_h = rng.binomial(n_holdout, p_holdout, 4000)
    low, high = newcombe_difference(x_c, n_contact, x_h, n_holdout, 0.95)
    truth = p_contact - p_holdout
    coverage = ((low <= truth) & (truth <= high)).mean()
    assert 0.935 <= coverage <= 0.97, coverage


def test_read_out_reports_the_counts_and_their_interval():
    rng = np.random.default_rng(1)
    plan = make_plan(3000)
    outcomes = simulate_outcomes(plan, 0.15, 0.10, rng)
    readout = read_out(plan, outcomes, START, 30)
    s = readout.summary
    buyers = set(outcomes["customer"])
    for group in ("contact", "holdout"):
        members = plan.loc[plan["group"] == group, "customer"]
        assert s[f"customers_{group}"] == len(members)
        assert s[f"conversions_{group}"] == members.isin(buyers).sum()
    low, high = newcombe_difference(
        s["conversions_contact"], 2400, s["conversions_holdout"], 600, 0.95
    )
    assert (s["lift_low"], s["lift_high"]) == pytest.approx((low, high))
    assert s["lift"] == pytest.approx(s["rate_contact"] - s["rate_holdout"])
    assert s["relative_lift"] == pytest.approx(s["lift"] / s["rate_holdout"])
    value = readout.customers.groupby("group")["value"].mean()  # non-buyers count as 0
    assert s["value_diff"] == pytest.approx(value["contact"] - value["holdout"])
    assert s["value_low"] < s["value_diff"] < s["value_high"]
    assert len(readout.segments) == 4
    assert readout.segments["customers_holdout"].sum() == 600


def test_zero_lift_gives_an_interval_holding_zero_and_a_uniform_p_value():
    rng = np.random.default_rng(2)
    plan = make_plan(1000, segments=2)
    runs = [read_out(plan, simulate_outcomes(plan, 0.2, 0.2, rng), START, 30) for _ in range(40)]
    holds_zero = [r.summary["lift_low"] <= 0 <= r.summary["lift_high"] for r in runs]
    assert sum(holds_zero) >= 36
    assert 0.2 < np.mean([r.summary["p_value"] for r in runs]) < 0.8


def test_a_real_lift_is_detected():
    plan = make_plan(20000)
    readout = read_out(
        plan, simulate_outcomes(plan, 0.15, 0.10, np.random.default_rng(3)), START, 30
    )
    assert readout.summary["lift_low"] > 0 and readout.summary["p_value"] < 1e-6


def test_events_outside_the_window_and_of_unknown_customers_are_counted():
    plan = pd.DataFrame(
        {"customer": ["a", "b", "c", "d"], "group": ["contact", "contact", "holdout", "holdout"]}
    )
    end = START + pd.Timedelta(days=7)
    outcomes = pd.DataFrame(
        {
            "customer": ["a", "a", "b", "c", "d", "x", "x", "y"],
            "timestamp": [
                START,  # the window's first instant is in
                START + pd.Timedelta(days=1),
                START - pd.Timedelta(seconds=1),  # before: b does not convert
                end,  # the window is half-open: c does not convert
                end - pd.Timedelta(seconds=1),
                START,  # x and y are not in the plan
                end + pd.Timedelta(days=3),
                START + pd.Timedelta(days=2),
            ],
        }
    )
    readout = read_out(plan, outcomes, START.isoformat(), 7)
    converted = readout.customers.set_index("customer")["converted"]
    assert converted.to_dict() == {"a": 1, "b": 0, "c": 0, "d": 1}
    assert readout.customers.set_index("customer").loc["a", "events"] == 2
    assert readout.summary["events"] == {
        "total": 8,
        "counted": 3,
        "outside_window": 2,
        "unknown_customer": 3,
        "unknown_customer_in_window": 2,
        "unknown_customers": 2,
    }
    assert readout.summary["segments"] == 1  # no segment column: one segment, "all"


@pytest.mark.parametrize(
    ("plan_change", "outcome_change", "kwargs", "error", "message"),
    [
        (lambda p: p.drop(columns="group"), None, {}, DataError, "'group'"),
        (lambda p: p.assign(group="contact"), None, {}, DataError, "no holdout"),
        (lambda p: p.assign(group="control"), None, {}, DataError, "'group': 100 plan rows"),
        (None, lambda o: o.drop(columns="timestamp"), {}, DataError, "'timestamp'"),
        (None, lambda o: o.assign(timestamp=pd.NaT), {}, DataError, "'timestamp': "),
        (None, lambda o: o.assign(value=np.nan), {}, DataError, "'value'"),
        (None, None, {"window_days": 0}, ConfigError, "window_days=0"),
        (None, None, {"window_start": "not a date"}, ConfigError, "window_start"),
        (None, None, {"window_start": "2024-03-01T00:00Z"}, ConfigError, "time zone"),
    ],
)
def test_bad_input_names_the_column_or_key(plan_change, outcome_change, kwargs, error, message):
    plan = make_plan(100)
    outcomes = simulate_outcomes(plan, 0.3, 0.3, np.random.default_rng(0))
    plan = plan_change(plan) if plan_change else plan
    outcomes = outcome_change(outcomes) if outcome_change else outcomes
    args = {"window_start": START, "window_days": 30, **kwargs}
    with pytest.raises(error, match=message):
        read_out(plan, outcomes, **args)


def test_writes_the_readout_and_refuses_a_foreign_directory(tmp_path):
    plan = make_plan(500)
    readout = read_out(plan, simulate_outcomes(plan, 0.3, 0.2, np.random.default_rng(4)), START, 30)
    out = tmp_path / "readout"
    readout.write(out)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kind"] == "campaign_readout" and summary["customers_holdout"] == 100
    assert len(pd.read_csv(out / "segments.csv")) == 4
    assert len(pd.read_csv(out / "customers.csv")) == 500
    readout.write(out)  # its own directory may be rewritten
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me\n")
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        readout.write(foreign)
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]
