"""Must-show 5: labels other than 0/1 (2, -1, "yes", empty) stop the load with one error naming the
file, row, column and value, unless `data.label_map` maps them. One parser for CSV and Parquet
(recsys.data.ingest.labels.LabelMap), reached here through the composed `data=interactions` config."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

from recsys.data.datamodule import InteractionDataModule, build_datamodule
from recsys.data.interactions import InteractionData
from recsys.data.sources.interaction_log import InteractionLogSource
from recsys.errors import DataError
from recsys.train import train
from tests.bad_input_support import step
from tests.conftest import compose_config

LABEL_USERS, LABEL_ITEMS = ["u0", "u0", "u1", "u1"], ["i0", "i1", "i0", "i1"]
EXPECTED_LABELS = {("u0", "i0"): 1.0, ("u0", "i1"): 0.0, ("u1", "i0"): 0.0, ("u1", "i1"): 1.0}


def label_log(tmp_path: Path, values: list, name: str = "log.csv") -> Path:
    frame = pd.DataFrame({"user": LABEL_USERS, "item": LABEL_ITEMS, "converted": values})
    path = tmp_path / name
    frame.to_parquet(path) if name.endswith(".parquet") else frame.to_csv(path, index=False)
    return path


def load_labels(path: Path, *overrides: str) -> InteractionData:
    """Every row in train: the composed source itself, since the datamodule refuses empty splits."""
    cfg = compose_config(
        ["data=interactions", f"data.path={path}", "data.columns.label=converted",
         "data.split.valid_fraction=0", "data.split.test_fraction=0", *overrides],
        path.parent / "run",
    )  # fmt: skip
    return build_datamodule(cfg.data, cfg.seed).source()


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


def test_report_adds_up_after_negative_down_sampling(tmp_path):
    rows = [(u, i) for u in range(20) for i in range(10)]
    frame = pd.DataFrame(
        {"user": [f"u{u}" for u, _ in rows], "item": [f"i{i}" for _, i in rows],
         "converted": [int((u + i) % 5 == 0) for u, i in rows]}
    )  # fmt: skip
    frame.to_csv(tmp_path / "log.csv", index=False)
    source = InteractionLogSource(
        path=str(tmp_path / "log.csv"),
        columns={"user": "user", "item": "item", "label": "converted"},
    )
    data = InteractionDataModule(source, label_negative_keep_rate=0.3).load()
    report = data.report
    down = step(report, "downsample_label_negatives", "train")
    assert down["rows_removed"] > 0 and down["rows_out"] == len(data.train)
    assert report["rows_kept"]["train"] == len(data.train)
    assert report["rows_read"] == report["rows_removed"] + report["rows_kept"]["total"] == 200
    assert report["rows_removed_by_step"]["downsample_label_negatives"] == down["rows_removed"]
