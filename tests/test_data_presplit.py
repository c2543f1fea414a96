"""Pre-split `user item 1` files (the Amazon-Beauty layout) through experiment=beauty_mf; bad lines
are named by file and line, ids only in valid/test counted out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from recsys.data.sources.interaction_log import InteractionLogSource
from recsys.errors import DataError
from recsys.train import train
from tests.conftest import compose_config, require_data
from tests.test_data_formats import make_log

FAST = ["trainer.max_epochs=3", "trainer.accelerator=cpu", "callbacks.progress_bar=null"]


def write_presplit(folder: Path) -> dict[str, int]:
    """train/valid/test.txt as `user item 1`, leave-last-out per user, plus rows that the published
    convention excludes: a test user and a test item never seen in training."""
    frame = make_log().sort_values(["user", "timestamp"])
    last = frame.groupby("user").cumcount(ascending=False)
    parts = {"train": frame[last >= 2], "valid": frame[last == 1], "test": frame[last == 0]}
    folder.mkdir(parents=True, exist_ok=True)
    for name, part in parts.items():
        lines = [f"{u} {i} 1" for u, i in zip(part["user"], part["item"], strict=True)]
        if name == "test":
            lines += ["999999 10 1", "1 888888 1"]  # unknown user, unknown item
        (folder / f"{name}.txt").write_text("\n".join(lines) + "\n")
    return {name: len(part) for name, part in parts.items()}


def test_any_presplit_data_set_runs_by_changing_the_three_paths(tmp_path):
    """Must-show 2: experiment=beauty_mf with only data.train/valid/test pointing elsewhere."""
    sizes = write_presplit(tmp_path / "data")
    paths = [f"data.{n}={tmp_path / 'data' / f'{n}.txt'}" for n in ("train", "valid", "test")]
    metrics, objects = train(
        compose_config(["experiment=beauty_mf", *paths, *FAST], tmp_path / "run")
    )
    data = objects["data"]
    assert 0.0 < metrics["test/recall@20"] <= 1.0
    report = json.loads((tmp_path / "run" / "data_report.json").read_text())
    unknown = [
        s for s in report["steps"] if s["step"] == "drop_unknown_ids" and s["file"] == "test"
    ]
    assert unknown[0]["rows_removed"] == 2
    assert (unknown[0]["unknown_user"], unknown[0]["unknown_item"]) == (1, 1)
    assert unknown[0]["example_rows"] == [sizes["test"] + 1, sizes["test"] + 2]
    assert report["rows_read"] == sum(sizes.values()) + 2
    assert report["rows_read"] == report["rows_removed"] + report["rows_kept"]["total"]
    assert report["rows_kept"] == {**sizes, "total": sum(sizes.values())}
    # the vocabulary is the training file's ids, saved with the run
    users = (tmp_path / "run" / "vocab" / "users.txt").read_text().split()
    assert users == [str(u) for u in sorted(make_log()["user"].unique())]
    assert len(data.item_ids) == len(np.unique(make_log()["item"]))


def test_missing_valid_file_carves_validation_from_train(tmp_path):
    sizes = write_presplit(tmp_path / "data")
    overrides = [
        "experiment=beauty_mf",
        f"data.train={tmp_path / 'data' / 'train.txt'}",
        "data.valid=null",
        f"data.test={tmp_path / 'data' / 'test.txt'}",
        "data.split.valid_fraction=0.2",
    ]
    from recsys.data.datamodule import build_datamodule

    cfg = compose_config(overrides, tmp_path / "run")
    data = build_datamodule(cfg.data, cfg.seed).load()
    carve = next(s for s in data.report["steps"] if s["step"] == "carve_validation")
    assert carve["rows_moved"] == round(0.2 * sizes["train"])
    valid_drops = sum(
        s["rows_removed"] for s in data.report["steps"] if s["file"] == "valid" and "rows_in" in s
    )
    assert len(data.valid) + valid_drops == carve["rows_moved"]
    assert len(data.train) == sizes["train"] - carve["rows_moved"]
    assert data.report["counts_add_up"]


def test_beauty_loads_with_the_published_convention():
    """The real files: 57,289 item ids occur overall, 52,893 in train; unseen rows are counted out."""
    folder = require_data("amazon-beauty", "train.txt", "valid.txt", "test.txt")
    from recsys.data.datamodule import build_datamodule

    cfg = compose_config(["experiment=beauty_mf"], folder / "unused")
    cfg.data.train, cfg.data.valid, cfg.data.test = (
        str(folder / f"{n}.txt") for n in ("train", "valid", "test")
    )
    data = build_datamodule(cfg.data, cfg.seed).load()
    assert (data.num_users, data.num_items, len(data.train)) == (52204, 52893, 284530)
    dropped = {s["file"]: s["rows_removed"] for s in data.report["steps"] if s["step"] == "drop_unknown_ids"}  # fmt: skip
    assert dropped == {"valid": 1397, "test": 4184}


BEAUTY_LAYOUT = {
    "format": "whitespace",
    "header": False,
    "columns": {"user": 0, "item": 1, "rating": 2},
}
TRAIN_LINES = "".join(f"{u} {i} 1\n" for u in range(5) for i in range(4))


def presplit(folder: Path, valid: str, test: str) -> InteractionLogSource:
    for name, text in (("train", TRAIN_LINES), ("valid", valid), ("test", test)):
        (folder / f"{name}.txt").write_text(text)
    paths = {n: str(folder / f"{n}.txt") for n in ("train", "valid", "test")}
    return InteractionLogSource(**paths, **BEAUTY_LAYOUT)


@pytest.mark.parametrize(
    ("valid", "test", "message"),
    [
        ("0 9 1\n", "1 9 1\n2 9 x\n", r"test.txt: row 2, column 2 \(rating\): 'x' is not a number"),
        ("0 9 1\n1 9 1 extra\n", "1 9 1\n", r"valid.txt: line 2 has 4 fields, the first row 3"),
        ("0 9 1\n", "1 9 inf\n", r"test.txt: row 1, column 2 \(rating\): 'inf' is not a finite"),
    ],
    ids=["bad_value", "extra_field", "non_finite"],
)
def test_bad_line_in_a_presplit_file_names_the_file_and_line(tmp_path, valid, test, message):
    with pytest.raises(DataError, match=message):
        presplit(tmp_path, valid, test)()


def test_short_and_blank_lines_and_new_ids_in_valid_and_test_are_counted(tmp_path):
    data = presplit(tmp_path, "0 3 1\n\n7 1 1\n", "1 2 1\n2\n1 77 1\n")()
    counted = {(s["step"], s["file"]): s["rows_removed"] for s in data.report["steps"] if s.get("rows_removed")}  # fmt: skip
    assert counted == {
        ("drop_blank_rows", "valid"): 1,
        ("drop_unknown_ids", "valid"): 1,  # user 7 occurs only in valid
        ("drop_seen_pairs", "valid"): 1,
        ("drop_missing_ids", "test"): 1,  # "2": no item
        ("drop_unknown_ids", "test"): 1,  # item 77 occurs only in test
        ("drop_seen_pairs", "test"): 1,
    }
    assert data.report["rows_read"] == 20 + 3 + 3
