"""Epoch time and peak memory as the log grows: 1M, 5M, 20M, 50M interactions, MF and two-tower.

    python -m benchmarks.scaling --device cpu --models mf mf_rowwise two_tower --max-steps two_tower=64

Models: MF with lazy Adam on its tables (`optimizer=sparse_adam`), MF with row-wise Adagrad
(`optimizer=rowwise_adagrad`), the two-tower with sparse id tables.

Users and items grow with the log (users = n / 50, items = n / 500, Zipf-popular items). Each size
runs in its own child process, so the host peak (RSS high-water mark) is that size's alone; on CUDA
the device peak is `torch.cuda.max_memory_allocated`. The memory estimate recsys prints before
training is recorded beside the measured peak. With `--max-steps`, the epoch time is extrapolated
from the steady-state rate of that many steps (labelled so in the output). Writes
benchmarks/results/scaling_<device>.json and a log-log plot scaling_<device>.png.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from datetime import date

import numpy as np
import torch

from benchmarks.common import ROOT, compose_config, results_path

MODELS = {
    "mf": ["model=mf", "optimizer=sparse_adam"],
    "mf_rowwise": ["model=mf", "optimizer=rowwise_adagrad"],  # one accumulator per table row
    "two_tower": ["model=two_tower", "optimizer=sparse_adam"],  # id tables grow to 1M users
}


def synthetic_log(n: int, seed: int = 0):
    """InteractionData of n rows: uniform users, Zipf items, 98/1/1 random split, no side features."""
    from recsys.data.ingest.splits import random_split
    from recsys.data.interactions import InteractionData, Interactions

    num_users, num_items = max(1000, n // 50), max(200, n // 500)
    g = torch.Generator().manual_seed(seed)
    users = torch.randint(num_users, (n,), generator=g)
    ranks = torch.arange(1, num_items + 1, dtype=torch.float64)
    items = torch.multinomial(ranks**-1.05, n, replacement=True, generator=g)
    train, valid, test = random_split(Interactions(users, items), 0.01, 0.01, seed)
    return InteractionData(
        train, valid, test, np.arange(num_users), np.arange(num_items), name=f"scaling_{n}"
    )


def child(
    n: int, model: str, device: str, max_steps: int | None, batch_size: int, overrides: list[str]
) -> None:
    """Runs in a subprocess: one size, one model; prints a JSON line."""
    import pytorch_lightning as pl
    from hydra.utils import instantiate

    from recsys.callbacks import EpochTimer
    from recsys.data.datamodule import InteractionDataModule
    from recsys.models.contracts import ScorerInputs
    from recsys.models.factory import build_loss, build_scorer
    from recsys.perf.allocator import retain_freed_memory
    from recsys.perf.memory import estimate_training_memory

    cfg = compose_config([*MODELS[model], f"data.loader.batch_size={batch_size}", *overrides])
    if cfg.get("retain_freed_memory", True):  # as scripts/train.py does
        retain_freed_memory()
    data = synthetic_log(n)
    loader = cfg.data.loader
    dm = InteractionDataModule(
        lambda: data,
        batch_size=batch_size,
        num_negatives=loader.num_negatives,
        steps_per_batch=loader.steps_per_batch,
    )
    scorer = build_scorer(cfg.model.scorer, ScorerInputs.from_data(data))
    module = instantiate(
        cfg.model.module,
        scorer=scorer,
        loss=build_loss(cfg.model, dm.item_counts, dm.negative_sampler().item_probabilities()),
        _convert_="all",
    )
    estimate = estimate_training_memory(module, dm)
    timer = EpochTimer()
    on_cuda = device == "cuda"
    steps = dm.train_batches(torch.device("cpu")).num_steps  # optimizer steps in an epoch
    limit = min(steps, max_steps) if max_steps else steps
    lightning_batches = -(-limit // dm.steps_per_batch)  # each holds steps_per_batch steps
    limit = min(steps, lightning_batches * dm.steps_per_batch)
    trainer = pl.Trainer(
        max_epochs=2, accelerator="gpu" if on_cuda else "cpu", devices=1, precision="bf16-mixed" if on_cuda else "32-true",
        logger=False, enable_checkpointing=False, enable_progress_bar=False, limit_val_batches=0,
        limit_train_batches=lightning_batches, enable_model_summary=False, callbacks=[timer],
    )  # fmt: skip
    trainer.fit(module, datamodule=dm)
    rows_per_s = (
        limit * batch_size / timer.epoch_seconds[-1]
        if limit < steps
        else len(data.train) / timer.epoch_seconds[-1]
    )
    row = {
        "interactions": n, "model": model, "device": device, "users": data.num_users, "items": data.num_items,
        "batch_size": batch_size, "epoch_s": len(data.train) / rows_per_s, "rows_per_s": rows_per_s,
        "epoch_extrapolated_from_steps": limit if limit < steps else None,
        "host_peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
        "device_peak_gib": torch.cuda.max_memory_allocated() / 1024**3 if on_cuda else None,
        "estimate_gib": estimate["total_gib"],
    }  # fmt: skip
    print("RESULT " + json.dumps(row), flush=True)


def plot(rows: list[dict], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    for model in sorted({r["model"] for r in rows}):
        pts = sorted((r["interactions"], r["epoch_s"]) for r in rows if r["model"] == model)
        ax.loglog(*zip(*pts, strict=True), marker="o", label=model)
    ax.set_xlabel("interactions")
    ax.set_ylabel("epoch time (s)")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", nargs="+", type=float, default=[1e6, 5e6, 2e7, 5e7])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=8192)
    parser.add_argument(
        "--max-steps", nargs="+", default=None,
        help="time this many steps and extrapolate: N for every model, or MODEL=N each",
    )  # fmt: skip
    parser.add_argument("--child", nargs=2, metavar=("N", "MODEL"), help=argparse.SUPPRESS)
    parser.add_argument(
        "overrides",
        nargs="*",
        help="config overrides for every run, e.g. model.module.compile=true",
    )
    args = parser.parse_args()
    max_steps = {}
    for item in args.max_steps or []:
        model, _, n = item.rpartition("=")
        max_steps.update({m: int(n) for m in ([model] if model else MODELS)})
    if args.child:
        n, model = int(float(args.child[0])), args.child[1]
        child(n, model, args.device, max_steps.get(model), args.batch_size, args.overrides)
        return
    rows = []
    for model in args.models:
        for n in args.sizes:
            cmd = [sys.executable, "-m", "benchmarks.scaling", "--child", str(int(n)), model, "--device", args.device,
                   "--batch-size", str(args.batch_size), *args.overrides] + (["--max-steps", f"{model}={max_steps[model]}"] if model in max_steps else [])  # fmt: skip
            proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode != 0 or not lines:
                print(f"{model} n={int(n)} failed:\n{proc.stderr[-2000:]}")
                continue
            rows.append(json.loads(lines[-1][7:]))
            print(
                json.dumps(
                    {k: round(v, 3) if isinstance(v, float) else v for k, v in rows[-1].items()}
                ),
                flush=True,
            )
    fits = {}
    for model in {r["model"] for r in rows}:
        pts = [(r["interactions"], r["epoch_s"]) for r in rows if r["model"] == model]
        if len(pts) >= 2:
            x, y = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
            fits[model] = float(np.polyfit(x, y, 1)[0])
    print("log-log exponent of epoch time vs interactions:", json.dumps(fits))
    device = args.device
    out = {"date": str(date.today()), "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
           "command": "python -m benchmarks.scaling " + " ".join(sys.argv[1:]), "overrides": args.overrides, "rows": rows, "loglog_exponent": fits}  # fmt: skip
    results_path(f"scaling_{device}.json").write_text(json.dumps(out, indent=2) + "\n")
    if rows:
        plot(rows, results_path(f"scaling_{device}.png"))


if __name__ == "__main__":
    main()
