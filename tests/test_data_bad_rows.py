"""Must-show 4, the bad-input corpus, single rows: a bad value is one DataError naming the file, row
and column, or a counted drop in the data report whose counts add up to the rows read (missing ids,
invalid values, duplicates, ids unknown to the training file, min-rating and k-core filters)."""

from __future__ import annotations

import pytest

from recsys.data.sources.interaction_log import InteractionLogSource
from recsys.errors import DataError
from tests.bad_input_support import COLUMNS, GOOD, HEADER, load, step, write


def test_non_numeric_rating_names_row_and_column(tmp_path):
    path = write(tmp_path, HEADER + GOOD + "u1,i9,five,1234\n")
    with pytest.raises(DataError) as err:
        load(path)
    assert str(err.value) == f"{path}: row 31, column 'rating': 'five' is not a number"


def test_non_numeric_rating_is_a_counted_drop_when_asked(tmp_path):
    path = write(tmp_path, HEADER + GOOD + "u1,i9,five,1234\nu2,i9,,1234\n")
    report = load(path, cleaning={"on_invalid": "drop"})
    invalid = step(report, "drop_invalid_values")
    assert (invalid["rows_removed"], invalid["example_rows"]) == (2, [31, 32])
    assert invalid["by_column"] == {"rating": 2, "timestamp": 0}


def test_empty_id_is_a_counted_drop_and_nan_is_an_id(tmp_path):
    path = write(tmp_path, HEADER + GOOD + ",i1,3,1\nNaN,i2,3,1\nu1,,3,1\n")
    report = load(path)
    missing = step(report, "drop_missing_ids")
    assert missing["rows_removed"] == 2 and missing["example_rows"] == [31, 33]
    assert (missing["missing_user"], missing["missing_item"]) == (1, 1)
    assert report["rows_read"] == 33


def test_empty_user_id_is_an_error_when_drops_are_off(tmp_path):
    path = write(tmp_path, HEADER + GOOD + ",i2,3,1\n")
    with pytest.raises(DataError, match=rf"^{path}: row 31, column 'user': missing user id"):
        load(path, cleaning={"drop_missing_ids": False})


def test_duplicate_rows_keep_the_latest(tmp_path):
    path = write(tmp_path, HEADER + "u0,i0,5,2000\n" + GOOD + "u0,i0,1,1500\nu0,i0,2,1500\n")
    report = load(path, split={"method": "random", "test_fraction": 0.0, "valid_fraction": 0.0})
    dedupe = step(report, "deduplicate")
    assert dedupe["rows_removed"] == 3 and dedupe["example_rows"] == [2, 32, 33]


def test_unknown_user_in_a_test_file_is_counted_and_excluded(tmp_path):
    train = write(tmp_path, HEADER + GOOD, "train.csv")
    test = write(tmp_path, HEADER + "u0,i1,3,1\nstranger,i1,3,1\nu1,i_new,3,1\n", "test.csv")
    data = InteractionLogSource(train=str(train), test=str(test), columns=COLUMNS)()
    unknown = step(data.report, "drop_unknown_ids", "test")
    assert (unknown["rows_removed"], unknown["unknown_user"], unknown["unknown_item"]) == (2, 1, 1)
    assert unknown["example_rows"] == [2, 3]
    # u0-i1 is also in train: masked at ranking, counted out as well
    assert step(data.report, "drop_seen_pairs", "test")["rows_removed"] == 1
    assert len(data.test) == 0 and data.report["counts_add_up"]


def test_k_core_and_min_rating_are_counted_in_order(tmp_path):
    path = write(tmp_path, HEADER + GOOD + "lonely,i0,5,9999\n")
    data = InteractionLogSource(
        path=str(path),
        columns=COLUMNS,
        cleaning={"min_rating": 2, "min_user_interactions": 3},
        split={"method": "leave_last_n"},
    )()
    below, core = step(data.report, "min_rating"), step(data.report, "k_core")
    assert below["rows_removed"] == sum(
        1 for line in GOOD.splitlines() if line.split(",")[2] == "1"
    )
    assert core["rows_in"] == below["rows_out"]
    assert core["example_rows"][-1] == 31  # the lonely user's only row
    assert "lonely" not in set(data.user_ids)
    assert data.report["counts_add_up"]
