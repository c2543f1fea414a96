"""The customer tables of every cut-off, and the tensors of one backtest fold, for Lightning.

Tables are built once per cut-off and shared by the folds. Training rows stack the training
cut-offs (a customer appears once per cut-off, each time with only the history before it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pandas as pd
import pytorch_lightning as pl
import torch
from torch import Tensor

from recsys.data.customers.cutoffs import Fold, backtest_folds, rolling_cutoffs
from recsys.data.customers.features import FeatureEncoder
from recsys.data.customers.log import EventLog
from recsys.data.customers.table import DAY, customer_table, numeric_features
from recsys.errors import DataError


@dataclass
class Split:
    numeric: Tensor
    categorical: Tensor
    target: Tensor
    table: pd.DataFrame

    def __len__(self) -> int:
        return self.target.numel()


class Batches:
    """Shuffled index slices over tensors: no per-row Python (a tabular epoch is a few gathers)."""

    def __init__(self, split: Split, batch_size: int, shuffle: bool, seed: int) -> None:
        self.split, self.batch_size, self.shuffle, self.seed, self.epoch = (
            split,
            batch_size,
            shuffle,
            seed,
            0,
        )

    def __len__(self) -> int:
        return -(-len(self.split) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        n = len(self.split)
        gen = torch.Generator().manual_seed(self.seed + self.epoch)
        self.epoch += 1
        order = torch.randperm(n, generator=gen) if self.shuffle else torch.arange(n)
        s = self.split
        for idx in order.split(self.batch_size):
            yield s.numeric[idx], s.categorical[idx], s.target[idx]


class CustomerDataModule(pl.LightningDataModule):
    def __init__(
        self,
        source: Callable[[], EventLog],
        window_days: float = 30.0,
        num_cutoffs: int = 6,
        last_cutoff: str | None = None,
        backtest: int = 3,
        active_within_days: float | None = None,
        train_stride_days: float | None = None,
        user_embedding: Callable[[], pd.DataFrame | None] | None = None,
        batch_size: int = 512,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.source, self.window_days, self.num_cutoffs = source, window_days, num_cutoffs
        self.last_cutoff, self.backtest, self.active_within_days = (
            last_cutoff,
            backtest,
            active_within_days,
        )
        self.train_stride_days, self.batch_size, self.seed = train_stride_days, batch_size, seed
        self.user_embedding = user_embedding
        self.embeddings: pd.DataFrame | None = None
        self.log: EventLog | None = None
        self.tables: dict[pd.Timestamp, pd.DataFrame] = {}
        self.splits: dict[str, Split] = {}

    def load(self) -> EventLog:
        """Read the log, place the cut-offs, build every cut-off's table (once)."""
        if self.log is None:
            self.read_log()
            self.cutoffs = cutoffs = rolling_cutoffs(
                self.log.start, self.log.end, self.window_days, self.num_cutoffs,
                self.last_cutoff, self.log.name,
            )  # fmt: skip
            self.folds: list[Fold] = backtest_folds(
                cutoffs, self.backtest, self.window_days, self.train_stride_days
            )
            dates = set(cutoffs).union(*(f.train for f in self.folds))
            self.tables = {c: self.table_at(c) for c in sorted(dates)}
        return self.log

    def read_log(self) -> EventLog:
        """The event log and, where configured, the user vectors joined to every table."""
        self.log = self.source()
        self.embeddings = self.user_embedding() if self.user_embedding is not None else None
        return self.log

    def table_at(self, cutoff: pd.Timestamp, labels: bool = True) -> pd.DataFrame:
        """The customers at `cutoff` (those active within `active_within_days`, where set)."""
        table = customer_table(self.log, cutoff, self.window_days, labels)
        if self.active_within_days is not None:
            table = table[table["days_since_last"] <= self.active_within_days]
        if self.embeddings is not None:
            found = table.index.isin(self.embeddings.index)
            table = table.join(self.embeddings).fillna({c: 0.0 for c in self.embeddings.columns})
            table["has_embedding"] = found.astype(float)
        if table.empty:
            raise DataError(f"{self.log.name}: no customers at cut-off {cutoff}")
        return table

    @property
    def numeric(self) -> list[str]:
        flag = [] if self.embeddings is None else ["has_embedding"]
        return numeric_features(self.log.has_value) + flag

    @property
    def raw(self) -> list[str]:
        return [] if self.embeddings is None else list(self.embeddings.columns)

    @property
    def categorical(self) -> list[str]:
        return [] if self.log.customers is None else list(self.log.customers.columns)

    def prepare_fold(self, fold: Fold, target: str) -> FeatureEncoder:
        """Tensors of the fold's train / valid / test rows; the encoder is fitted on train only."""
        train = pd.concat([self.tables[c] for c in fold.train])
        encoder = FeatureEncoder.fit(train, self.numeric, self.categorical, self.raw)
        for name, table in (
            ("train", train),
            ("valid", self.tables[fold.valid]),
            ("test", self.tables[fold.test]),
        ):
            numeric, categorical = encoder.encode(table)
            y = torch.as_tensor(table[target].to_numpy(dtype="float32", copy=True))
            self.splits[name] = Split(numeric, categorical, y, table)
        return encoder

    def report(self) -> dict:
        """What data_report.json says: the log, the cut-offs, rows and label rates per cut-off."""
        per_cutoff = {
            str(c): {"customers": len(t), "churn_rate": float(t["churned"].mean()),
                     "purchase_rate": float(t["purchased"].mean()), "mean_value_next": float(t["value_next"].mean())}
            for c, t in self.tables.items()
            if c in self.cutoffs
        }  # fmt: skip
        return {
            "log": self.log.summary(),
            "source_report": self.log.report,
            "window_days": self.window_days,
            "active_within_days": self.active_within_days,
            "train_stride_days": self.train_stride_days,
            "user_embedding": None
            if self.embeddings is None
            else {
                "source": str(getattr(self.user_embedding, "run_dir", self.user_embedding)),
                "dim": len(self.embeddings.columns),
                "users": len(self.embeddings),
            },
            "cutoffs": per_cutoff,
            "folds": [
                {"train": [str(c) for c in f.train], "valid": str(f.valid), "test": str(f.test)}
                for f in self.folds
            ],
            "label_window_end": str(self.folds[0].test + self.window_days * DAY),
        }

    def train_dataloader(self) -> Batches:
        return Batches(self.splits["train"], self.batch_size, True, self.seed)

    def val_dataloader(self) -> Batches:
        return Batches(self.splits["valid"], 1 << 20, False, self.seed)

    def test_dataloader(self) -> Batches:
        return Batches(self.splits["test"], 1 << 20, False, self.seed)
