"""One training epoch of the default synthetic MF at 1, 2 and `auto` intra-op threads (CPU).

    python -m benchmarks.threads              # writes benchmarks/results/threads_cpu.json
    python -m benchmarks.threads --busy 1     # the same beside one CPU-bound process (threads_cpu_busy.json)
    python -m benchmarks.threads --smoke      # tiny data, one round, prints only (a check it runs)

Checks the rule of `threads: auto` (recsys/perf/threads.py) where it matters: run it on a quiet
machine, and again beside a busy one (e.g. another training run) to see the oversubscription
penalty that made the rule. Every setting trains the same model from the same seed in this one
process, through pl.Trainer with validation off; rounds are interleaved across settings (a shared
machine drifts), the first epoch of each fit is warm-up, and the median epoch is reported.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import platform
import statistics

import pytorch_lightning as pl
import torch

from benchmarks.common import compose_config, results_path
from benchmarks.throughput_loops import build_module, trainer_kwargs
from recsys.callbacks import EpochTimer
from recsys.data.datamodule import build_datamodule
from recsys.perf.threads import auto_threads, available_cores, resolve_threads

SMOKE = ["data.num_users=100", "data.num_items=100", "data.mean_interactions=10"]


def _spin(stop) -> None:
    while not stop.is_set():
        sum(range(10_000))


@contextlib.contextmanager
def busy_machine(processes: int):
    """`processes` CPU-bound neighbours for the duration: the shared machine the rule is for."""
    stop = multiprocessing.Event()
    workers = [multiprocessing.Process(target=_spin, args=(stop,)) for _ in range(processes)]
    for w in workers:
        w.start()
    try:
        yield
    finally:
        stop.set()
        for w in workers:
            w.join(timeout=10)


def epoch_seconds(cfg, dm, threads: int, epochs: int, warmup: int = 1) -> list[float]:
    """Training seconds of each epoch after `warmup` ones, at `threads` intra-op threads."""
    torch.set_num_threads(threads)
    pl.seed_everything(cfg.seed, verbose=False)
    timer = EpochTimer()
    kwargs = trainer_kwargs(torch.device("cpu"), warmup + epochs, None, timer)
    pl.Trainer(**kwargs).fit(build_module(cfg, dm), datamodule=dm)
    return timer.epoch_seconds[warmup:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="fits per setting, interleaved")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per fit")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny data, 1 epoch, no warm-up, write nothing"
    )
    parser.add_argument("--busy", type=int, default=0, help="CPU-bound processes running beside")
    args = parser.parse_args()
    rounds, epochs = (1, 1) if args.smoke else (args.rounds, args.epochs)

    cfg = compose_config(["trainer.accelerator=cpu", *(SMOKE if args.smoke else [])])
    dm = build_datamodule(cfg.data, cfg.seed)
    rows = len(dm.load().train)
    auto, why = resolve_threads("auto")
    settings = {"1": 1, "2": 2, "auto": auto}
    seconds: dict[str, list[float]] = {name: [] for name in settings}
    with busy_machine(args.busy):
        for _ in range(rounds):
            for name, threads in settings.items():
                warmup = 0 if args.smoke else 1
                seconds[name] += epoch_seconds(cfg, dm, threads, epochs, warmup)

    result = {
        "what": "one training epoch, default synthetic MF (conf/train.yaml), CPU, validation off",
        "train_rows": rows,
        "auto": {"threads": auto, "why": why, "rule_without_env": auto_threads(available_cores())},
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "load_avg_1m": os.getloadavg()[0],
        },  # fmt: skip
        "busy_neighbours": args.busy,
        "torch": torch.__version__,
        "settings": {
            name: {
                "threads": settings[name],
                "epoch_s": statistics.median(s),
                "rows_per_s": rows / statistics.median(s),
                "epochs_timed": len(s),
            }  # fmt: skip
            for name, s in seconds.items()
        },
    }
    text = json.dumps(result, indent=2)
    print(text)
    if not args.smoke:
        name = "threads_cpu_busy.json" if args.busy else "threads_cpu.json"
        results_path(name).write_text(text + "\n")


if __name__ == "__main__":
    main()
