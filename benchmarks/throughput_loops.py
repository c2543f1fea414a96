"""The training loops benchmarks/train_throughput.py times, each returning rows per second.

(a) `tutorial` and `tutorial_features`: a per-example `Dataset`, the default `DataLoader`, dense Adam;
(b) `bare`: permutation slices and `torch.randint` negatives, the optimizer recsys configures;
(c) `recsys_trainer`: `InteractionDataModule` + `RetrievalModule` through `pl.Trainer`.
The module docstring of benchmarks/train_throughput.py says what each compares and how it is timed.
Also used by benchmarks/compile_ab.py and benchmarks/time_to_quality.py (`build_module`,
`train_step`, `TripletDataset`).
"""

from __future__ import annotations

import math
import random
import statistics
import time

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, Dataset

from recsys.callbacks import EpochTimer
from recsys.models.contracts import ScorerInputs
from recsys.models.factory import build_loss, build_scorer
from recsys.models.retrieval import RetrievalModule


class TripletDataset(Dataset):
    def __init__(
        self, users: torch.Tensor, items: torch.Tensor, num_items: int, num_negatives: int
    ):
        self.users, self.items = users.tolist(), items.tolist()
        self.num_items, self.num_negatives = num_items, num_negatives

    def __len__(self) -> int:
        return len(self.users)

    def __getitem__(self, i: int):
        negatives = [random.randrange(self.num_items) for _ in range(self.num_negatives)]
        return self.users[i], self.items[i], torch.tensor(negatives)


def build_module(cfg, dm, tutorial: bool = False) -> RetrievalModule:
    """The configured RetrievalModule; `tutorial`: as a tutorial has it, with dense gradients (for
    its dense Adam) and no torch.compile."""
    scorer_cfg, module_cfg = cfg.model.scorer, cfg.model.module
    if tutorial:
        if "sparse" in scorer_cfg:
            scorer_cfg = OmegaConf.merge(scorer_cfg, {"sparse": False})
        module_cfg = OmegaConf.merge(module_cfg, {"compile": False})
    scorer = build_scorer(scorer_cfg, ScorerInputs.from_data(dm.load()))
    loss = build_loss(cfg.model, dm.item_counts, dm.negative_sampler().item_probabilities())
    return instantiate(module_cfg, scorer=scorer, loss=loss, _convert_="all")


def train_step(module: RetrievalModule, optimizer, batch: dict[str, torch.Tensor]) -> None:
    """recsys's own minibatch math (`training_loss`), outside Lightning."""
    loss = module.training_loss(batch)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def timed_epochs(run_epoch, rows: int, seconds: float) -> float:
    run_epoch()  # warm-up
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        run_epoch()
        done += rows
    return done / (time.perf_counter() - start)


def timed_steps(step, batches, seconds: float, device: torch.device, warmup: int = 20) -> float:
    """Rows per second of `step` over `batches` for `seconds`, after `warmup` steps."""
    for _ in range(warmup):
        step(next(batches))
    sync(device)
    rows, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        batch = next(batches)
        step(batch)
        rows += batch["users"].numel()
    sync(device)
    return rows / (time.perf_counter() - start)


def tutorial(cfg, dm, seconds: float, device: torch.device) -> float:
    """Always dense Adam, as tutorials do (so the scorer is built with dense gradients)."""
    data = dm.load()
    module = build_module(cfg, dm, tutorial=True).to(device)
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
    ds = TripletDataset(data.train.users, data.train.items, data.num_items, dm.num_negatives)
    loader = DataLoader(ds, batch_size=dm.batch_size, shuffle=True)

    def batches():
        while True:
            for users, items, negatives in loader:
                batch = {"users": users, "items": items, "negatives": negatives}
                yield {k: v.to(device) for k, v in batch.items()}

    return timed_steps(lambda b: train_step(module, optimizer, b), batches(), seconds, device)


def tutorial_features(cfg, dm, seconds: float, device: torch.device) -> float | None:
    """Two-tower with side features only: the tutorial loop whose Dataset fetches feature rows."""
    from benchmarks.tutorial_features import feature_tutorial_epoch_fn

    data = dm.load()
    has_features = bool(data.user_features) or bool(data.item_features)
    if cfg.model.name != "two_tower" or not has_features or device.type != "cpu":
        return None
    module = build_module(cfg, dm, tutorial=True)  # dense gradients for the tutorial's Adam
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
    run_epoch, rows = feature_tutorial_epoch_fn(
        module.scorer, module.loss_fn, optimizer, data, dm.batch_size, module.embedding_l2
    )
    return timed_epochs(run_epoch, rows, seconds)


def bare(cfg, dm, seconds: float, device: torch.device) -> float:
    data = dm.load()
    module = build_module(cfg, dm).to(device)
    # The configured optimizer exactly as recsys builds it (Adam/AdamW, sparse tables, fused on CUDA).
    optimizer = module.configure_optimizers()
    users, items, n = data.train.users.to(device), data.train.items.to(device), len(data.train)

    def batches():
        while True:
            order = torch.randperm(n, device=device)
            for start in range(0, n, dm.batch_size):
                idx = order[start : start + dm.batch_size]
                negatives = torch.randint(
                    data.num_items, (idx.numel(), dm.num_negatives), device=device
                )
                yield {"users": users[idx], "items": items[idx], "negatives": negatives}

    def step(batch):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            train_step(module, optimizer, batch)

    return timed_steps(step, batches(), seconds, device)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def trainer_kwargs(device: torch.device, epochs: int, batches: int, timer: EpochTimer) -> dict:
    on_cuda = device.type == "cuda"
    return dict(max_epochs=epochs, limit_train_batches=batches, accelerator="gpu" if on_cuda else "cpu",
                devices=1, precision="bf16-mixed" if on_cuda else "32-true", logger=False,
                enable_checkpointing=False, enable_progress_bar=False, limit_val_batches=0,
                enable_model_summary=False, callbacks=[timer])  # fmt: skip


def recsys_trainer(cfg, dm, seconds: float, device: torch.device) -> float:
    """Through pl.Trainer: a short warm-up fit, then epochs cut to about a second each
    (`limit_train_batches`), the first of them discarded as warm-up too."""
    module = build_module(cfg, dm)
    rows_per_batch = dm.batch_size * dm.steps_per_batch  # one Lightning batch of full minibatches
    full_batches = max(1, len(dm.load().train) // dm.batch_size // dm.steps_per_batch)
    warmup_batches = min(full_batches, 4)
    timer = EpochTimer()
    pl.Trainer(**trainer_kwargs(device, 1, warmup_batches, timer)).fit(module, datamodule=dm)
    rate = warmup_batches * rows_per_batch / timer.epoch_seconds[-1]
    batches = max(1, min(full_batches, round(rate / rows_per_batch)))  # ~1 s per epoch
    epochs = 1 + max(2, math.ceil(seconds * rate / (batches * rows_per_batch)))
    timer = EpochTimer()
    pl.Trainer(**trainer_kwargs(device, epochs, batches, timer)).fit(module, datamodule=dm)
    return batches * rows_per_batch / statistics.median(timer.epoch_seconds[1:])
