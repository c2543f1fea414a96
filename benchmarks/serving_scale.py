"""Retrieval at catalogue scale on CPU: the exact scan (what `retriever.pt` does: one matmul and a
top-k in torch) against FAISS flat, IVF (several nprobe) and HNSW (several efSearch) indexes.

    python -m benchmarks.serving_scale                         # 100k and 1M items, dim 64 and 128
    python -m benchmarks.serving_scale --sizes 100000 --dims 64
    python -m benchmarks.serving_scale --smoke                 # tiny, < 20 s, writes nothing

Per catalogue and method: p50 / p99 latency per call at batch 1 and 256 (k = 10), queries/s at
batch 256, recall@10 and @100 against the exact top-k on 1000 users, index build time and size
(serialized bytes, what the index holds in memory). Latencies run on one thread (`--threads`);
builds and the recall searches use `--build-threads` (2 by default: HNSW at 1M items takes minutes
on one). Item and user vectors are synthetic but shaped like trained towers
(`benchmarks/synthetic_towers.py` says why that matters). The default run takes several minutes
on 2 cores, most of it the 1M-item catalogues (HNSW builds, batch-256 exact scans). Writes
benchmarks/results/serving_scale_cpu.json and serving_scale_cpu.png (recall@10 vs p99 latency).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import results_path
from benchmarks.synthetic_towers import towers
from recsys.atomic_files import write_atomic
from recsys.serving import ann_index

K = 10
RECALL_USERS = 1000


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def timed_calls(fn, queries, batch: int, budget_s: float, least: int, most: int) -> list[float]:
    """Wall times (ms) of `fn(batch of queries)` after warm-up calls: at least `least` calls, at
    most `most`, stopping once `budget_s` is spent (a scan of 1M items at batch 256 takes seconds
    a call, so its p99 is the worst of a few calls: `calls` in the results says how many)."""
    g = torch.Generator().manual_seed(1)
    for _ in range(1 if batch > 1 else 3):
        fn(queries[torch.randint(queries.shape[0], (batch,), generator=g)])
    times, started = [], time.perf_counter()
    while len(times) < most and (len(times) < least or time.perf_counter() - started < budget_s):
        q = queries[torch.randint(queries.shape[0], (batch,), generator=g)]
        t = time.perf_counter()
        fn(q)
        times.append((time.perf_counter() - t) * 1e3)
    return times


def percentile(times: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(times), q))


def exact_search(items: torch.Tensor):
    """The exact retriever's work without the seen-item mask: scores for all items, top-k."""

    @torch.no_grad()
    def search(queries: torch.Tensor, k: int) -> torch.Tensor:
        return torch.topk(queries @ items.T, k, dim=1).indices

    return search


def faiss_search(index):
    def search(queries: torch.Tensor, k: int) -> torch.Tensor:
        return torch.from_numpy(index.search(queries.numpy(), k)[1])

    return search


def recall(found: torch.Tensor, truth: torch.Tensor) -> float:
    hits = sum(len(set(f) & set(t)) for f, t in zip(found.tolist(), truth.tolist(), strict=True))
    return hits / truth.numel()


