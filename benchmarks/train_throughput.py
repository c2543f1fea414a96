"""Training throughput (interactions/s): a tutorial-style loop, a bare tensor loop and recsys, side by side.

    python -m benchmarks.train_throughput --data ml100k beauty --threads 1

All train the same RetrievalModule (scorer, loss, row L2: `RetrievalModule.training_loss`) with the
same batch size and thread count; only the input pipeline and the optimizer differ:
(a) tutorial: a `Dataset` returning one (user, positive, negative) triple per `__getitem__`, the
    default `DataLoader`, dense Adam (the shape of most recommender tutorials); for two-tower also
    `tutorial_features`, whose `Dataset` fetches each example's side features, as two-tower
    tutorials do (benchmarks/tutorial_features.py), while `tutorial` passes ids only;
(b) bare: index slices of a permutation, negatives from `torch.randint`, no Lightning, with the
    optimizer recsys builds from the config (Adam for MF, AdamW for two-tower, lazy Adam on the
    tables for `*_sparse`) and the module's `compile` setting (the tutorial always runs eager);
(c) recsys: `InteractionDataModule` + `RetrievalModule` through `pl.Trainer`, validation off, with
    the data config's loader settings (`steps_per_batch` included).
(b) and (c) keep freed host memory mapped as `scripts/train.py` does (`retain_freed_memory`,
recsys/perf/allocator.py), so recsys / bare compares frameworks, not allocators; the tutorial runs on
glibc's defaults, as a hand-written script would.
Each measurement runs in a fresh process: in one long process a loop's speed depended on what ran
before it (the dense-Adam tutorial measured 2x faster after other Beauty runs, through glibc's
allocator state). Steady state: 20 warm-up steps (recsys: a short warm-up fit), then `--seconds`
of training; `--rounds` measurements per loop, interleaved across loops, and the median is
reported (a shared VM drifts by 10-20% over tens of seconds). Printed as ratios and saved to
benchmarks/results/train_throughput_<device>.json with every run.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
from datetime import date

import pytorch_lightning as pl
import torch

from benchmarks.common import DATASETS, load_datamodule, results_path
from benchmarks.throughput_loops import TripletDataset as TripletDataset
from benchmarks.throughput_loops import bare, recsys_trainer, tutorial, tutorial_features
from benchmarks.throughput_loops import build_module as build_module
from benchmarks.throughput_loops import train_step as train_step
from recsys.perf.allocator import retain_freed_memory

SPARSE_BPR = ["model=mf", "model.loss=bpr", "optimizer=sparse_adam"]
VARIANTS = {  # name -> config overrides
    "mf_bpr": ["model=mf", "model.loss=bpr"],
    "mf_bpr_sparse": SPARSE_BPR,
    "mf_bpr_sparse_compiled": [*SPARSE_BPR, "model.module.compile=true"],
    "mf_bpr_rowwise": ["model=mf", "model.loss=bpr", "optimizer=rowwise_adagrad"],
    "mf_softmax": ["model=mf", "model.loss=softmax"],
    "two_tower": ["model=two_tower"],
    "two_tower_sparse": ["model=two_tower", "optimizer=sparse_adam"],
}
LOOPS = ("tutorial", "tutorial_features", "bare", "recsys")  # in benchmarks/throughput_loops.py
# (`X as X` above: build_module, train_step and TripletDataset stay importable from this module,
# as benchmarks/compile_ab.py and benchmarks/time_to_quality.py import them.)


def measure(data_name: str, variant: str, loop: str, args) -> dict | None:
    """One loop on one data set and variant, in this process (`--worker`); None where it can't run."""
    torch.set_num_threads(args.threads)
    overrides = [*VARIANTS[variant], f"data.loader.batch_size={args.batch_size}",
                 "data.loader.num_negatives=1", *args.overrides]  # fmt: skip
    cfg, dm = load_datamodule(data_name, overrides)
    if dm is None:
        return None
    if loop in ("bare", "recsys") and cfg.get("retain_freed_memory", True):
        retain_freed_memory()
    pl.seed_everything(0, verbose=False)
    run = {"tutorial": tutorial, "tutorial_features": tutorial_features, "bare": bare,
           "recsys": recsys_trainer}[loop]  # fmt: skip
    rows_per_s = run(cfg, dm, args.seconds, torch.device(args.device))
    if rows_per_s is None:  # the loop does not apply (tutorial_features without side features)
        return None
    return {"rows_per_s": rows_per_s, "steps_per_batch": dm.steps_per_batch}


def measure_in_child(data_name: str, variant: str, loop: str, argv: list[str]) -> dict | None:
    command = [sys.executable, "-m", "benchmarks.train_throughput", *argv,
               "--worker", data_name, variant, loop]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    results = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    for line in done.stdout.splitlines():
        if line.startswith("skipping"):
            print(line)  # the data set is not there: the child said which file it looked for
    if done.returncode != 0 or not results:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return json.loads(results[-1].removeprefix("RESULT "))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", nargs="+", default=["ml100k", "beauty"], choices=sorted(DATASETS))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (bf16 autocast on cuda)")
    parser.add_argument(
        "--skip-tutorial", action="store_true", help="leave out the slow tutorial loops"
    )
    parser.add_argument("--seconds", type=float, default=4.0, help="timed seconds per measurement")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="measurements per loop, interleaved; the median counts",
    )
    parser.add_argument(
        "--worker", nargs=3, metavar=("DATA", "VARIANT", "LOOP"), help=argparse.SUPPRESS
    )
    parser.add_argument(
        "overrides", nargs="*", help="extra config overrides, e.g. data.loader.steps_per_batch=1"
    )
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    if args.worker:
        print("RESULT " + json.dumps(measure(*args.worker, args)), flush=True)
        return
    argv = sys.argv[1:]
    loops = [loop for loop in LOOPS if not (args.skip_tutorial and loop.startswith("tutorial"))]
    rows = []
    for data_name in args.data:
        for variant in args.variants:
            row = {"data": data_name, "variant": variant, "batch_size": args.batch_size,
                   "device": args.device}  # fmt: skip
            runs: dict[str, list[float]] = {}
            for _ in range(
                args.rounds
            ):  # interleaved, so a slow spell of the machine hits all loops
                for loop in loops:
                    result = measure_in_child(data_name, variant, loop, argv)
                    if result is not None:
                        runs.setdefault(loop, []).append(result["rows_per_s"])
                        row["steps_per_batch"] = result["steps_per_batch"]
            row.update({loop: statistics.median(values) for loop, values in runs.items()})
            row["runs"] = runs
            if "recsys" not in row:
                continue  # data set not found (the child printed why)
            for baseline in ("bare", "tutorial", "tutorial_features"):
                if baseline in row:
                    row[f"recsys_vs_{baseline}"] = row["recsys"] / row[baseline]
            rows.append(row)
            shown = {
                k: round(v, 3) if isinstance(v, float) else v for k, v in row.items() if k != "runs"
            }
            print(json.dumps(shown), flush=True)
    device = torch.device(args.device)
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
