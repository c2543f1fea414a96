"""LightningDataModule over any data source: the data are loaded once and kept as tensors on the
training device; batches are slices, negatives are sampled there (see `loaders`).
"""

from __future__ import annotations

from collections.abc import Callable

import hydra
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig

from recsys.csr import UserItemCSR
from recsys.data.ingest.labels import downsample_negatives
from recsys.data.ingest.report import drop_after_finish
from recsys.data.ingest.split_check import check_splits
from recsys.data.interactions import InteractionData
from recsys.data.loaders import NegativeSampler, RankingBatches, TrainBatches


class InteractionDataModule(pl.LightningDataModule):
    def __init__(
        self,
        source: Callable[[], InteractionData],
        batch_size: int = 1024,
        num_negatives: int = 1,
        negative_sampling: str = "uniform",
        negative_alpha: float = 1.0,
        eval_chunk_elements: int = 2**24,
        seed: int = 0,
        label_negative_keep_rate: float = 1.0,
        steps_per_batch: int = 1,
    ):
        super().__init__()
        self.source = source
        self.batch_size, self.num_negatives, self.seed = batch_size, num_negatives, seed
        self.negative_sampling, self.negative_alpha = negative_sampling, negative_alpha
        self.eval_chunk_elements = eval_chunk_elements
        self.steps_per_batch = steps_per_batch  # optimizer steps per Lightning batch (TrainBatches)
        # w: share of label-0 training rows kept; the one place down-sampling is configured.
        self.label_negative_keep_rate = label_negative_keep_rate
        self.data: InteractionData | None = None

    # ----- loading -----
    def load(self) -> InteractionData:
        """Load (once) and return the data; also usable without a Trainer. An empty validation or
        test split is a DataError here, before any model or Trainer is built."""
        if self.data is None:
            data = self.source()
            if self.label_negative_keep_rate < 1 and data.train.labels is not None:
                rows_in = len(data.train)
                data.train, dropped = downsample_negatives(
                    data.train, self.label_negative_keep_rate, self.seed
                )
                drop_after_finish(
                    data.report, "downsample_label_negatives", "train", rows_in, dropped,
                    "label-0 training row not drawn (loader.label_negative_keep_rate)",
                    keep_rate=self.label_negative_keep_rate,
                )  # fmt: skip
            data.report["label_negative_keep_rate"] = self.label_negative_keep_rate
            check_splits(data)
            self.data = data
        return self.data

    def labelled_rows(self, stage: str) -> dict[str, torch.Tensor] | None:
        """users, items, labels (and true probabilities when known) of a split; None if unlabelled."""
        data = self.load()
        split = {"train": data.train, "val": data.valid, "test": data.test}[stage]
        if split.labels is None:
            return None
        rows = {"users": split.users, "items": split.items, "labels": split.labels}
        if split.label_probs is not None:
            rows["label_probs"] = split.label_probs
        return rows

    def setup(self, stage: str | None = None) -> None:
        self.load()

    @property
    def item_counts(self) -> torch.Tensor:
        data = self.load()
        return torch.bincount(data.train.items, minlength=data.num_items)

    def negative_sampler(self) -> NegativeSampler:
        return NegativeSampler(
            self.load().num_items, self.item_counts, self.negative_sampling, self.negative_alpha
        )

    def _device(self) -> torch.device:
        trainer = self.trainer  # None until Lightning attaches the datamodule
        return trainer.strategy.root_device if trainer is not None else torch.device("cpu")

    def _epoch(self) -> int:
        trainer = self.trainer  # None until Lightning attaches the datamodule
        return trainer.current_epoch if trainer is not None else 0

    def _shard(self) -> dict[str, int]:
        """This process's (rank, world_size) under DDP; Lightning adds no sampler to our iterables."""
        trainer = self.trainer  # None until Lightning attaches the datamodule
        if trainer is None:
            return {"rank": 0, "world_size": 1}
        return {"rank": trainer.global_rank, "world_size": trainer.world_size}

    # ----- loaders -----
    def train_batches(
        self, device: torch.device | None = None, rank: int = 0, world_size: int = 1
    ) -> TrainBatches:
        """All training rows, or this rank's shard of each epoch's permutation under DDP."""
        train = self.load().train
        tensors = {"users": train.users, "items": train.items}
        if train.labels is not None:
            tensors["labels"] = train.labels
        loader = TrainBatches(
            tensors,
            self.batch_size,
            self.num_negatives,
            self.negative_sampler(),
            self.seed,
            self._epoch,
            rank=rank,
            world_size=world_size,
            steps_per_batch=self.steps_per_batch,
        )
        return loader.to(device or self._device())

    def ranking_batches(
        self, stage: str, device: torch.device | None = None, rank: int = 0, world_size: int = 1
    ) -> RankingBatches:
        """Users with at least one target in `stage` ('val' or 'test'), with seen items masked.

        Validation masks training items; test masks training and validation items (both are known
        interactions at test time). Under DDP each rank ranks a contiguous, disjoint slice of the
        users (no padding, so no user is counted twice); the module gathers the per-user results.
        """
        data = self.load()
        train = UserItemCSR.from_pairs(data.train.users, data.train.items, data.num_users)
        if stage == "val":
            seen, split = train, data.valid
        elif stage == "test":
            valid = UserItemCSR.from_pairs(data.valid.users, data.valid.items, data.num_users)
            seen, split = train.union(valid), data.test
        else:
            raise ValueError(f"stage must be 'val' or 'test', got {stage!r}")
        targets = UserItemCSR.from_pairs(split.users, split.items, data.num_users)
        users = torch.nonzero(targets.row_lengths() > 0).view(-1)
        if users.numel() < world_size:  # a rank without batches would skip the gather and hang
            raise ValueError(f"{stage}: {users.numel()} users for {world_size} DDP processes")
        users = users.tensor_split(world_size)[rank]
        chunk = max(1, self.eval_chunk_elements // max(1, data.num_items))
        return RankingBatches(users, seen, targets, chunk).to(device or self._device())

    def train_dataloader(self) -> TrainBatches:
        return self.train_batches(**self._shard())

    def val_dataloader(self) -> RankingBatches:
        return self.ranking_batches("val", **self._shard())

    def test_dataloader(self) -> RankingBatches:
        return self.ranking_batches("test", **self._shard())


def build_datamodule(data_cfg: DictConfig, seed: int) -> InteractionDataModule:
    """`data` config = a source (`_target_` and its user-facing keys) plus `loader` knobs.

    Keeping the source keys at the top level makes overrides short: `data.root=...`, `data.train=...`.
    """
    source_cfg = {k: v for k, v in data_cfg.items() if k != "loader"}
    source = hydra.utils.instantiate(source_cfg)
    return InteractionDataModule(source, seed=seed, **(data_cfg.get("loader") or {}))
