"""Must-show 4, the bad-input corpus, single rows: a bad value is one DataError naming the file, row
and column, or a counted drop in the data report whose counts add up to the rows read (missing ids,
invalid values, duplicates, ids unknown to the training file, min-rating and k-core filters)."""

from __future__ import annotations

import pytest

from recsys.data.ingest.log_table import read_log
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


NON_FINITE = [
    ("rating", "inf", "is not a finite float32 number"),
    ("rating", "-1e999", "is not a finite float32 number"),
    ("rating", "nan", "is not a finite float32 number"),
    ("rating", "1e39", "is not a finite float32 number"),  # past float32, the tensors' type
    ("timestamp", "inf", "is not a finite number of seconds within int64"),
    ("timestamp", "1e19", "is not a finite number of seconds within int64"),  # past int64
]


@pytest.mark.parametrize(("column", "value", "reason"), NON_FINITE)
def test_non_finite_or_overflowing_values_name_row_and_column(tmp_path, column, value, reason):
    row = {"rating": "3", "timestamp": "1234", column: value}
    path = write(tmp_path, HEADER + GOOD + f"u1,i9,{row['rating']},{row['timestamp']}\n")
    with pytest.raises(DataError) as err:
        load(path)
    assert str(err.value) == f"{path}: row 31, column {column!r}: {value!r} {reason}"


@pytest.mark.parametrize(("column", "value", "reason"), NON_FINITE)
def test_non_finite_values_are_a_counted_drop_when_asked(tmp_path, column, value, reason):
    row = {"rating": "3", "timestamp": "1234", column: value}
    path = write(tmp_path, HEADER + GOOD + f"u1,i9,{row['rating']},{row['timestamp']}\n")
    invalid = step(load(path, cleaning={"on_invalid": "drop"}), "drop_invalid_values")
    assert (invalid["rows_removed"], invalid["example_rows"]) == (1, [31])
    assert invalid["by_column"][column] == 1


def test_blank_lines_are_counted_not_errors(tmp_path):
    lines = GOOD.splitlines(keepends=True)
    path = write(tmp_path, HEADER + "".join(lines[:2]) + "\n,,,\n" + "".join(lines[2:]) + "\n")
    report = load(path)
    blank = step(report, "drop_blank_rows")
    assert blank["rows_removed"] == 3 and blank["example_rows"][0] == 3
    assert report["rows_read"] == 33


NA_LIKE = ["NA", "N/A", "None", "null", "nan", "NaN", "#N/A", "-nan", " ", "NULL"]


def test_na_like_ids_are_ids_in_logs_and_feature_files_alike(tmp_path):
    rows = "".join(
        f"{u},{i},3,{k}\n" for k, (u, i) in enumerate(zip(NA_LIKE, NA_LIKE[::-1], strict=True))
    )
    log = write(tmp_path, HEADER + GOOD + rows)
    features = write(tmp_path, "item,tag\n" + "".join(f"{i},t{k}\n" for k, i in enumerate(NA_LIKE)), "items.csv")  # fmt: skip
    data = InteractionLogSource(
        path=str(log), columns=COLUMNS, split={"method": "random", "valid_fraction": 0, "test_fraction": 0},
        item_features={"path": str(features), "id": "item", "categorical": ["tag"]},
    )()  # fmt: skip
    assert set(NA_LIKE) <= set(data.user_ids) and set(NA_LIKE) <= set(data.item_ids)
    assert data.report["rows_removed"] == 0
    facts = data.report["item_features"]
    assert (facts["rows_without_id"], facts["rows_not_in_vocabulary"]) == (0, 0)
    assert facts["items_without_row"] == len(data.item_ids) - len(NA_LIKE)


def test_ids_holding_a_line_break_are_counted_others_kept(tmp_path):
    odd = ["a\u2028b", "c\x85d", "e\x0cf", "g\x0bh"]
    rows = '"x\ny",i0,3,1\n"u0","i\r",3,1\n' + "".join(f'"{u}",i0,3,1\n' for u in odd)
    data = InteractionLogSource(
        path=str(write(tmp_path, HEADER + GOOD + rows)), columns=COLUMNS,
        split={"method": "random", "valid_fraction": 0, "test_fraction": 0},
    )()  # fmt: skip
    broken = step(data.report, "drop_line_break_ids")
    assert (broken["rows_removed"], broken["example_rows"]) == (2, [31, 32])
    assert (broken["line_break_user"], broken["line_break_item"]) == (1, 1)
    assert set(odd) <= set(data.user_ids)


def test_rows_with_extra_fields_are_a_counted_drop_when_asked(tmp_path, caplog):
    extra = "u1,Shoes, red,3,1234\n\nu2,i9,3,5\nu3,i8,1,2,3,4\n"
    path = write(tmp_path, HEADER + GOOD + extra)
    report = load(path, cleaning={"on_invalid": "drop"})
    dropped = step(report, "drop_extra_field_rows")
    assert (dropped["rows_removed"], dropped["example_rows"]) == (2, [31, 34])
    assert report["rows_read"] == 34 and report["rows_removed_by_step"]["drop_blank_rows"] == 1
    # the log names the file lines (the header is line 1) and the fields seen
    assert "line 32 (5 fields, expected 4), line 35 (6 fields, expected 4)" in caplog.text
    # nothing else changes: the same rows are kept as from the file without them
    clean = load(write(tmp_path, HEADER + GOOD + "u2,i9,3,5\n", "clean.csv"))
    assert report["rows_kept"] == clean["rows_kept"]


def test_rows_with_extra_fields_keep_their_row_numbers_across_chunks(tmp_path):
    lines = [f"u{k},i{k},3,{k}" + (",x" * (k % 7 == 0) if k else "") for k in range(40)]
    path = write(tmp_path, HEADER + "\n".join(lines) + "\nu1,i1,1,1,x\nu2,i2,1,1,x\n")
    whole = read_log(path, COLUMNS, on_invalid="drop")
    extra = whole.flags["extra_fields"]
    assert whole.rows[extra].tolist() == [8, 15, 22, 29, 36, 41, 42]
    assert whole.user_ids.tolist() == [f"u{k}" for k in range(40) if k == 0 or k % 7]
    for chunk_rows in (1, 2, 5):  # the last read of 1 and 5 finds only the two skipped lines
        chunked = read_log(path, COLUMNS, on_invalid="drop", chunk_rows=chunk_rows)
        assert (chunked.rows == whole.rows).all() and (chunked.user == whole.user).all()
        assert (chunked.flags["extra_fields"] == extra).all()
