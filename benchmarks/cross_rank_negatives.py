"""Cross-rank in-batch negatives, ablated: 2-process CPU DDP (gloo) on MovieLens-100K u1.

Two rows of `experiment=ml100k_two_tower` under `trainer=ddp`, the same seeds and epochs, that
differ only in `model.losses.inbatch.cross_rank`: off, each rank's rows are scored against its own
batch's items (B - 1 in-batch negatives); on, against the global batch of both ranks (2B - 1),
with the logQ correction and accidental-hit masking on the global batch. Each row is trained in a
child process through `scripts/train.py`, as a user runs it (benchmarks/ablation.py's `run_one`).

    RECSYS_DATA_DIR=/work/shared/data python -m benchmarks.cross_rank_negatives --epochs 25 --seeds 42 1

The table gives the mean and sample standard deviation over seeds (the seed-to-seed spread is the
yardstick for the difference between the rows).

`trainer.strategy.find_unused_parameters=true`: the two-tower's user tower holds a multi-hot table
that ML-100K's user features never use, which plain DDP refuses; both rows pay the same cost.
Results: benchmarks/results/cross_rank_negatives_cpu.json and .md (runs under
/tmp/recsys-cross-rank).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from benchmarks.ablation import QUIET, command, run_one
from benchmarks.common import DATA_DIR, results_path
from recsys.atomic_files import write_atomic, write_json

DDP = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
       "trainer.strategy.find_unused_parameters=true"]  # fmt: skip
ROWS = {"local negatives (cross_rank=false)": "false", "global negatives (cross_rank=true)": "true"}
METRICS = ["test/ndcg@10", "test/recall@20", "best/val/ndcg@10", "epochs", "time/train_epoch_s",
           "time/train_rows_per_s"]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=25, help="trainer.max_epochs of each row")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1])
    parser.add_argument("--runs", type=Path, default=Path("/tmp/recsys-cross-rank"))
    args = parser.parse_args()
    if not (DATA_DIR / "ml-100k" / "u1.base").is_file():
        raise SystemExit(
            f"skipping: {DATA_DIR / 'ml-100k' / 'u1.base'} not found (set RECSYS_DATA_DIR)"
        )
    rows = []
    for name, value in ROWS.items():
        overrides = [*DDP, f"trainer.max_epochs={args.epochs}",
                     f"model.losses.inbatch.cross_rank={value}"]  # fmt: skip
        argv = command("ml100k_two_tower", overrides)
        runs = []
        for seed in args.seeds:
            start = time.perf_counter()
            metrics = run_one(argv, seed, args.runs / f"cross_rank-{value}_seed{seed}")
            runs.append({m: metrics[m] for m in METRICS} | {"seed": seed})
            print(f"{name} seed {seed}: {runs[-1]} ({time.perf_counter() - start:.0f} s)")
        command_line = "python " + " ".join([*argv, *QUIET])
        rows.append({"row": name, "command": command_line, "runs": runs})
    header = "| negatives | " + " | ".join(METRICS) + " |"
    lines = [header, "|" + "---|" * (len(METRICS) + 1)]
    for row in rows:
        cells = [cell([r[m] for r in row["runs"]], m) for m in METRICS]
        lines.append(f"| {row['row']} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(f"\nseeds {args.seeds}, up to {args.epochs} epochs, 2 CPU processes (gloo)\n{table}")
    results = {"seeds": args.seeds, "max_epochs": args.epochs, "world_size": 2, "rows": rows,
               "note": "epoch time is the median after the first epoch; rows/s = training rows "
                       "of both ranks per second"}  # fmt: skip
    write_json(results_path("cross_rank_negatives_cpu.json"), results)
    write_atomic(results_path("cross_rank_negatives_cpu.md"), (table + "\n").encode())


def cell(values: list[float], metric: str) -> str:
    """Mean ± sample std over seeds; quality to 4 decimals, times and counts to 3 figures."""
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    if metric.startswith(("test/", "best/")):
        return f"{statistics.mean(values):.4f} ± {spread:.4f}"
    return f"{statistics.mean(values):.3g} ± {spread:.2g}"


if __name__ == "__main__":
    main()
