"""Must-show 4, the bad-input corpus: each case is one clear DataError naming the file, row or column,
or a counted drop in the data report whose counts add up to the rows read. Must-show 5 (labels other
than 0/1, and `data.label_map`) at the end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

from recsys.data.datamodule import build_datamodule
from recsys.data.interactions import InteractionData
from recsys.data.sources.interaction_log import InteractionLogSource
from recsys.errors import DataError
from recsys.train import train
from tests.conftest import ROOT, compose_config

HEADER = "user,item,rating,timestamp\n"
GOOD = "".join(
    f"u{u},i{i},{1 + (u + i) % 5},{1000 + 10 * u + i}\n" for u in range(6) for i in range(5)
)
COLUMNS = {"user": "user", "item": "item", "rating": "rating", "timestamp": "timestamp"}


def load(path: Path, **kwargs) -> dict:
    kwargs.setdefault("columns", COLUMNS)
    kwargs.setdefault("split", {"method": "leave_last_n"})
    data = InteractionLogSource(path=str(path), **kwargs)()
    report = data.report
    assert report["rows_read"] == report["rows_removed"] + report["rows_kept"]["total"]
    assert report["rows_kept"]["total"] == len(data.train) + len(data.valid) + len(data.test)
    return report


def step(report: dict, name: str, file: str = "log") -> dict:
    return next(s for s in report["steps"] if s["step"] == name and s["file"] == file)


def write(tmp_path: Path, text: str, name: str = "log.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_file_that_does_not_exist(tmp_path):
    with pytest.raises(DataError, match=f"^{tmp_path / 'nope.csv'}: file not found$"):
        load(tmp_path / "nope.csv")


def test_empty_file(tmp_path):
    path = write(tmp_path, "")
    with pytest.raises(DataError, match=f"^{path}: file is empty$"):
        load(path)


def test_header_only_file(tmp_path):
    path = write(tmp_path, HEADER)
    with pytest.raises(DataError, match=f"^{path}: no data rows"):
        load(path)


def test_missing_column_lists_the_columns_found(tmp_path):
    path = write(tmp_path, HEADER + GOOD)
    with pytest.raises(DataError) as err:
        load(path, columns={**COLUMNS, "rating": "stars"})
    assert str(err.value) == (
        f"{path}: column 'stars' (columns.rating) not found; columns found: user, item, rating, timestamp"
    )


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


def test_nan_user_id_is_a_counted_drop(tmp_path):
    path = write(tmp_path, HEADER + GOOD + ",i1,3,1\nNaN,i2,3,1\nu1,,3,1\n")
    report = load(path)
    missing = step(report, "drop_missing_ids")
    assert missing["rows_removed"] == 3 and missing["example_rows"] == [31, 32, 33]
    assert (missing["missing_user"], missing["missing_item"]) == (2, 1)
    assert report["rows_read"] == 33


def test_nan_user_id_is_an_error_when_drops_are_off(tmp_path):
    path = write(tmp_path, HEADER + GOOD + "NaN,i2,3,1\n")
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


def test_unreadable_parquet(tmp_path):
    path = tmp_path / "log.parquet"
    path.write_bytes(b"PAR1 this is not really parquet")
    with pytest.raises(DataError, match=f"^{path}: cannot read as Parquet"):
        load(path)


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


def test_cli_prints_one_line_and_exits_2(tmp_path):
    path = write(tmp_path, HEADER + GOOD)
    cmd = [sys.executable, str(ROOT / "scripts" / "train.py"), "data=interactions", f"data.path={path}",
           "data.columns.item=product", f"hydra.run.dir={tmp_path / 'run'}"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert (
        f"error: {path}: column 'product' (columns.item) not found; columns found: user, item"
        in proc.stderr
    )
    assert "Traceback" not in proc.stderr


def test_parquet_missing_column_lists_columns(tmp_path):
    path = tmp_path / "log.parquet"
    pd.DataFrame({"customer": ["a"], "sku": ["b"]}).to_parquet(path)
    with pytest.raises(DataError, match="columns found: customer, sku"):
        load(path, columns={"user": "customer", "item": "item"})


# Must-show 5: labels other than 0/1 (2, -1, "yes", empty) stop the load with one error naming the
# file, row, column and value, unless `data.label_map` maps them. One parser for CSV and Parquet
# (recsys.data.ingest.labels.LabelMap), reached here through the composed `data=interactions` config.

LABEL_USERS, LABEL_ITEMS = ["u0", "u0", "u1", "u1"], ["i0", "i1", "i0", "i1"]
EXPECTED_LABELS = {("u0", "i0"): 1.0, ("u0", "i1"): 0.0, ("u1", "i0"): 0.0, ("u1", "i1"): 1.0}


def label_log(tmp_path: Path, values: list, name: str = "log.csv") -> Path:
    frame = pd.DataFrame({"user": LABEL_USERS, "item": LABEL_ITEMS, "converted": values})
    path = tmp_path / name
    frame.to_parquet(path) if name.endswith(".parquet") else frame.to_csv(path, index=False)
    return path


def load_labels(path: Path, *overrides: str) -> InteractionData:
    cfg = compose_config(
        ["data=interactions", f"data.path={path}", "data.columns.label=converted",
         "data.split.valid_fraction=0", "data.split.test_fraction=0", *overrides],
        path.parent / "run",
    )  # fmt: skip
    return build_datamodule(cfg.data, cfg.seed).load()


def labels_by_pair(data: InteractionData) -> dict[tuple[str, str], float]:
    train = data.train
    pairs = zip(data.user_ids[train.users], data.item_ids[train.items], strict=True)
    return dict(zip(pairs, train.labels.tolist(), strict=True))


@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("log.csv", ["1", "0", "2", "1"]),
        ("log.csv", ["1", "0", "-1", "1"]),
        ("log.csv", ["1", "0", "yes", "1"]),
        ("log.csv", ["1", "0", "", "1"]),
        ("log.parquet", [1, 0, 2, 1]),
        ("log.parquet", [1.0, 0.0, -1.0, 1.0]),
        ("log.parquet", ["1", "0", "yes", "1"]),
    ],
)
def test_labels_outside_0_1_are_rejected_naming_file_row_column_and_value(tmp_path, name, values):
    path = label_log(tmp_path, values, name)
    with pytest.raises(DataError) as err:
        load_labels(path)
    bad = "" if values[2] == "" else str(values[2])
    assert str(err.value) == (
        f"{path}: row 3, column 'converted' (label): {bad!r} is not 0 or 1 "
        "(set data.label_map, e.g. {yes: 1, no: 0}, to read other values)"
    )


@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("log.csv", ["1", "0", "0.0", " 1.0"]),
        ("log.parquet", [1, 0, 0, 1]),
        ("log.parquet", [True, False, False, True]),
    ],
)
def test_0_1_labels_need_no_mapping(tmp_path, name, values):
    data = load_labels(label_log(tmp_path, values, name))
    assert labels_by_pair(data) == EXPECTED_LABELS


@pytest.mark.parametrize(
    ("name", "values", "label_map"),
    [
        ("log.csv", ["yes", " no", "no ", "yes"], "{yes: 1, no: 0}"),
        ("log.csv", ["2", "-1", "-1", "2"], "{2: 1, -1: 0}"),
        ("log.csv", ["2.0", "-1", "-1.0", "2"], "{2: 1, -1: 0}"),
        ("log.parquet", [2, -1, -1, 2], "{2: 1, -1: 0}"),
        ("log.parquet", [2.0, -1.0, -1.0, 2.0], "{2: 1, -1: 0}"),
        ("log.parquet", ["yes", "no", "no", "yes"], "{yes: 1, no: 0}"),
    ],
)
def test_label_map_reads_text_and_numbers_from_csv_and_parquet(tmp_path, name, values, label_map):
    path = label_log(tmp_path, values, name)
    data = load_labels(path, f"data.label_map={label_map}")
    assert labels_by_pair(data) == EXPECTED_LABELS
    assert data.report["files"]["log"]["label_map"]  # the mapping used is recorded


def test_label_map_written_in_a_yaml_file_reads_yes_no(tmp_path):
    """YAML 1.1 reads unquoted yes/no as booleans: the keys arrive as True/False and still match."""
    label_map = OmegaConf.create("{yes: 1, no: 0}")
    assert set(label_map.keys()) == {True, False}
    path = label_log(tmp_path, ["yes", "No", "no", "YES"])
    source = InteractionLogSource(
        path=str(path), columns={"user": "user", "item": "item", "label": "converted"},
        split={"valid_fraction": 0, "test_fraction": 0}, label_map=label_map,
    )  # fmt: skip
    assert sorted(labels_by_pair(source()).values()) == [0.0, 0.0, 1.0, 1.0]


@pytest.mark.parametrize("bad", ["maybe", "1"])
def test_values_outside_the_label_map_are_named_with_its_keys(tmp_path, bad):
    path = label_log(tmp_path, ["yes", "no", bad, "yes"])
    with pytest.raises(DataError) as err:
        load_labels(path, "data.label_map={yes: 1, no: 0}")
    assert str(err.value) == (
        f"{path}: row 3, column 'converted' (label): {bad!r} is not a key of label_map (yes, no)"
    )


def test_values_outside_the_label_map_are_a_counted_drop_when_asked(tmp_path):
    path = label_log(tmp_path, ["yes", "no", "maybe", "yes"])
    data = load_labels(path, "data.label_map={yes: 1, no: 0}", "data.cleaning.on_invalid=drop")
    invalid = step(data.report, "drop_invalid_values")
    assert (invalid["rows_removed"], invalid["example_rows"]) == (1, [3])
    assert invalid["by_column"] == {"label": 1}
    assert sorted(labels_by_pair(data).values()) == [0.0, 1.0, 1.0]


def test_label_map_must_map_to_0_or_1_and_needs_a_label_column(tmp_path):
    path = label_log(tmp_path, ["yes", "no", "no", "yes"])
    with pytest.raises(DataError, match=r"^label_map: 'yes' maps to 2; a label is 0 or 1$"):
        load_labels(path, "data.label_map={yes: 2, no: 0}")
    with pytest.raises(DataError, match="label_map is set but columns.label is not"):
        load_labels(path, "data.label_map={yes: 1, no: 0}", "data.columns.label=null")


def test_mapped_labels_train_a_propensity_head(tmp_path):
    """yes/no converted where user and item share a residue mod 3: a head that learnt the mapped
    labels ranks held-out exposures almost perfectly."""
    rows = [(u, i) for u in range(60) for i in range(30) if (7 * u + 3 * i) % 4]
    frame = pd.DataFrame(
        {
            "user": [f"u{u}" for u, _ in rows],
            "item": [f"i{i}" for _, i in rows],
            "converted": ["yes" if u % 3 == i % 3 else "no" for u, i in rows],
        }
    )
    path = tmp_path / "log.csv"
    frame.to_csv(path, index=False)
    cfg = compose_config(
        ["data=interactions", f"data.path={path}", "data.columns.label=converted",
         "data.label_map={yes: 1, no: 0}", "data.loader.batch_size=64", "model=mf_propensity",
         "model.module.retrieval_weight=0", "model.module.propensity_weight=1",
         "model.module.monitor=val/propensity/auc", "trainer.max_epochs=20",
         "trainer.accelerator=cpu", "callbacks.progress_bar=null",
         "trainer.enable_progress_bar=false"],
        tmp_path / "run",
    )  # fmt: skip
    metrics, objects = train(cfg)
    data = objects["data"]
    truth = {(u, i): float(c == "yes") for u, i, c in frame.itertuples(index=False)}
    assert labels_by_pair(data) == {pair: truth[pair] for pair in labels_by_pair(data)}
    assert metrics["test/propensity/base_rate"] == pytest.approx(float(data.test.labels.mean()))
    assert metrics["test/propensity/auc"] > 0.9
