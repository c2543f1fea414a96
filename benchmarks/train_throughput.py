"""Training throughput (interactions/s): a tutorial-style loop, a bare tensor loop and recsys, side by side.

    python benchmarks/train_throughput.py --data ml100k beauty --threads 1

All three train the same component with the same loss, batch size and thread count, in one process:
(a) tutorial: a `Dataset` returning one (user, positive, negative) triple per `__getitem__`, the
    default `DataLoader`, dense Adam (the shape of most recommender tutorials); for two-tower also
    `tutorial_features`, whose `Dataset` fetches each example's side features, as two-tower
    tutorials do (benchmarks/tutorial_features.py), while `tutorial` passes ids only;
(b) bare: index slices of a permutation, negatives from `torch.randint`, no Lightning, with the
    optimizer recsys builds from the config (Adam for MF, AdamW for two-tower, lazy Adam on the
    tables for `*_sparse`);
(c) recsys: `InteractionDataModule` + `RetrievalModule` through `pl.Trainer`, validation off, with
    the data config's loader settings (`steps_per_batch` included).
Steady state: one warm-up epoch, then whole epochs until `--seconds` have passed. Results are printed
as ratios and saved to benchmarks/results/train_throughput_<device>.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from datetime import date

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, Dataset

from benchmarks.common import DATASETS, load_datamodule, results_path
from recsys.callbacks import EpochTimer
from recsys.models.factory import build_loss, build_scorer
from recsys.models.retrieval import RetrievalModule

VARIANTS = {  # name -> config overrides
    "mf_bpr": ["model=mf", "model.loss=bpr"],
    "mf_bpr_sparse": ["model=mf", "model.loss=bpr", "optimizer=sparse_adam"],
    "mf_softmax": ["model=mf", "model.loss=softmax"],
    "two_tower": ["model=two_tower"],
}


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


def step(scorer, loss_fn, optimizer, users, items, negatives, l2: float = 0.0) -> None:
    """The same math as RetrievalModule.training_loss: negatives embedded only when the loss uses
    them, and the row L2 term when the config has one."""
    if not getattr(loss_fn, "uses_negatives", True):
        negatives = negatives[:, :0]
    b, n = negatives.shape
    user = scorer.user_embedding(users)
    both = scorer.item_embedding(torch.cat([items, negatives.reshape(-1)]))
    loss = loss_fn(user, both[:b], both[b:].view(b, n, both.shape[-1]), items, negatives)
    if l2 > 0:
        loss = loss + l2 * (user.pow(2).sum() + both.pow(2).sum()) / b
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


def tutorial(cfg, dm, seconds: float, device: torch.device) -> float:
    """Always dense Adam, as tutorials do (so the scorer is built with dense gradients)."""
    data = dm.load()
    dense = OmegaConf.merge(
        cfg.model.scorer, {"sparse": False} if "sparse" in cfg.model.scorer else {}
    )
    scorer, loss_fn = (
        build_scorer(dense, data).to(device),
        build_loss(cfg.model, dm).to(device),
    )
    optimizer = torch.optim.Adam(scorer.parameters(), lr=1e-3)
    ds = TripletDataset(data.train.users, data.train.items, data.num_items, dm.num_negatives)
    loader = DataLoader(ds, batch_size=dm.batch_size, shuffle=True)

    def run_epoch():
        for users, items, negatives in loader:
            step(scorer, loss_fn, optimizer, users.to(device), items.to(device),
                 negatives.to(device), cfg.model.module.embedding_l2)  # fmt: skip
        sync(device)

    return timed_epochs(run_epoch, len(ds), seconds)


def tutorial_with_features(cfg, dm, seconds: float) -> float:
    """Two-tower only: the tutorial loop whose Dataset also fetches each example's side features."""
    from benchmarks.tutorial_features import feature_tutorial_epoch_fn

    data = dm.load()
    scorer, loss_fn = build_scorer(cfg.model.scorer, data), build_loss(cfg.model, dm)
    optimizer = torch.optim.Adam(scorer.parameters(), lr=1e-3)
    run_epoch, rows = feature_tutorial_epoch_fn(
        scorer, loss_fn, optimizer, data, dm.batch_size, cfg.model.module.embedding_l2
    )
    return timed_epochs(run_epoch, rows, seconds)


