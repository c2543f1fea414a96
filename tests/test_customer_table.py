"""The customer table: features see only the past, labels only the window, cut-offs stay in order,
and logs that cannot answer a time question are refused with a reason."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data.customers.cutoffs import backtest_folds, rolling_cutoffs
from recsys.data.customers.features import FeatureEncoder
from recsys.data.customers.log import EventLog
from recsys.data.customers.sources import CustomerLogFile, SyntheticCustomers
from recsys.data.customers.table import DAY, customer_table, numeric_features
from recsys.errors import ConfigError, DataError
from tests.conftest import require_data


@pytest.fixture(scope="module")
def world_log() -> EventLog:
    return SyntheticCustomers(num_customers=2000, days=240, future_days=30, seed=3)()


def _log(rows, customers=None) -> EventLog:
    events = pd.DataFrame(rows, columns=["customer", "timestamp", "item", "value"])
    events["timestamp"] = pd.to_datetime(events["timestamp"])
    return EventLog(events, "hand-made", customers)


def test_features_ignore_everything_after_the_cutoff(world_log):
    """Shift, drop and add events after the cut-off: every feature stays bit-identical."""
    cutoff = world_log.end - 60 * DAY
    before = customer_table(world_log, cutoff, 30, labels=False)
    events = world_log.events.copy()
    later = events["timestamp"] > cutoff
    rng = np.random.default_rng(0)
    events.loc[later, "timestamp"] += pd.to_timedelta(
        rng.integers(1, 5_000_000, later.sum()), unit="s"
    )
    events.loc[later, "value"] *= 10
    extra = events[later].sample(500, random_state=0).assign(item="new")
    changed = EventLog(
        pd.concat([events[~later.to_numpy() | (rng.random(len(events)) < 0.5)], extra]),
        "shifted",
        world_log.customers,
    )
    after = customer_table(changed, cutoff, 30, labels=False)
    pd.testing.assert_frame_equal(before, after)
    assert before["tenure_days"].min() >= 0 and (before["days_since_last"] >= 0).all()


def test_labels_come_from_the_window_only():
    log = _log([
        ("a", "2024-01-01", "x", 10.0), ("a", "2024-01-20", "y", 5.0), ("a", "2024-02-05", "x", 7.0),
        ("b", "2024-01-03", "x", 3.0), ("b", "2024-03-20", "x", 9.0),
        ("c", "2024-01-30", "z", 1.0),
    ])  # fmt: skip
    table = customer_table(log, pd.Timestamp("2024-01-31"), 30)
    assert list(table.index) == ["a", "b", "c"]
    assert table.loc["a", ["churned", "purchased", "value_next"]].tolist() == [0.0, 1.0, 7.0]
    assert table.loc["b", ["churned", "purchased", "value_next"]].tolist() == [1.0, 0.0, 0.0]
    assert table.loc["a", "frequency"] == 1 and table.loc["a", "recency_days"] == 19
    assert table.loc["a", "value_sum"] == 15 and table.loc["a", "tenure_days"] == 30


def test_a_customer_with_one_event_is_kept_with_zero_gaps():
    log = _log(
        [
            ("solo", "2024-01-10", "x", 2.0),
            ("pair", "2024-01-01", "x", 1.0),
            ("pair", "2024-01-05", "y", 1.0),
        ]
    )
    table = customer_table(log, pd.Timestamp("2024-01-20"), 7)
    solo = table.loc["solo"]
    assert solo["n_events"] == 1 and solo["frequency"] == 0 and solo["has_repeat"] == 0
    assert solo["mean_gap_days"] == 0 and solo["std_gap_days"] == 0 and solo["recency_days"] == 0
    assert table.loc["pair", "mean_gap_days"] == 4
    assert not table[numeric_features(True)].isna().any().any()


def test_rolling_cutoffs_end_at_the_last_full_window_and_folds_stay_in_time_order():
    start, end = pd.Timestamp("2024-01-01"), pd.Timestamp("2024-12-31")
    cutoffs = rolling_cutoffs(start, end, 30, 8)
    assert cutoffs[-1] == end - 30 * DAY and all(
        b - a == 30 * DAY for a, b in zip(cutoffs[:-1], cutoffs[1:], strict=True)
    )
    folds = backtest_folds(cutoffs, 3, 30, train_stride_days=7)
    assert [f.test for f in folds] == cutoffs[::-1][:3]
    for fold in folds:
        assert max(fold.train) + 30 * DAY <= fold.valid < fold.test  # label windows end in order
        assert fold.valid + 30 * DAY == fold.test
    assert len(folds[0].train) > len(
        backtest_folds(cutoffs, 3, 30)[0].train
    )  # a shorter stride adds dates


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window_days": 400, "num_cutoffs": 2}, "longer than the data"),
        ({"window_days": 30, "num_cutoffs": 4, "last_cutoff": "2023-06-01"}, "outside the data"),
        ({"window_days": 30, "num_cutoffs": 4, "last_cutoff": "2024-12-20"}, "runs past the end"),
        ({"window_days": 30, "num_cutoffs": 20}, "do not fit"),
    ],
)
def test_cutoffs_that_do_not_fit_the_data_are_refused(kwargs, message):
    with pytest.raises(DataError, match=message):
        rolling_cutoffs(pd.Timestamp("2024-01-01"), pd.Timestamp("2024-12-31"), **kwargs)


def test_too_few_cutoffs_for_the_backtest_name_the_keys():
    cutoffs = rolling_cutoffs(pd.Timestamp("2024-01-01"), pd.Timestamp("2024-12-31"), 30, 3)
    with pytest.raises(ConfigError, match="num_cutoffs=3 is too few for data.backtest=3"):
        backtest_folds(cutoffs, 3, 30)


def test_a_log_without_timestamps_is_refused(tmp_path):
    with pytest.raises(DataError, match="customer targets need time"):
        EventLog(pd.DataFrame({"customer": ["a"], "item": ["x"]}), "no-time.csv")
    path = tmp_path / "log.csv"
    path.write_text("customer,item\na,x\n")
    with pytest.raises(DataError, match="customer targets need time"):
        CustomerLogFile(str(path), {"customer": "customer", "item": "item", "timestamp": None})()


def test_amazon_beauty_has_no_time_so_it_gets_the_same_clear_error():
    folder = require_data("amazon-beauty", "train.txt")
    source = CustomerLogFile(
        str(folder / "train.txt"), {"customer": 0, "item": 1, "timestamp": None}, header=False
    )
    with pytest.raises(DataError, match="train.txt: customer targets need time"):
        source()


def test_a_bad_timestamp_names_its_row(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("customer,item,timestamp\na,x,1700000000\nb,y,yesterday\n")
    with pytest.raises(DataError, match="row 2"):
        CustomerLogFile(str(path))()


def test_the_encoder_gives_unseen_categories_code_zero_and_standardises_on_train():
    train = pd.DataFrame({"n": [1.0, 3.0, 7.0], "g": ["a", "b", "a"]})
    encoder = FeatureEncoder.fit(train, ["n"], ["g"])
    numeric, categorical = encoder.encode(train)
    assert abs(float(numeric.mean())) < 1e-6 and categorical[:, 0].tolist() == [1, 2, 1]
    _, unseen = encoder.encode(pd.DataFrame({"n": [2.0], "g": ["zzz"]}))
    assert unseen.tolist() == [[0]] and encoder.cardinalities == {"g": 3}
