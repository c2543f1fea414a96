"""Optimizer step time on row-sparse embedding gradients: RowSparseAdam against torch.optim.SparseAdam.

    python -m benchmarks.sparse_optim --threads 1

MF with Amazon-Beauty-sized tables (52,204 users, 52,893 items, dim 64), BPR with one sampled
negative per row, batch 1024: forward, backward and optimizer step per iteration, steady state after
a warm-up (which includes the compile of `RowSparseAdam(compile=True)`), all optimizers in the same
process on the same model shape. Saved to benchmarks/results/sparse_optim_cpu.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import date

import torch
import torch.nn.functional as F

from benchmarks.common import results_path
from recsys.models.components.mf import MatrixFactorization
from recsys.optim.sparse_adam import RowSparseAdam

OPTIMIZERS = {
    "torch.optim.SparseAdam": lambda params: torch.optim.SparseAdam(list(params), lr=1e-3),
    "RowSparseAdam": lambda params: RowSparseAdam(params, lr=1e-3),
    "RowSparseAdam(compile=True)": lambda params: RowSparseAdam(params, lr=1e-3, compile=True),
}


def ms_per_step(make, users: int, items: int, dim: int, batch: int, steps: int) -> float:
    torch.manual_seed(0)
    model = MatrixFactorization(users, items, dim, sparse=True)
    optimizer = make(model.parameters())

    def step() -> None:
        u, i = torch.randint(users, (batch,)), torch.randint(items, (2 * batch,))
        user, item = model.user_embedding(u), model.item_embedding(i)
        margin = (user * item[:batch]).sum(-1) - (user * item[batch:]).sum(-1)
        optimizer.zero_grad()
        (-F.logsigmoid(margin).mean()).backward()
        optimizer.step()

    for _ in range(20):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    shape = {"users": 52_204, "items": 52_893, "dim": 64, "batch": 1024}
    rows = {name: ms_per_step(make, **shape, steps=args.steps) for name, make in OPTIMIZERS.items()}
    ratio = rows["torch.optim.SparseAdam"] / rows["RowSparseAdam"]
    compiled = rows["torch.optim.SparseAdam"] / rows["RowSparseAdam(compile=True)"]
    print(json.dumps({k: round(v, 2) for k, v in rows.items()}),
          f"speedup {ratio:.2f}x, compiled {compiled:.2f}x")  # fmt: skip
    out = {"date": str(date.today()), "machine": platform.processor() or platform.machine(),
           "threads": args.threads, "torch": torch.__version__, **shape,
           "ms_per_step": rows, "speedup": ratio, "speedup_compiled": compiled}  # fmt: skip
    results_path("sparse_optim_cpu.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