def bare(cfg, dm, seconds: float, device: torch.device) -> float:
    data = dm.load()
    scorer, loss_fn = build_scorer(cfg.model.scorer, data), build_loss(cfg.model, dm)
    # The configured optimizer exactly as recsys builds it (Adam/AdamW, sparse tables, fused on CUDA).
    module = instantiate(cfg.model.module, scorer=scorer, loss=loss_fn, _convert_="all").to(device)
    optimizer = module.configure_optimizers()
    users, items, n = data.train.users.to(device), data.train.items.to(device), len(data.train)

    def run_epoch():
        order = torch.randperm(n, device=device)
        for start in range(0, n, dm.batch_size):
            idx = order[start : start + dm.batch_size]
            negatives = torch.randint(
                data.num_items, (idx.numel(), dm.num_negatives), device=device
            )
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                step(scorer, loss_fn, optimizer, users[idx], items[idx], negatives,
                     cfg.model.module.embedding_l2)  # fmt: skip
        sync(device)

    return timed_epochs(run_epoch, n, seconds)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def trainer_kwargs(device: torch.device, epochs: int, timer: EpochTimer) -> dict:
    on_cuda = device.type == "cuda"
    return dict(max_epochs=epochs, accelerator="gpu" if on_cuda else "cpu", devices=1,
                precision="bf16-mixed" if on_cuda else "32-true", logger=False, enable_checkpointing=False,
                enable_progress_bar=False, limit_val_batches=0, enable_model_summary=False, callbacks=[timer])  # fmt: skip


def recsys_trainer(cfg, dm, seconds: float, device: torch.device) -> float:
    data = dm.load()
    scorer = build_scorer(cfg.model.scorer, data)
    module: RetrievalModule = instantiate(
        cfg.model.module, scorer=scorer, loss=build_loss(cfg.model, dm), _convert_="all"
    )
    # Estimate how many epochs fill `seconds` from one warm-up epoch, then time them.
    timer = EpochTimer()
    pl.Trainer(**trainer_kwargs(device, 2, timer)).fit(module, datamodule=dm)
    epochs = max(3, int(seconds / timer.epoch_seconds[-1]) + 1)
    timer = EpochTimer()
    pl.Trainer(**trainer_kwargs(device, epochs, timer)).fit(module, datamodule=dm)
    return timer.summary()["time/train_rows_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", nargs="+", default=["ml100k", "beauty"], choices=sorted(DATASETS))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (bf16 autocast on cuda)")
    parser.add_argument(
        "--skip-tutorial", action="store_true", help="leave out the slow tutorial loop"
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="timed seconds per measurement")
    parser.add_argument(
        "overrides", nargs="*", help="extra config overrides, e.g. data.loader.steps_per_batch=1"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rows = []
    for data_name in args.data:
        for variant in args.variants:
            overrides = [
                *VARIANTS[variant],
                f"data.loader.batch_size={args.batch_size}",
                "data.loader.num_negatives=1",
                *args.overrides,
            ]
            cfg, dm = load_datamodule(data_name, overrides)
            if dm is None:
                continue
            pl.seed_everything(0, verbose=False)
            row = {
                "data": data_name,
                "variant": variant,
                "batch_size": args.batch_size,
                "steps_per_batch": dm.steps_per_batch,
                "device": args.device,
            }
            if not args.skip_tutorial:
                row["tutorial"] = tutorial(cfg, dm, args.seconds, device)
                data = dm.load()
                has_features = bool(data.user_features) or bool(data.item_features)
                if variant == "two_tower" and has_features and device.type == "cpu":
                    row["tutorial_features"] = tutorial_with_features(cfg, dm, args.seconds)
            row["bare"] = bare(cfg, dm, args.seconds, device)
            row["recsys"] = recsys_trainer(cfg, dm, args.seconds, device)
            row["recsys_vs_bare"] = row["recsys"] / row["bare"]
            if "tutorial" in row:
                row["recsys_vs_tutorial"] = row["recsys"] / row["tutorial"]
            if "tutorial_features" in row:
                row["recsys_vs_tutorial_features"] = row["recsys"] / row["tutorial_features"]
            rows.append(row)
            print(
                json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}),
                flush=True,
            )
    machine = (
        torch.cuda.get_device_name()
        if device.type == "cuda"
        else platform.processor() or platform.machine()
    )
    out = {"date": str(date.today()), "machine": machine,
           "threads": args.threads, "torch": torch.__version__, "rows": rows}  # fmt: skip
    results_path(f"train_throughput_{device.type}.json").write_text(
        json.dumps(out, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
