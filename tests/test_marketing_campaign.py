"""Campaign plan: who is targeted, the seeded stratified holdout, expectations, sizes, files."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from recsys.errors import ConfigError, DataError
from recsys.marketing.ab_plan import power_two_proportions, sample_size_per_arm
from recsys.marketing.campaign import CampaignConfig, plan_campaign

N = 2000
SEGMENT_SIZES = (13, 97, 250, 400, 540, 700)  # uneven, one tiny: the hard case for balance


@pytest.fixture
def scores() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "customer": [f"c{i:05d}" for i in range(N)],
            "p_purchase": rng.beta(2, 8, N),
            "p_churn": rng.random(N),
            "expected_value": rng.gamma(2.0, 20.0, N),
            "segment": np.repeat([f"s{k}" for k in range(len(SEGMENT_SIZES))], SEGMENT_SIZES),
        }
    )


def holdout_ids(plan) -> set[str]:
    return set(plan.frame.loc[plan.frame["group"] == "holdout", "customer"])


def test_holdout_is_reproducible_from_the_seed(scores):
    first = plan_campaign(scores, CampaignConfig(budget=1500, seed=3))
    again = plan_campaign(scores.sample(frac=1.0, random_state=1), CampaignConfig(1500, seed=3))
    other = plan_campaign(scores, CampaignConfig(budget=1500, seed=4))
    pd.testing.assert_frame_equal(first.frame, again.frame)  # input row order does not matter
    assert holdout_ids(first) != holdout_ids(other)
    assert len(holdout_ids(first)) == len(holdout_ids(other)) == 150


@pytest.mark.parametrize("fraction", [0.1, 0.17, 0.33, 0.5])
@pytest.mark.parametrize("budget", [N, 1237])
def test_holdout_is_balanced_across_segments(scores, fraction, budget):
    plan = plan_campaign(scores, CampaignConfig(budget=budget, holdout_fraction=fraction, seed=0))
    by_segment = plan.frame.groupby("segment")["group"]
    share = by_segment.apply(lambda g: (g == "holdout").mean())
    assert ((share - fraction).abs() < 1 / by_segment.size()).all()
    assert (plan.frame["group"] == "holdout").sum() == math.floor(fraction * budget + 0.5)


def test_without_segments_the_holdout_is_stratified_by_score_decile(scores):
    plan = plan_campaign(scores.drop(columns="segment"), CampaignConfig(budget=1000, seed=1))
    per_decile = plan.frame.groupby("segment")["group"].apply(lambda g: (g == "holdout").sum())
    assert len(per_decile) == 10 and (per_decile == 10).all()
    score = plan.frame.groupby("segment")["score"]  # score_decile_01 (top) ... score_decile_10
    assert (score.min().to_numpy()[:-1] >= score.max().to_numpy()[1:]).all()


@pytest.mark.parametrize(
    ("strategy", "score"),
    [
        ("propensity", lambda s: s["p_purchase"]),
        ("value", lambda s: s["expected_value"]),
        ("retain", lambda s: s["p_churn"] * s["expected_value"]),
    ],
)
def test_the_strategy_targets_the_top_budget_by_its_score(scores, strategy, score):
    plan = plan_campaign(scores, CampaignConfig(budget=300, strategy=strategy))
    expected = set(scores.loc[score(scores).nlargest(300).index, "customer"])
    assert len(plan.frame) == 300 and set(plan.frame["customer"]) == expected
    assert plan.frame["rank"].tolist() == list(range(1, 301))
    assert plan.frame["score"].is_monotonic_decreasing
    assert plan.summary["contacted"] + plan.summary["holdout"] == 300


@pytest.mark.parametrize("level", [0.8, 0.95])
def test_expected_conversion_interval_covers_the_realised_conversions(scores, level):
    """Each customer converts with their p: the interval holds the realised count about `level`
    of the time (the normal approximation to the Poisson-binomial, 1,000 simulated campaigns)."""
    plan = plan_campaign(scores, CampaignConfig(budget=1500, interval=level, seed=2))
    rng = np.random.default_rng(11)
    for group in ("contact", "holdout"):
        p = plan.frame.loc[plan.frame["group"] == group, "p_purchase"].to_numpy()
        realised = (rng.random((1000, len(p))) < p).sum(axis=1)
        expected = plan.summary["expected_conversions"][group]
        assert expected["expected"] == pytest.approx(p.sum())
        inside = (realised >= expected["low"]) & (realised <= expected["high"])
        assert abs(inside.mean() - level) < 0.035, (group, inside.mean())


def test_value_interval_only_with_a_value_variance(scores):
    point = plan_campaign(scores, CampaignConfig(budget=500)).summary["expected_value"]["contact"]
    assert point["expected"] > 0 and point["low"] is None and point["sd"] is None
    with_var = scores.assign(value_var=scores["expected_value"] ** 2)
    plan = plan_campaign(with_var, CampaignConfig(budget=500))
    interval = plan.summary["expected_value"]["contact"]
    contact = plan.frame[plan.frame["group"] == "contact"]
    assert interval["sd"] == pytest.approx(math.sqrt(contact["value_var"].sum()))
    assert interval["low"] < interval["expected"] < interval["high"]


def test_sample_size_fields_agree_with_ab_plan(scores):
    config = CampaignConfig(budget=1500, mde=0.03, alpha=0.05, power=0.8)
    plan = plan_campaign(scores, config)
    size = plan.summary["sample_size"]
    p1 = plan.frame["p_purchase"].mean()
    assert size["baseline_rate"] == pytest.approx(p1)
    assert size["holdout_needed"] == math.ceil(sample_size_per_arm(p1, p1 + 0.03, 0.05, 0.8))
    assert size["holdout_planned"] == 150 < size["holdout_needed"]
    assert power_two_proportions(150, p1, p1 + size["detectable_mde"]) == pytest.approx(0.8)
    assert size["detectable_mde"] > 0.03 and "too small" in size["warning"]
    big = plan_campaign(scores, CampaignConfig(budget=N, holdout_fraction=0.5, mde=0.1))
    assert big.summary["sample_size"]["warning"] is None
    assert big.summary["sample_size"]["detectable_mde"] < 0.1


def test_offers_are_carried_as_a_string_column(scores):
    top = scores.nlargest(3, "p_purchase")["customer"].tolist()
    offers = {top[0]: ["i1", "i2", "i3"], top[1]: []}
    plan = plan_campaign(scores, CampaignConfig(budget=10, holdout_fraction=0.2), offers=offers)
    items = plan.frame.set_index("customer")["offer_items"]
    assert items[top[0]] == "i1|i2|i3" and items[top[1]] == "" and items[top[2]] == ""
    long = pd.DataFrame({"customer": [top[2], top[2]], "item": ["x", "y"]})
    plan = plan_campaign(scores, CampaignConfig(budget=10, holdout_fraction=0.2), offers=long)
    assert plan.frame.set_index("customer").loc[top[2], "offer_items"] == "x|y"
    assert plan.summary["with_offers"] == 1


def _set(frame, column, rows, value):
    frame = frame.copy()
    frame[column] = frame[column].astype(object)
    frame.loc[frame.index[:rows], column] = value
    return frame


@pytest.mark.parametrize(
    ("change", "config", "error", "message"),
    [
        (lambda s: s.drop(columns="p_purchase"), {}, DataError, "'p_purchase'"),
        (lambda s: s.drop(columns="p_churn"), {"strategy": "retain"}, ConfigError, "'p_churn'"),
        (lambda s: s.drop(columns="expected_value"), {"strategy": "value"}, ConfigError, "value"),
        (lambda s: _set(s, "p_purchase", 3, 1.5), {}, DataError, "'p_purchase': 3 rows"),
        (lambda s: _set(s, "p_churn", 4, np.nan), {}, DataError, "'p_churn': 4 rows"),
        (lambda s: _set(s, "expected_value", 2, -1.0), {}, DataError, "'expected_value': 2 rows"),
        (lambda s: _set(s, "customer", 2, "c00009"), {}, DataError, "'customer': 3 rows share"),
        (lambda s: _set(s, "segment", 5, " "), {}, DataError, "'segment': 5 rows"),
        (lambda s: s, {"budget": 5000}, ConfigError, "budget=5000 exceeds the 2000"),
        (lambda s: s, {"budget": 4}, ConfigError, "no holdout"),
        (lambda s: s, {"budget": 4, "holdout_fraction": 0.9}, ConfigError, "no one to contact"),
        (lambda s: s, {"holdout_fraction": 1.0}, ConfigError, "holdout_fraction=1.0"),
        (lambda s: s, {"strategy": "churn"}, ConfigError, "strategy='churn'"),
        (lambda s: s, {"budget": 0}, ConfigError, "budget=0"),
    ],
)
def test_bad_input_names_the_column_or_key(scores, change, config, error, message):
    with pytest.raises(error, match=message):
        plan_campaign(change(scores), CampaignConfig(**{"budget": 100, **config}))


def test_writes_the_plan_and_refuses_a_foreign_directory(scores, tmp_path):
    plan = plan_campaign(scores, CampaignConfig(budget=200, strategy="retain"))
    out = tmp_path / "plan"
    plan.write(out)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "plan.parquet"), plan.frame)
    assert len(pd.read_csv(out / "plan.csv")) == 200
    summary = json.loads((out / "summary.json").read_text())
    assert summary["holdout"] == 20 and summary["strategy"] == "retain"
    plan.write(out)  # rewriting a plan recsys wrote is allowed
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "plan.csv").write_text("someone else's file\n")
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        plan.write(foreign)
    assert (foreign / "plan.csv").read_text() == "someone else's file\n"
    (foreign / "summary.json").write_text(json.dumps({"kind": "campaign_readout"}))
    with pytest.raises(ConfigError, match="campaign_plan summary.json"):
        plan.write(foreign)
