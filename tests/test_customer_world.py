"""The synthetic customer world: reproducible, shaped like retail, and its oracle is calibrated
against the future it realises (the oracle is the exact posterior, so nothing should beat it)."""

import time

import numpy as np
import pandas as pd
import pytest

from recsys.data.sources.synthetic_customers import synthetic_customer_world
from recsys.errors import DataError

DAY = pd.Timedelta(days=1)
WINDOW = 30.0


def customer_table(log: pd.DataFrame, cutoff: pd.Timestamp, window_days: float) -> pd.DataFrame:
    """The brief's customer table at `cutoff` (features from events <= cutoff, labels after it)."""
    past = log[log["timestamp"] <= cutoff]
    g = past.groupby("customer")
    first, last, n = g["timestamp"].min(), g["timestamp"].max(), g.size()
    table = pd.DataFrame(
        {
            "frequency": n - 1,
            "recency_days": (last - first) / DAY,
            "tenure_days": (cutoff - first) / DAY,
            "n_events": n,
            "value_sum": g["value"].sum(),
        }
    )
    after = log[(log["timestamp"] > cutoff) & (log["timestamp"] <= cutoff + window_days * DAY)]
    nxt = after.groupby("customer")["value"].agg(["size", "sum"]).reindex(table.index, fill_value=0)
    table["churned"] = (nxt["size"] == 0).astype(int)
    table["value_next"] = nxt["sum"].astype(float)
    return table.rename_axis("customer").reset_index()


def with_groups(world, table):
    return table.merge(world.customers, on="customer", how="left", validate="one_to_one")


@pytest.fixture(scope="module")
def world():
    return synthetic_customer_world(num_customers=20000, seed=0)


def test_same_seed_same_world_other_seed_other_world():
    a = synthetic_customer_world(num_customers=1500, seed=3)
    b = synthetic_customer_world(num_customers=1500, seed=3)
    c = synthetic_customer_world(num_customers=1500, seed=4)
    pd.testing.assert_frame_equal(a.events, b.events)
    pd.testing.assert_frame_equal(a.future, b.future)
    pd.testing.assert_frame_equal(a.customers, b.customers)
    assert a.params == b.params
    assert len(a.events) != len(c.events) or not a.events.equals(c.events)
    assert a.params != c.params


def test_the_log_follows_the_data_contract(world):
    ev, fut = world.events, world.future
    assert list(ev.columns) == ["customer", "timestamp", "item", "value"]
    assert list(fut.columns) == list(ev.columns)
    assert ev["timestamp"].dtype == "datetime64[ns]" and ev["value"].dtype == float
    assert ev["timestamp"].max() <= world.end < fut["timestamp"].min()
    assert fut["timestamp"].max() <= world.end + world.future_days * DAY
    assert ev["timestamp"].min() >= world.start
    # Every customer's first purchase is in the observed period, so each has a row in the table.
    assert set(ev["customer"]) == set(world.customers["customer"])
    assert (ev["value"] > 0).all() and ev["item"].nunique() > 100
    top = ev["item"].value_counts(normalize=True)
    assert top.iloc[0] > 5 * top.iloc[len(top) // 2]  # Zipf-popular catalogue


@pytest.mark.parametrize("days_before_end", [0, 60])
def test_oracle_no_event_is_calibrated_against_the_realised_future(world, days_before_end):
    cutoff = world.end - days_before_end * DAY
    log = pd.concat([world.events, world.future], ignore_index=True)
    table = with_groups(world, customer_table(log, cutoff, WINDOW))
    pred = world.oracle_no_event(table, WINDOW)
    real = table["churned"].to_numpy(float)
    n = len(real)
    assert abs(pred.mean() - real.mean()) < 4 * np.sqrt(real.mean() * (1 - real.mean()) / n)
    deciles = pd.qcut(pred, 10, labels=False, duplicates="drop")
    for d in np.unique(deciles):
        m = deciles == d
        se = np.sqrt(max(pred[m].mean() * (1 - pred[m].mean()), 1e-3) / m.sum())
        assert abs(pred[m].mean() - real[m].mean()) < 4 * se + 0.005, d
    # The truth separates churners from buyers: the check above is not one of a constant.
    assert (
        real[pred > np.quantile(pred, 0.9)].mean() - real[pred < np.quantile(pred, 0.1)].mean()
        > 0.5
    )


def test_oracle_value_matches_the_realised_value_on_average(world):
    table = with_groups(world, customer_table(world.events, world.end, WINDOW))
    future = customer_table(pd.concat([world.events, world.future]), world.end, WINDOW)
    table["value_next"] = future["value_next"].to_numpy()
    pred = world.oracle_value(table, WINDOW)
    real = table["value_next"].to_numpy()
    se = real.std(ddof=1) / np.sqrt(len(real))
    assert abs(pred.mean() - real.mean()) < 4 * se
    top = pred >= np.quantile(pred, 0.9)  # the oracle's top decile carries most of the value
    assert real[top].sum() / real.sum() > 0.3
    for _, rows in table.groupby("group"):
        idx = rows.index.to_numpy()
        se = real[idx].std(ddof=1) / np.sqrt(len(idx))
        assert abs(pred[idx].mean() - real[idx].mean()) < 4 * se


def test_the_world_looks_like_retail_and_only_group_carries_signal():
    for seed in range(3):
        w = synthetic_customer_world(num_customers=6000, seed=seed)
        log = pd.concat([w.events, w.future], ignore_index=True)
        table = with_groups(w, customer_table(log, w.end, WINDOW))
        assert 0.3 <= table["churned"].mean() <= 0.7, seed
        buyers = table[table["churned"] == 0]
        per_month = (buyers["frequency"] / (buyers["recency_days"] / 30)).median()
        assert 1.0 < per_month < 8.0, seed
    by_channel = table.groupby("channel")["churned"].agg(["mean", "size"])
    se = np.sqrt(0.25 / by_channel["size"].min())
    assert by_channel["mean"].max() - by_channel["mean"].min() < 5 * se
    by_group = w.oracle_no_event(table, WINDOW)
    assert pd.Series(by_group).groupby(table["group"]).mean().agg(np.ptp) > 0.02


def test_generation_is_vectorised():
    t = time.perf_counter()
    w = synthetic_customer_world(num_customers=20000, seed=1)
    assert time.perf_counter() - t < 5.0
    assert len(w.events) > 20000


def test_oracle_needs_the_group_column(world):
    table = customer_table(world.events, world.end, WINDOW)
    with pytest.raises(DataError, match="group"):
        world.oracle_no_event(table, WINDOW)
    table["group"] = "nope"
    with pytest.raises(DataError, match="group: values outside"):
        world.oracle_value(table, WINDOW)
