"""Retriever latency on CPU: p50 / p99 per call at batch 1 and 64, for MovieLens-100K and a
1M-item synthetic catalogue, eager vs the exported artifacts.

    python -m benchmarks.serving --pt2                    # both catalogues, 1 thread
    python -m benchmarks.serving --threads 4
    python -m benchmarks.serving --smoke                  # tiny sizes: checks that it runs

Results go to benchmarks/results/serving_cpu.json (or --out).
Compared, on the same users and weights:
- eager model: what evaluation does (`score_all_items` + `topk_items` with seen items masked);
- eager module: the serving `Retriever` as a plain nn.Module;
- torchscript: `retriever.pt` after save and `torch.jit.load`;
- pt2: `retriever.pt2` after save and `torch.export.load` (with --pt2).
Latency does not depend on trained values, so weights are random (MF, dim 64 + bias); ml100k uses
its real seen-item lists (skipped when the data are not under RECSYS_DATA_DIR).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import load_datamodule, results_path
from recsys.csr import UserItemCSR
from recsys.metrics.evaluate import score_all_items
from recsys.metrics.ranking import topk_items
from recsys.models.components.mf import MatrixFactorization
from recsys.serving.artifacts import build_modules, embed_all, save_module, seen_items


def ml100k_catalogue() -> tuple[int, int, UserItemCSR, str] | None:
    _, dm = load_datamodule("ml100k", [])
    if dm is None:
        return None
    data = dm.load()
    return data.num_users, data.num_items, seen_items(data, ["train", "valid"]), "ml100k"


def synthetic_catalogue(users: int, items: int, per_user: int) -> tuple[int, int, UserItemCSR]:
    g = torch.Generator().manual_seed(0)
    rows = torch.arange(users).repeat_interleave(per_user)
    cols = torch.randint(items, (users * per_user,), generator=g)
    return users, items, UserItemCSR.from_pairs(rows, cols, users)


def latencies(fn, users: torch.Tensor, batch: int, repeats: int, budget_s: float) -> list[float]:
    """Per-call wall times (ms) over random batches of real user indices, after warm-up."""
    g = torch.Generator().manual_seed(1)
    picks = [users[torch.randint(users.numel(), (batch,), generator=g)] for _ in range(repeats)]
    with torch.no_grad():
        for p in picks[:3]:
            fn(p)
        times, started = [], time.perf_counter()
        for p in picks:
            t0 = time.perf_counter()
            fn(p)
            times.append((time.perf_counter() - t0) * 1e3)
            if time.perf_counter() - started > budget_s and len(times) >= 10:
                break
    return times


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def bench_catalogue(name, num_users, num_items, seen, args) -> list[dict]:
    torch.manual_seed(0)
    scorer = MatrixFactorization(num_users, num_items, dim=args.dim).eval()
    k = min(args.k, num_items)

    def eager_model(users):
        return topk_items(score_all_items(scorer, users), k, seen.coords(users))

    runners = {"eager model": eager_model}
    vectors = (
        embed_all(scorer.user_embedding, num_users),
        embed_all(scorer.item_embedding, num_items),
    )
    eager_module = build_modules(scorer, vectors, seen, None, pt2=False)["retriever"]
    runners["eager module"] = lambda users: eager_module(users, k)
    with tempfile.TemporaryDirectory() as tmp:
        save_module(eager_module, "retriever", "torchscript", Path(tmp))
        scripted = torch.jit.load(str(Path(tmp) / "retriever.pt"))
        runners["torchscript"] = lambda users: scripted(users, k)
        if args.pt2:
            pt2_module = build_modules(scorer, vectors, seen, None, pt2=True)["retriever"]
            save_module(pt2_module, "retriever", "pt2", Path(tmp))
            exported = torch.export.load(str(Path(tmp) / "retriever.pt2")).module()
            runners["pt2"] = lambda users: exported(users, torch.tensor(k))
    users = torch.arange(num_users)
    rows = []
    for batch in args.batches:
        for method, fn in runners.items():
            times = latencies(fn, users, batch, args.repeats, args.budget_s)
            rows.append(
                {
                    "catalogue": name,
                    "users": num_users,
                    "items": num_items,
                    "batch": batch,
                    "k": k,
                    "method": method,
                    "calls": len(times),
                    "p50_ms": percentile(times, 50),
                    "p99_ms": percentile(times, 99),
                }
            )
            print(
                f"{name:>34} | batch {batch:>3} | {method:>12} | p50 {rows[-1]['p50_ms']:9.3f} ms"
                f" | p99 {rows[-1]['p99_ms']:9.3f} ms | {len(times)} calls",
                flush=True,
            )
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--catalogues", default="ml100k,synthetic-1m", help="comma-separated")
    p.add_argument("--batches", default="1,64", help="comma-separated batch sizes")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--repeats", type=int, default=200, help="calls per (batch, method)")
    p.add_argument("--budget-s", type=float, default=30.0, help="stop a series after this long")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    p.add_argument("--pt2", action="store_true", help="also time the torch.export artifact")
    p.add_argument("--smoke", action="store_true", help="tiny catalogues, few calls")
    p.add_argument("--out", type=Path, default=None, help="write the rows as JSON here")
    args = p.parse_args()
    args.batches = [int(b) for b in args.batches.split(",")]
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.catalogues.split(","):
        if args.smoke:
            args.repeats = 12
            catalogue = (*synthetic_catalogue(50, 300, 5), f"{name} (smoke size)")
        elif name == "ml100k":
            catalogue = ml100k_catalogue()
            if catalogue is None:
                continue
        elif name == "synthetic-1m":
            catalogue = (*synthetic_catalogue(10_000, 1_000_000, 50), "synthetic 1M items")
        else:
            raise SystemExit(f"unknown catalogue {name!r}: ml100k | synthetic-1m")
        num_users, num_items, seen, label = catalogue
        rows += bench_catalogue(label, num_users, num_items, seen, args)
    meta = {"torch": torch.__version__, "threads": args.threads, "cpu": os.cpu_count()}
    out = args.out or (None if args.smoke else results_path("serving_cpu.json"))
    if out is not None:
        out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
