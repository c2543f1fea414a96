"""`data=interactions`: any interaction log (CSV, TSV, whitespace text, Parquet), one file to split or
pre-split train/valid/test files, cleaned with counted drops, into an `InteractionData`.

Vocabularies come from the training split in every case; valid/test rows whose user or item never
occurs in training are counted and excluded (the convention of the published benchmarks), and so are
valid/test pairs already seen earlier (they are masked at ranking and could never be hit).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from recsys.data.ingest.cleaning import Cleaning, clean
from recsys.data.ingest.features import FeatureSpec, build_features
from recsys.data.ingest.log_table import LogTable, read_log
from recsys.data.ingest.readers import infer_format
from recsys.data.ingest.report import DataReport, format_report
from recsys.data.ingest.splits import SplitSpec, random_indices, split_indices
from recsys.data.ingest.vocab import Vocabulary
from recsys.data.interactions import FeatureTable, InteractionData, Interactions
from recsys.data.sources.download import sha256_of
from recsys.errors import DataError

log = logging.getLogger(__name__)

UNKNOWN_REASON = "user or item never occurs in the training split (excluded from ranking metrics)"
SEEN_REASON = "(user, item) already in an earlier split: masked at ranking, so never a target"


def plain(value: Any) -> Any:
    """OmegaConf containers -> dicts/lists, so sources work the same from Hydra and from Python."""
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value


def _tensor(values: np.ndarray | None, dtype: type) -> torch.Tensor | None:
    return None if values is None else torch.from_numpy(np.ascontiguousarray(values, dtype=dtype))


def to_interactions(
    table: LogTable, users: np.ndarray, items: np.ndarray, label_threshold: float | None
) -> Interactions:
    """Tensors for one split; labels from the label column, else rating >= label_threshold."""
    values = table.values
    ts = values.get("timestamp")
    rating = values.get("rating")
    labels = values.get("label")
    if labels is None and label_threshold is not None:
        if rating is None:
            raise DataError(f"{table.path}: label_threshold needs columns.rating")
        labels = (rating >= label_threshold).astype(np.float32)
    return Interactions(
        torch.from_numpy(users.astype(np.int64, copy=False)),
        torch.from_numpy(items.astype(np.int64, copy=False)),
        _tensor(ts, np.int64),
        _tensor(rating, np.float32),
        _tensor(labels, np.float32),
    )


def index_splits(
    tables: dict[str, LogTable], report: DataReport, label_threshold: float | None
) -> tuple[dict[str, Interactions], Vocabulary, Vocabulary]:
    """Vocabularies from tables['train']; valid/test mapped into them with unknown and seen rows
    counted out. Tables are popped from `tables` as they become tensors, so each is freed early."""
    train = tables.pop("train")
    user_vocab, user_map = Vocabulary.from_codes(train.user, train.user_ids)
    item_vocab, item_map = Vocabulary.from_codes(train.item, train.item_ids)
    n_items = max(1, len(item_vocab))
    users, items = user_map[train.user], item_map[train.item]
    out = {"train": to_interactions(train, users, items, label_threshold)}
    seen = users * n_items + items
    train_users, train_items = train.user_ids, train.item_ids
    del train, users, items
    for role in [r for r in ("valid", "test") if r in tables]:
        table = tables.pop(role)
        # Tables split from one file share its id lists: index them directly; other files look up.
        u_map = user_map if table.user_ids is train_users else user_vocab.lookup(table.user_ids)
        i_map = item_map if table.item_ids is train_items else item_vocab.lookup(table.item_ids)
        users, items = u_map[table.user], i_map[table.item]
        unknown = (users < 0) | (items < 0)
        report.drop(
            "drop_unknown_ids",
            role,
            unknown,
            UNKNOWN_REASON,
            table.rows,
            unknown_user=int((users < 0).sum()),
            unknown_item=int((items < 0).sum()),
        )
        keep = ~unknown
        table, users, items = table.subset(keep), users[keep], items[keep]
        key = users * n_items + items
        repeated = np.isin(key, seen)
        report.drop("drop_seen_pairs", role, repeated, SEEN_REASON, table.rows)
        keep = ~repeated
        out[role] = to_interactions(table.subset(keep), users[keep], items[keep], label_threshold)
        seen = np.concatenate([seen, key[keep]])
        del table, users, items, key
    return out, user_vocab, item_vocab


@dataclass
class InteractionLogSource:
    path: str | None = None  # one log, split by `split`
    train: str | None = None  # or pre-split files (their vocabularies come from train)
    valid: str | None = None
    test: str | None = None
    format: str | None = None  # csv | tsv | whitespace | parquet | adjacency; None = from extension
    header: bool = True  # text: first line holds column names
    sep: str | None = None  # text: explicit delimiter, overrides the format's
    encoding: str = "utf-8"
    timestamp_format: str | None = None  # strftime format of date strings; None = ISO 8601
    columns: Mapping[str, Any] = field(default_factory=lambda: {"user": "user", "item": "item"})
    cleaning: Mapping[str, Any] = field(default_factory=dict)
    split: Mapping[str, Any] = field(default_factory=dict)
    label_threshold: float | None = None  # label = rating >= this, when there is no label column
    label_map: Mapping[Any, Any] | None = None  # label value -> 0/1, e.g. {"yes": 1, "no": 0}
    user_features: Mapping[str, Any] | None = None
    item_features: Mapping[str, Any] | None = None
    name: str = "interactions"
    seed: int = 0

    def _read(self, role: str, path: str, report: DataReport, cleaning: Cleaning) -> LogTable:
        table = read_log(
            path,
            {k: v for k, v in plain(self.columns).items() if v is not None},
            self.format,
            self.header,
            self.sep,
            self.encoding,
            self.timestamp_format,
            cleaning.on_invalid,
            label_map=plain(self.label_map),
        )
        resolved = Path(path).expanduser()
        facts = {"format": infer_format(resolved, self.format), "sha256": sha256_of(resolved)}
        if self.sep is not None:
            facts["sep"] = self.sep
        if self.label_map:
            facts["label_map"] = {str(k): v for k, v in plain(self.label_map).items()}
        report.read(role, str(resolved), len(table), **facts, columns=table.columns)
        return table

    def load_tables(self, report: DataReport) -> dict[str, LogTable]:
        """Cleaned {train, valid, test} tables, from one log or from pre-split files."""
        cleaning = Cleaning.from_config(plain(self.cleaning))
        spec = SplitSpec.from_config(plain(self.split))
        presplit = self.train is not None or self.test is not None
        if presplit == (self.path is not None):
            raise DataError(
                "give either data.path (one log to split) or data.train and data.test "
                "(pre-split files, data.valid optional)"
            )
        if not presplit:
            table = clean(self._read("log", self.path, report, cleaning), report, "log", cleaning)
            ts = table.values.get("timestamp")
            train, valid, test, info = split_indices(spec, table.user, ts, self.seed)
            report.note(
                "split", "log", method=spec.method, train=len(train), valid=len(valid),
                test=len(test), **info,
            )  # fmt: skip
            return {
                k: table.subset(idx)
                for k, idx in (("train", train), ("valid", valid), ("test", test))
            }
        if self.train is None or self.test is None:
            raise DataError("pre-split data needs both data.train and data.test")
        train = clean(self._read("train", self.train, report, cleaning), report, "train", cleaning)
        others = {}
        if self.valid is not None:
            others["valid"] = clean(
                self._read("valid", self.valid, report, cleaning), report, "valid", cleaning, False
            )
        else:
            keep, carved, _ = (p.numpy() for p in random_indices(len(train), spec.valid_fraction, 0.0, self.seed))  # fmt: skip
            report.note(
                "carve_validation", "train", fraction=spec.valid_fraction,
                rows_moved=len(carved), seed=self.seed,
            )  # fmt: skip
            train, others["valid"] = train.subset(keep), train.subset(carved)
        others["test"] = clean(
            self._read("test", self.test, report, cleaning), report, "test", cleaning, False
        )
        return {"train": train, **others}

    def features(
        self, report: DataReport, users: Vocabulary, items: Vocabulary
    ) -> tuple[FeatureTable, FeatureTable, np.ndarray | None]:
        tables, titles = {}, None
        for kind, cfg, vocab in (("user", self.user_features, users), ("item", self.item_features, items)):  # fmt: skip
            spec = FeatureSpec.from_config(plain(cfg))
            if spec.path is None:
                tables[kind] = FeatureTable()
                continue
            tables[kind], kind_titles, facts = build_features(spec, vocab, kind)
            report.info[f"{kind}_features"] = facts
            titles = kind_titles if kind == "item" else titles
        return tables["user"], tables["item"], titles

    def __call__(self) -> InteractionData:
        report = DataReport("interactions")
        tables = self.load_tables(report)
        if len(tables["train"]) == 0:
            raise DataError(
                "no training rows left after cleaning; see the steps in the data report"
            )
        splits, users, items = index_splits(tables, report, self.label_threshold)
        user_features, item_features, titles = self.features(report, users, items)
        data = InteractionData(
            train=splits["train"],
            valid=splits["valid"],
            test=splits["test"],
            user_ids=users.ids,
            item_ids=items.ids,
            user_features=user_features,
            item_features=item_features,
            item_titles=titles,
            report=report.finish({k: len(v) for k, v in splits.items()}),
            name=self.name,
        )
        log.info("%s", format_report(data.report, data.summary()))
        return data
