"""Eager against `model.module.compile=true` on the same training steps, side by side in one process.

    python -m benchmarks.compile_ab --threads 1

For each case, two RetrievalModules (same seed, same config but `compile`) train on the same
pre-drawn batches, alternating in blocks of about 80k rows for `--rounds` rounds, so the VM's drift
hits both alike; the median rows/s of each is reported, with the compile's one-time cost. Cases:
`experiment=beauty_mf` (MF-BPR, batch 4096, dim 128, 2 negatives, sparse Adam) and the two-tower on
Beauty (in-batch softmax, batch 1024, sparse id tables). Saved to
benchmarks/results/compile_ab_cpu.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from datetime import date

import torch

from benchmarks.common import load_datamodule, results_path
from benchmarks.train_throughput import build_module, train_step

CASES = {
    "beauty_mf": ["experiment=beauty_mf"],
    "beauty_two_tower_sparse": ["model=two_tower", "optimizer=sparse_adam",
                                "data.loader.batch_size=1024", "data.loader.num_negatives=1"],
}  # fmt: skip


def batches(data, batch_size: int, num_negatives: int):
    users, items, n = data.train.users, data.train.items, len(data.train)
    while True:
        order = torch.randperm(n)
        for start in range(0, n - batch_size + 1, batch_size):
            idx = order[start : start + batch_size]
            negatives = torch.randint(data.num_items, (batch_size, num_negatives))
            yield {"users": users[idx], "items": items[idx], "negatives": negatives}


def compare(overrides: list[str], rounds: int, block_rows: int) -> dict | None:
    loops = {}
    for compile in (False, True):
        cfg, dm = load_datamodule("beauty", [*overrides, f"model.module.compile={compile}"])
        if dm is None:
            return None
        torch.manual_seed(0)
        module = build_module(cfg, dm)
        loops["compiled" if compile else "eager"] = (module, module.configure_optimizers())
    data, size, negatives = dm.load(), dm.batch_size, dm.num_negatives
    stream = batches(data, size, negatives)
    steps = max(1, block_rows // size)
    first_steps = {}
    for name, (module, optimizer) in loops.items():
        start = time.perf_counter()
        train_step(module, optimizer, next(stream))  # the compile happens here
        first_steps[name] = time.perf_counter() - start
        for _ in range(5):
            train_step(module, optimizer, next(stream))
    rates = {name: [] for name in loops}
    for _ in range(rounds):
        block = [next(stream) for _ in range(steps)]
        for name, (module, optimizer) in loops.items():
            start = time.perf_counter()
            for batch in block:
                train_step(module, optimizer, batch)
            rates[name].append(steps * size / (time.perf_counter() - start))
    medians = {name: statistics.median(r) for name, r in rates.items()}
    return {"overrides": overrides, "rows_per_s": medians, "runs": rates,
            "first_step_s": first_steps,
            "speedup": medians["compiled"] / medians["eager"]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--block-rows", type=int, default=81920)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = {}
    for case in args.cases:
        result = compare(CASES[case], args.rounds, args.block_rows)
        if result is None:
            continue
        results[case] = result
        rows = {k: round(v) for k, v in result["rows_per_s"].items()}
        print(json.dumps({"case": case, "rows_per_s": rows, "speedup": round(result["speedup"], 2),
                          "first_step_s": result["first_step_s"]}), flush=True)  # fmt: skip
    out = {"date": str(date.today()), "machine": platform.processor() or platform.machine(),
           "threads": args.threads, "torch": torch.__version__, "cases": results}  # fmt: skip
    results_path("compile_ab_cpu.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
