"""What the data cases (cases_data.py) share: a small good log, writers for each format, loading
in-process, and checks that counts add up and ids come out exactly as written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from recsys.data.datamodule import InteractionDataModule
from recsys.data.sources.interaction_log import InteractionLogSource
from recsys.run_dir import RunDir, decode_vocabulary

HEADER = "user,item,rating,timestamp\n"
COLUMNS = {"user": "user", "item": "item", "rating": "rating", "timestamp": "timestamp"}
ROWS = [(f"u{u}", f"i{i}", 1 + (u + i) % 5, 1000 + 100 * u + i) for u in range(8) for i in range(6)]
GOOD = "".join(f"{u},{i},{r},{t}\n" for u, i, r, t in ROWS)
ALL_IN_TRAIN = {"method": "random", "valid_fraction": 0.0, "test_fraction": 0.0}


def write_text(tmp: Path, text: str | bytes, name: str = "log.csv") -> Path:
    path = tmp / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def write_parquet(tmp: Path, columns: dict[str, Any], name: str = "log.parquet") -> Path:
    path = tmp / name
    pq.write_table(pa.table(columns), path)
    return path


def good_columns(extra: list[tuple] = ()) -> dict[str, list]:
    rows = [*ROWS, *extra]
    return {k: [r[n] for r in rows] for n, k in enumerate(("user", "item", "rating", "timestamp"))}


def source(path: Path, **kwargs) -> InteractionLogSource:
    kwargs.setdefault("columns", COLUMNS)
    kwargs.setdefault("split", ALL_IN_TRAIN)
    return InteractionLogSource(path=str(path), **kwargs)


def load(path: Path, **kwargs):
    """The data of one log, every row in train (the splits are the concern of other cases)."""
    return source(path, **kwargs)()


def load_for_training(path: Path | None = None, **kwargs):
    """Through the datamodule, which refuses empty splits as training would need them."""
    if path is not None:
        kwargs["path"] = str(path)
    kwargs.setdefault("columns", COLUMNS)
    keep_rate = kwargs.pop("label_negative_keep_rate", 1.0)
    return InteractionDataModule(
        InteractionLogSource(**kwargs), label_negative_keep_rate=keep_rate
    ).load()


def adds_up(report: dict) -> None:
    assert report["rows_read"] == report["rows_removed"] + report["rows_kept"]["total"], report
    assert report["counts_add_up"]


def removed_by(report: dict, step: str) -> int:
    return sum(s.get("rows_removed", 0) for s in report["steps"] if s["step"] == step)


def expect(
    rows_read: int,
    removed: dict[str, int] | None = None,
    users: set[str] = frozenset(),
    items: set[str] = frozenset(),
) -> Callable[[Any, Path], None]:
    """A check: counts add up, each named step removed as many rows as said (others none), the
    given ids are in the vocabularies exactly, and they survive the run's vocabulary files."""
    removed = removed or {}

    def check(data, tmp: Path) -> None:
        report = data.report
        adds_up(report)
        assert report["rows_read"] == rows_read, (report["rows_read"], rows_read)
        assert report["rows_removed_by_step"] == {k: v for k, v in removed.items() if v}, report[
            "rows_removed_by_step"
        ]
        assert users <= set(data.user_ids.tolist()), (users, data.user_ids[:10])
        assert items <= set(data.item_ids.tolist()), (items, data.item_ids[:10])
        run = RunDir(tmp / "run")
        run.write_vocabularies(data.user_ids, data.item_ids)
        for name, ids in (("users", data.user_ids), ("items", data.item_ids)):
            saved = decode_vocabulary((run.vocab_dir / f"{name}.txt").read_bytes())
            assert saved == [str(x) for x in ids], name

    return check


def frame_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Written with "\r\n" line ends, so that the writer quotes a field holding a lone "\r"."""
    frame.to_csv(path, index=False, lineterminator="\r\n")
    return path
