"""Property: any table of string or integer ids survives CSV and Parquet -> the interaction reader
-> the run's vocabulary files -> recsys's `decode_vocabulary` and the standalone serving loader,
unchanged; or its row is refused and counted by a named report step (an empty id by
`drop_missing_ids` or `drop_blank_rows`, an id holding "\\n"/"\\r" by `drop_line_break_ids`).
The side-feature reader finds exactly the same ids."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys.data.sources.interaction_log import InteractionLogSource
from recsys.errors import DataError
from recsys.run_dir import RunDir, decode_vocabulary
from recsys.serving import loader
from recsys.serving.exporter import write_export_vocabularies
from recsys.serving.manifest import write_manifest

AWKWARD = [
    "NA", "N/A", "None", "null", "nan", "NaN", "#N/A", "-nan", "TRUE", "", " ", "\t", "007", "0",
    "1.0", "1e3", "a\nb", "\r", "x\r\ny", "ls\u2028x", "nel\u0085x", "ff\x0cx", "vt\x0bx", "\x1c",
    '"quoted"', "a,b", "a;b", "#comment", "\ufeffbom", "naïve—日本",
]  # fmt: skip
TEXT_IDS = st.one_of(st.sampled_from(AWKWARD), st.text(st.characters(codec="utf-8"), max_size=6))
INT_IDS = st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(-(10**30), 10**30))
ALL_IN_TRAIN = {"method": "random", "valid_fraction": 0.0, "test_fraction": 0.0}


def refusal(user: str, item: str) -> str | None:
    """The report step that must count this row out, or None when it must be kept exactly."""
    if user == "" and item == "":
        return "blank"  # drop_blank_rows in text, drop_missing_ids in Parquet
    if any(end in user + item for end in ("\n", "\r")):
        return "drop_line_break_ids"  # cleaning's order: line breaks, then missing ids
    if user == "" or item == "":
        return "drop_missing_ids"
    return None


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Line ends "\r\n", so that the writer quotes a field holding a lone "\r" (with "\n" it
    writes it bare, which any CSV reader takes for a line end)."""
    frame.to_csv(path, index=False, lineterminator="\r\n")


def write(folder: Path, users: list, items: list, fmt: str) -> Path:
    path = folder / f"log.{fmt}"
    if fmt == "csv":
        write_csv(
            pd.DataFrame({"user": [str(u) for u in users], "item": [str(i) for i in items]}), path
        )
    else:
        pq.write_table(pa.table({"user": users, "item": items}), path)
    return path


def load(path: Path, feature_path: Path):
    return InteractionLogSource(
        path=str(path),
        split=ALL_IN_TRAIN,
        cleaning={"deduplicate": False},
        item_features={"path": str(feature_path), "id": "item", "numeric": ["n"]},
    )()


def check_round_trip(folder: Path, users: list, items: list, fmt: str) -> None:
    text_users, text_items = [str(u) for u in users], [str(i) for i in items]
    features = folder / "items.csv"
    write_csv(pd.DataFrame({"item": list(dict.fromkeys(text_items)), "n": 1.0}), features)
    why = [refusal(u, i) for u, i in zip(text_users, text_items, strict=True)]
    expected = Counter((u, i) for u, i, w in zip(text_users, text_items, why, strict=True) if not w)
    if not expected:  # every row refused: one error, not an empty model
        with pytest.raises(DataError, match="no training rows left"):
            load(write(folder, users, items, fmt), features)
        return
    data = load(write(folder, users, items, fmt), features)
    report = data.report
    train = data.train
    kept = Counter(
        zip(data.user_ids[train.users.numpy()], data.item_ids[train.items.numpy()], strict=True)
    )
    assert kept == expected  # every kept id exactly as written
    removed = report["rows_removed_by_step"]
    blank_step = "drop_blank_rows" if fmt == "csv" else "drop_missing_ids"
    counted = Counter({"drop_line_break_ids": 0, "drop_missing_ids": 0, blank_step: 0})
    counted.update(blank_step if w == "blank" else w for w in why if w)
    assert {k: removed.get(k, 0) for k in counted} == dict(counted)
    assert report["rows_read"] == report["rows_removed"] + report["rows_kept"]["total"]

    facts = report["item_features"]  # the feature reader agrees on every id
    assert facts["items_without_row"] == 0
    assert facts["rows_without_id"] == int("" in text_items)

    run = RunDir(folder / "run")
    run.write_vocabularies(data.user_ids, data.item_ids)
    vocab = {n: decode_vocabulary((run.vocab_dir / f"{n}.txt").read_bytes()) for n in ("users", "items")}  # fmt: skip
    assert vocab == {"users": list(data.user_ids), "items": list(data.item_ids)}
    assert set(vocab["users"]) == {u for u, _ in expected}
    export = folder / "export"
    files = write_export_vocabularies(export, vocab, torch.arange(len(vocab["items"])))
    write_manifest(export, {"vocab": files})
    for name, ids in vocab.items():
        assert loader.read_vocabulary(export, name) == ids, name


TABLE = st.integers(1, 8).flatmap(
    lambda n: st.tuples(st.lists(TEXT_IDS, min_size=n, max_size=n), st.lists(TEXT_IDS, min_size=n, max_size=n))
)  # fmt: skip
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(table=TABLE, fmt=st.sampled_from(["csv", "parquet"]))
def test_text_ids_round_trip_or_are_counted(tmp_path_factory, table, fmt):
    check_round_trip(tmp_path_factory.mktemp("ids"), *table, fmt)


@SETTINGS
@given(users=st.lists(INT_IDS, min_size=1, max_size=8), fmt=st.sampled_from(["csv", "parquet"]))
def test_integer_ids_round_trip(tmp_path_factory, users, fmt):
    if fmt == "parquet":  # a Parquet int64 column holds what fits; bigger ints arrive as text
        users = [u if -(2**63) <= u < 2**63 else str(u) for u in users]
        if any(isinstance(u, str) for u in users):
            users = [str(u) for u in users]
    items = [abs(u) % 1000 for u in users] if fmt == "csv" else [7] * len(users)
    check_round_trip(tmp_path_factory.mktemp("ids"), users, items, fmt)