def grids(num_items: int, dim: int, smoke: bool) -> dict[str, list[dict]]:
    """Index configurations per kind, built as the export builds them (`ann_index.derive` and
    `ann_index.build`): IVF with the derived nlist (4 sqrt(I)) and nprobe = nlist / 32 .. nlist / 4
    (the derived default is nlist / 8); HNSW with the derived M = 16, efConstruction = 40 and
    efSearch 32 .. 256 (default 128)."""
    derived = {
        kind: ann_index.derive(ann_index.IndexSettings(kind), num_items, dim)
        for kind in ("flat", "ivf_flat", "hnsw")
    }
    nlist = derived["ivf_flat"]["nlist"]
    probes = sorted({max(1, nlist // d) for d in (32, 16, 8, 4)})
    efs = [16, 32] if smoke else [32, 64, 128, 256]
    return {
        "flat": [derived["flat"]],
        "ivf_flat": [{**derived["ivf_flat"], "nprobe": p} for p in probes],
        "hnsw": [{**derived["hnsw"], "ef_search": e} for e in efs],
    }


def set_search_params(index, kind: str, params: dict) -> None:
    if kind == "ivf_flat":
        index.nprobe = params["nprobe"]
    if kind == "hnsw":
        index.hnsw.efSearch = params["ef_search"]


def measure(name, search, queries, truth, args, row: dict) -> dict:
    """Latency at batch 1 and 256 on `args.threads` threads, recall on `args.build_threads`."""
    import faiss

    faiss.omp_set_num_threads(args.build_threads)
    torch.set_num_threads(args.build_threads)
    users = queries[: truth.shape[0]]
    if row["method"] == "exact_torch":  # the truth itself: nothing to search
        row["recall@10"] = row["recall@100"] = 1.0
    else:
        found = search(users, 100)
        row["recall@100"] = recall(found, truth)
        # Flat and IVF give the same top 10 at k = 10 and k = 100 (the same lists are scanned);
        # HNSW's candidate list grows with k, so it is searched at k = 10 as served.
        top = search(users, K) if row["method"] == "hnsw" else found[:, :K]
        row["recall@10"] = recall(top, truth[:, :K])
    faiss.omp_set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    for batch, least, most in ((1, 5, 2000), (256, 3, 50)):
        times = timed_calls(lambda q: search(q, K), queries, batch, args.budget_s, least, most)
        row[f"batch{batch}"] = {
            "p50_ms": round(percentile(times, 50), 4),
            "p99_ms": round(percentile(times, 99), 4),
            "calls": len(times),
            "queries_per_s": round(batch * 1e3 / percentile(times, 50), 1),
        }
    print(f"  {name:<38} recall@10 {row['recall@10']:.3f} @100 {row['recall@100']:.3f}  "
          f"p50/p99 b1 {row['batch1']['p50_ms']:.3f}/{row['batch1']['p99_ms']:.3f} ms  "
          f"b256 {row['batch256']['queries_per_s']:.0f} q/s")  # fmt: skip
    return row


def catalogue(num_items: int, dim: int, args) -> dict:
    import faiss

    started = time.perf_counter()
    items, queries = towers(num_items, max(4096, RECALL_USERS), dim, seed=args.seed)
    users = queries[: min(RECALL_USERS, queries.shape[0])]
    torch.set_num_threads(args.build_threads)
    exact = exact_search(items)
    truth = torch.cat([exact(part, 100) for part in users.split(64)])  # (64, I) scores at a time
    print(
        f"{num_items} items x {dim}: towers and exact top-100 in {time.perf_counter() - started:.1f} s"
    )
    rows = [measure("exact (torch matmul + topk)", exact, queries, truth, args,
                    {"method": "exact_torch", "params": {}, "build_s": 0.0,
                     "index_bytes": items.numel() * 4})]  # fmt: skip
    for kind, configs in grids(num_items, dim, args.smoke).items():
        faiss.omp_set_num_threads(args.build_threads)
        t = time.perf_counter()
        index = ann_index.build(items, configs[0])
        build_s = time.perf_counter() - t
        size = int(faiss.serialize_index(index).nbytes)
        for params in configs:
            set_search_params(index, kind, params)
            shown = {
                k: v for k, v in params.items() if k not in ("kind", "metric", "num_items", "dim")
            }
            label = f"{kind} {' '.join(f'{k}={v}' for k, v in shown.items())}"
            row = {
                "method": kind,
                "params": shown,
                "build_s": round(build_s, 2),
                "index_bytes": size,
            }
            rows.append(measure(label, faiss_search(index), queries, truth, args, row))
        del index
    return {"num_items": num_items, "dim": dim, "seconds": round(time.perf_counter() - started, 1),
            "rows": rows}  # fmt: skip


def plot(results: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cats = results["catalogues"]
    fig, axes = plt.subplots(1, len(cats), figsize=(5 * len(cats), 4), squeeze=False)
    for ax, cat in zip(axes[0], cats, strict=True):
        for method in dict.fromkeys(r["method"] for r in cat["rows"]):
            rows = [r for r in cat["rows"] if r["method"] == method]
            ax.plot([r["batch1"]["p99_ms"] for r in rows], [r["recall@10"] for r in rows],
                    "o-", label=method)  # fmt: skip
            for r in rows:  # the knob each point turns: nprobe or efSearch
                knob = r["params"].get("nprobe", r["params"].get("ef_search"))
                if knob is not None:
                    ax.annotate(str(knob), (r["batch1"]["p99_ms"], r["recall@10"]), fontsize=7,
                                textcoords="offset points", xytext=(3, -9))  # fmt: skip
        ax.axhline(0.95, color="grey", lw=0.5, ls="--")
        ax.axvline(10, color="grey", lw=0.5, ls="--")
        ax.set(xscale="log", xlabel="p99 latency, batch 1, 1 thread (ms)", ylabel="recall@10",
               title=f"{cat['num_items']:,} items, dim {cat['dim']}")  # fmt: skip
        ax.legend(fontsize=8)
    fig.suptitle(f"{results['cpu']} ({results['threads']} thread for latency)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--dims", type=int, nargs="+", default=[64, 128])
    p.add_argument("--threads", type=int, default=1, help="threads for the latency calls")
    p.add_argument("--build-threads", type=int, default=2, help="threads for builds and recall")
    p.add_argument("--budget-s", type=float, default=1.0, help="time per latency series")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--smoke", action="store_true", help="tiny catalogue, writes nothing")
    p.add_argument("--out", type=Path, default=None,
                   help="results file (default benchmarks/results/serving_scale_cpu.json)")  # fmt: skip
    args = p.parse_args(argv)
    if args.smoke:
        args.sizes, args.dims, args.budget_s = [5000], [32], 0.1
    import faiss

    results = {"cpu": cpu_name(), "threads": args.threads, "build_threads": args.build_threads,
               "k": K, "recall_users": RECALL_USERS, "torch": torch.__version__,
               "faiss": faiss.__version__, "seed": args.seed, "catalogues": []}  # fmt: skip
    started = time.perf_counter()
    for n in args.sizes:
        for d in args.dims:
            results["catalogues"].append(catalogue(n, d, args))
    results["seconds"] = round(time.perf_counter() - started, 1)
    print(f"total {results['seconds']} s")
    if args.smoke:
        return
    out = args.out or results_path("serving_scale_cpu.json")
    write_atomic(out, (json.dumps(results, indent=2) + "\n").encode())
    plot(results, out.with_suffix(".png"))
    print(f"wrote {out} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
