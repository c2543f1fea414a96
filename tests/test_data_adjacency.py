"""`data.format=adjacency`: `user item item ...` lines (the LightGCN / LightGCN++ splits) read as one
row per (user, item) pair, counted in the data report like every other format; bad lines named by
file and line, or counted by named steps. The real Gowalla / ML-1M files when RECSYS_DATA_DIR has them."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from recsys.data.datamodule import build_datamodule
from recsys.data.sources.interaction_log import InteractionLogSource
from recsys.errors import DataError
from tests.conftest import compose_config, require_data

ALL_IN_TRAIN = {"method": "random", "valid_fraction": 0.0, "test_fraction": 0.0}


def random_pairs(seed: int = 0, users: int = 40, items: int = 300) -> dict[int, list[int]]:
    """user -> distinct items in a random order; users with 1 to 60 items, ids with gaps."""
    rng = np.random.default_rng(seed)
    user_ids = rng.choice(users * 3, size=users, replace=False)
    return {
        int(u): [int(i) for i in rng.choice(items, size=rng.integers(1, 60), replace=False)]
        for u in user_ids
    }


def adjacency_text(pairs: dict[int, list[int]]) -> str:
    return "".join(f"{u} {' '.join(map(str, items))}\n" for u, items in pairs.items())


def loaded_pairs(data, split: str = "train") -> set[tuple[int, int]]:
    part = getattr(data, split)
    users = data.user_ids[part.users.numpy()].astype(int)
    items = data.item_ids[part.items.numpy()].astype(int)
    return set(zip(users.tolist(), items.tolist(), strict=True))


def load(path: Path, **kwargs):
    kwargs.setdefault("split", ALL_IN_TRAIN)
    return InteractionLogSource(path=str(path), format="adjacency", **kwargs)()


def removed_by_step(report: dict) -> dict[str, int]:
    return report["rows_removed_by_step"]


@pytest.mark.parametrize("compress", [False, True], ids=["text", "gzip"])
def test_adjacency_file_round_trips_every_pair(tmp_path, compress):
    pairs = random_pairs()
    text = adjacency_text(pairs)
    path = tmp_path / ("log.txt.gz" if compress else "log.txt")
    path.write_bytes(gzip.compress(text.encode()) if compress else text.encode())
    data = load(path)
    written = {(u, i) for u, items in pairs.items() for i in items}
    assert loaded_pairs(data) == written
    assert len(data.train) == data.report["rows_read"] == len(written)
    assert data.report["rows_removed"] == 0 and data.report["counts_add_up"]
    assert data.report["files"]["log"]["format"] == "adjacency"
    # integer ids keep their order: the vocabulary is the sorted ids, not file order
    assert data.user_ids.astype(int).tolist() == sorted(pairs)


def test_presplit_adjacency_files_keep_each_split_and_count_unseen_ids(tmp_path):
    """train/valid/test as published: every pair lands in its split; ids never in train are counted."""
    pairs = random_pairs(seed=1)
    parts = {"train": {}, "valid": {}, "test": {}}
    for u, items in pairs.items():
        cut = max(1, len(items) * 8 // 10)
        parts["train"][u] = items[:cut]
        if len(items) > cut:
            parts["valid"][u] = items[cut : cut + 1]
            parts["test"][u] = items[cut + 1 :] or []
    parts["test"][10_000] = [1]  # a user never in train
    for name, part in parts.items():
        (tmp_path / f"{name}.txt").write_text(adjacency_text(part))
    paths = {n: str(tmp_path / f"{n}.txt") for n in parts}
    data = InteractionLogSource(**paths, format="adjacency")()
    report = data.report
    expected = {n: {(u, i) for u, its in p.items() for i in its} for n, p in parts.items()}
    known_items = {i for _, i in expected["train"]}
    unknown = {n: {(u, i) for u, i in expected[n] if u not in parts["train"] or i not in known_items} for n in ("valid", "test")}  # fmt: skip
    user_only = sum(1 for its in parts["test"].values() if not its)
    assert user_only > 0  # users with one pair past the cut: a line with only the user id
    assert loaded_pairs(data, "train") == expected["train"]
    for name in ("valid", "test"):
        assert loaded_pairs(data, name) == expected[name] - unknown[name]
    assert (10_000, 1) in unknown["test"]
    for name in parts:
        lines = user_only if name == "test" else 0
        assert report["files"][name]["rows_read"] == len(expected[name]) + lines
    assert removed_by_step(report) == {
        "drop_unknown_ids": len(unknown["valid"]) + len(unknown["test"]),
        "drop_user_only_lines": user_only,
    }
    assert report["counts_add_up"]


def test_interactions_preset_reads_one_adjacency_file_and_splits_it(tmp_path):
    """`data=interactions data.format=adjacency data.path=...`: its default `header: true` does not
    swallow a line, and the split shares out every pair."""
    pairs = random_pairs(seed=2)
    (tmp_path / "log.txt").write_text(adjacency_text(pairs))
    overrides = ["data=interactions", "data.format=adjacency", f"data.path={tmp_path / 'log.txt'}"]
    cfg = compose_config(overrides, tmp_path / "run")
    data = build_datamodule(cfg.data, cfg.seed).load()
    n_pairs = sum(len(items) for items in pairs.values())
    assert data.report["rows_read"] == n_pairs
    kept = data.report["rows_kept"]
    assert kept["total"] + data.report["rows_removed"] == n_pairs
    assert min(kept["train"], kept["valid"], kept["test"]) > 0


GOOD_LINES = "0 1 2 3\n1 2 3\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            GOOD_LINES + "2 5 x 7\n",
            r"log.txt: line 3, item 2: 'x' is not a non-negative integer id",
        ),
        (GOOD_LINES + "2 5 -7\n", r"log.txt: line 3, item 2: '-7' is not a non-negative"),
        ("-1 4 5\n" + GOOD_LINES, r"log.txt: line 1, user id: '-1' is not a non-negative"),
        (GOOD_LINES + "2 1.5\n", r"log.txt: line 3, item 1: '1.5' is not"),
        (GOOD_LINES + "2 99999999999999999999\n", r"line 3, item 1: '99999999999999999999'"),
    ],
    ids=["letter", "negative_item", "negative_user", "decimal", "too_large"],
)
def test_a_bad_id_is_an_error_naming_file_line_and_token(tmp_path, text, message):
    (tmp_path / "log.txt").write_text(text)
    with pytest.raises(DataError, match=message) as err:
        load(tmp_path / "log.txt")
    assert "cleaning.on_invalid: drop" in str(err.value)


def test_blank_user_only_and_bad_lines_are_counted_by_named_steps(tmp_path):
    """7 pairs of good lines; a blank line, a user-only line, a bad item (1 pair), a bad user (3)."""
    text = GOOD_LINES + "\n4\n5 6 x 8\n-3 1 2 3\n   \n6 1\n"
    (tmp_path / "log.txt").write_text(text)
    data = load(tmp_path / "log.txt", cleaning={"on_invalid": "drop"})
    report = data.report
    assert report["rows_read"] == 5 + 1 + 1 + 3 + 3 + 1 + 1  # a row per pair, or per line without
    assert removed_by_step(report) == {
        "drop_blank_rows": 2,
        "drop_invalid_ids": 4,
        "drop_user_only_lines": 1,
    }
    steps = {s["step"]: s for s in report["steps"] if s.get("rows_removed")}
    assert steps["drop_blank_rows"]["example_rows"] == [3, 7]  # file lines
    assert steps["drop_user_only_lines"]["example_rows"] == [4]
    assert steps["drop_invalid_ids"]["example_rows"] == [5, 6, 6, 6]
    assert loaded_pairs(data) == {(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (5, 6), (5, 8), (6, 1)}
    assert report["counts_add_up"]


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"columns": {"user": 0, "item": 1, "rating": 2}}, "unset columns.rating"),
        ({"sep": ","}, "unset sep"),
    ],
    ids=["rating_column", "sep"],
)
def test_options_adjacency_lines_cannot_honour_are_refused(tmp_path, option, message):
    (tmp_path / "log.txt").write_text(GOOD_LINES)
    with pytest.raises(DataError, match=f"log.txt: format 'adjacency' holds only .*{message}"):
        load(tmp_path / "log.txt", **option)


def token_pairs(path: Path) -> int:
    """(user, item) pairs of an adjacency file, counted independently: tokens minus user ids."""
    lines = [line.split() for line in path.read_text().splitlines()]
    return sum(max(len(tokens) - 1, 0) for tokens in lines)


@pytest.mark.parametrize(
    ("preset", "folder"), [("gowalla", "gowalla"), ("ml1m_random", "ml-1m-random")]
)
def test_published_splits_load_every_pair(preset, folder, tmp_path):
    """The real files through data=<preset>: the pairs read per file equal the files' token counts
    and the report adds up (Gowalla: 719,081 / 91,047 / 217,242 pairs)."""
    files = require_data(folder, "train.txt", "valid.txt", "test.txt")
    cfg = compose_config([f"data={preset}"], tmp_path / "run")
    data = build_datamodule(cfg.data, cfg.seed).load()
    report = data.report
    for split in ("train", "valid", "test"):
        assert report["files"][split]["rows_read"] == token_pairs(files / f"{split}.txt"), split
    assert len(data.train) == report["files"]["train"]["rows_read"]  # nothing dropped from train
    assert report["rows_read"] == report["rows_removed"] + report["rows_kept"]["total"]
    assert set(removed_by_step(report)) <= {"drop_unknown_ids", "drop_seen_pairs"}
