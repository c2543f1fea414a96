"""data=interactions: one log, any format -> the same vocabularies, splits and metrics; split methods."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from recsys.data.sources.interaction_log import InteractionLogSource
from recsys.data.sources.synthetic import SyntheticSource
from recsys.train import train
from tests.conftest import compose_config

FAST = ["trainer.max_epochs=2", "trainer.accelerator=cpu", "callbacks.progress_bar=null"]


def make_log(num_users: int = 150, num_items: int = 90, seed: int = 0) -> pd.DataFrame:
    """A small log with structure MF can learn: integer ids that are not 0..n-1, ratings, times."""
    data = SyntheticSource(
        num_users=num_users,
        num_items=num_items,
        mean_interactions=15,
        valid_fraction=0.0,
        test_fraction=0.0,
        seed=seed,
    )()
    log = data.train
    return pd.DataFrame(
        {
            "user": log.users.numpy() * 3 + 1,
            "item": log.items.numpy() * 7 + 10,
            "rating": (1 + 4 * log.label_probs.numpy()).round().astype(int),
            "timestamp": log.timestamps.numpy(),
        }
    )


def write_formats(frame: pd.DataFrame, folder: Path) -> dict[str, list[str]]:
    """The same log three ways; returns the data overrides that read each one."""
    frame.to_csv(folder / "log.csv", index=False)
    frame.to_csv(folder / "log.tsv", sep="\t", header=False, index=False)
    renamed = frame.rename(
        columns={"user": "customer_id", "item": "product_id", "rating": "stars", "timestamp": "ts"}
    )
    renamed["customer_id"] = renamed["customer_id"].astype(str)
    renamed["product_id"] = renamed["product_id"].astype(str)
    renamed.to_parquet(folder / "log.parquet", index=False)
    common = ["data=interactions", "data.columns.rating=rating", "data.columns.timestamp=timestamp"]
    return {
        "csv": [*common, f"data.path={folder / 'log.csv'}"],
        "tsv": [
            "data=interactions",
            f"data.path={folder / 'log.tsv'}",
            "data.header=false",
            "data.columns.user=0",
            "data.columns.item=1",
            "data.columns.rating=2",
            "data.columns.timestamp=3",
        ],
        "parquet": [
            "data=interactions",
            f"data.path={folder / 'log.parquet'}",
            "data.columns.user=customer_id",
            "data.columns.item=product_id",
            "data.columns.rating=stars",
            "data.columns.timestamp=ts",
        ],
    }


def assert_same_data(a, b, label: str) -> None:
    assert list(a.user_ids) == list(b.user_ids), label
    assert list(a.item_ids) == list(b.item_ids), label
    for split in ("train", "valid", "test"):
        x, y = getattr(a, split), getattr(b, split)
        for field in ("users", "items", "timestamps", "ratings"):
            assert torch.equal(getattr(x, field), getattr(y, field)), (label, split, field)


def test_csv_tsv_parquet_give_identical_vocabularies_splits_and_metrics(tmp_path):
    """Must-show 3: CSV with a header, TSV without, Parquet with renamed columns and string ids."""
    variants = write_formats(make_log(), tmp_path)
    results = {}
    for name, overrides in variants.items():
        metrics, objects = train(compose_config([*overrides, *FAST], tmp_path / name))
        results[name] = (metrics, objects["data"])
    base_metrics, base = results["csv"]
    assert list(base.user_ids[:3]) == ["1", "4", "7"]  # natural order of the raw ids
    test_metrics = lambda m: {k: v for k, v in m.items() if k.startswith("test/")}  # noqa: E731
    for name in ("tsv", "parquet"):
        metrics, data = results[name]
        assert_same_data(base, data, name)
        assert test_metrics(metrics) == test_metrics(base_metrics), name
        for file in ("vocab/users.txt", "vocab/items.txt"):
            assert (tmp_path / name / file).read_text() == (tmp_path / "csv" / file).read_text()
        report = json.loads((tmp_path / name / "data_report.json").read_text())
        assert report["counts_add_up"] and report["rows_read"] == len(make_log())
        assert report["test_fingerprint"] == base.test.fingerprint()


@pytest.mark.parametrize("method", ["leave_last_n", "temporal"])
def test_formats_agree_for_every_split_method(tmp_path, method):
    variants = write_formats(make_log(), tmp_path)
    loaded = {}
    for name, overrides in variants.items():
        cfg = compose_config([*overrides, f"data.split.method={method}"], tmp_path / "run")
        loaded[name] = InteractionLogSource(**{
            k: v for k, v in cfg.data.items() if k not in ("_target_", "loader")
        })()  # fmt: skip
    for name in ("tsv", "parquet"):
        assert_same_data(loaded["csv"], loaded[name], name)


def test_leave_last_n_holds_out_each_users_latest(tmp_path):
    frame = make_log()
    frame.to_csv(tmp_path / "log.csv", index=False)
    source = InteractionLogSource(
        path=str(tmp_path / "log.csv"),
        columns={"user": "user", "item": "item", "timestamp": "timestamp"},
        split={"method": "leave_last_n", "test_n": 2, "valid_n": 1},
    )
    data = source()
    train_last = torch.full((data.num_users,), -1, dtype=torch.int64)
    train_last.scatter_reduce_(0, data.train.users, data.train.timestamps, "amax")
    for split in (data.valid, data.test):
        assert (split.timestamps >= train_last[split.users]).all()
    test_per_user = torch.bincount(data.test.users, minlength=data.num_users)
    assert test_per_user.max() <= 2
    assert data.report["counts_add_up"]


def test_temporal_cutoff_puts_all_later_rows_in_test(tmp_path):
    frame = make_log()
    frame["when"] = pd.to_datetime(frame["timestamp"], unit="s").dt.strftime("%Y-%m-%d %H:%M:%S")
    frame.to_csv(tmp_path / "log.csv", index=False)
    cutoff = "2021-01-01"
    source = InteractionLogSource(
        path=str(tmp_path / "log.csv"),
        columns={"user": "user", "item": "item", "timestamp": "when"},
        split={"method": "temporal", "cutoff": cutoff, "valid_fraction": 0.1},
    )
    data = source()
    at = pd.Timestamp(cutoff, tz="UTC").timestamp()
    assert (data.train.timestamps < at).all() and (data.test.timestamps >= at).all()
    assert data.train.timestamps.max() <= data.valid.timestamps.min()
    split = next(s for s in data.report["steps"] if s["step"] == "split")
    assert split["cutoff"] == at and split["test"] > 0


def test_random_split_is_seeded(tmp_path):
    make_log().to_csv(tmp_path / "log.csv", index=False)
    build = lambda seed: InteractionLogSource(path=str(tmp_path / "log.csv"), seed=seed)()  # noqa: E731
    a, b, c = build(1), build(1), build(2)
    assert a.test.fingerprint() == b.test.fingerprint() != c.test.fingerprint()


def test_side_feature_files_become_feature_tables(tmp_path):
    frame = make_log()
    frame.to_csv(tmp_path / "log.csv", index=False)
    items = pd.DataFrame({"item": np.unique(frame["item"])})
    items["genres"] = np.where(items["item"] % 2 == 0, "a|b", "c")
    items["brand"] = np.where(items["item"] % 3 == 0, "x", "")
    items["price"] = items["item"] * 1.5
    items["name"] = "item " + items["item"].astype(str)
    extra = pd.DataFrame(
        {"item": [99999], "genres": ["z"], "brand": ["y"], "price": [1.0], "name": ["?"]}
    )
    pd.concat([items, extra]).to_parquet(tmp_path / "items.parquet", index=False)
    users = pd.DataFrame({"user": np.unique(frame["user"])[:-5]})
    users["country"] = np.where(users["user"] % 2 == 0, "de", "fr")
    users.to_csv(tmp_path / "users.tsv", sep="\t", index=False)
    data = InteractionLogSource(
        path=str(tmp_path / "log.csv"),
        item_features={
            "path": str(tmp_path / "items.parquet"),
            "id": "item",
            "categorical": ["brand"],
            "multi_hot": ["genres"],
            "numeric": ["price"],
            "title": "name",
        },
        user_features={
            "path": str(tmp_path / "users.tsv"),
            "id": "user",
            "categorical": ["country"],
        },
    )()
    f = data.item_features
    assert f.cardinality == {"brand": 2, "genres": 3}  # brand: unknown + x; genres a, b, c
    raw = data.item_ids.astype(int)
    assert torch.equal(f.multi_hot["genres"][:, 0], torch.as_tensor(raw % 2 == 0).float())
    assert torch.equal(f.categorical["brand"] > 0, torch.as_tensor(raw % 3 == 0))
    assert abs(float(f.numeric["price"].mean())) < 1e-5
    assert data.item_titles[0] == f"item {data.item_ids[0]}"
    assert data.report["item_features"]["rows_not_in_vocabulary"] == 1
    assert data.report["user_features"]["users_without_row"] >= 1
    assert (data.user_features.categorical["country"] == 0).sum() >= 1  # no row -> unknown code
