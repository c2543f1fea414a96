"""Full-ranking evaluation time: recsys's chunked evaluator against a per-user loop, same model.

    python benchmarks/eval_speed.py --data ml100k beauty synthetic_1m --device cpu

The model is an MF with random weights (evaluation cost does not depend on training). The loop
scores, masks and ranks one user at a time, as most reference implementations do; on the
1M-user synthetic catalogue it runs on a user subsample and is extrapolated (labelled so).
Both give identical metrics (checked here). Saved to benchmarks/results/eval_speed_<device>.json.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import date

import torch

from benchmarks.common import load_datamodule, results_path
from recsys.csr import UserItemCSR
from recsys.data.loaders import RankingBatches
from recsys.metrics.evaluate import evaluate_ranking
from recsys.metrics.ranking import RankingAccumulator, topk_items
from recsys.models.components.mf import MatrixFactorization

KS = [10, 20]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def synthetic_catalogue(num_users: int, num_items: int, per_user: int, device: torch.device):
    """Random train/test sets: evaluation cost depends only on sizes."""
    g = torch.Generator().manual_seed(0)
    users = torch.arange(num_users).repeat_interleave(per_user)
    seen = UserItemCSR.from_pairs(
        users, torch.randint(num_items, (users.numel(),), generator=g), num_users
    )
    targets = UserItemCSR.from_pairs(
        users[::4],
        torch.randint(num_items, (users.numel() // 4 + 1,), generator=g)[: users[::4].numel()],
        num_users,
    )
    return seen, targets


@torch.no_grad()
def per_user_loop(
    scorer, users: torch.Tensor, seen: UserItemCSR, targets: UserItemCSR, num_items: int
) -> dict:
    acc = RankingAccumulator(KS, num_items)
    for u in users.tolist():
        user = torch.tensor([u], device=users.device)
        scores = scorer.score_all_items(user)  # (1, I)
        excl_items = seen.indices[seen.indptr[u] : seen.indptr[u + 1]]
        topk = topk_items(scores, max(KS), (torch.zeros_like(excl_items), excl_items))
        t_items = targets.indices[targets.indptr[u] : targets.indptr[u + 1]]
        acc.update(
            user, topk, (torch.zeros_like(t_items), t_items), t_items.new_tensor([t_items.numel()])
        )
    return acc.compute()


def measure(
    name: str,
    scorer,
    users,
    seen,
    targets,
    num_items,
    device,
    chunk_elements: int,
    loop_users: int | None,
):
    scorer = scorer.to(device).eval()
    seen_d, targets_d, users_d = seen.to(device), targets.to(device), users.to(device)
    batches = RankingBatches(users_d, seen_d, targets_d, max(1, chunk_elements // num_items))
    evaluate_ranking(
        scorer, RankingBatches(users_d[:64], seen_d, targets_d, 64), KS, num_items
    )  # warm-up
    sync(device)
    start = time.perf_counter()
    fast, _ = evaluate_ranking(scorer, batches, KS, num_items)
    sync(device)
    fast_s = time.perf_counter() - start
    sample = users_d if loop_users is None else users_d[:loop_users]
    start = time.perf_counter()
    slow = per_user_loop(scorer, sample, seen_d, targets_d, num_items)
    sync(device)
    loop_s = (time.perf_counter() - start) * users.numel() / sample.numel()
    row = {"data": name, "device": str(device), "users": users.numel(), "items": num_items,
           "chunk_users": batches.chunk_users, "recsys_s": fast_s, "per_user_loop_s": loop_s,
           "loop_extrapolated_from_users": None if loop_users is None else int(sample.numel()),
           "speedup": loop_s / fast_s}  # fmt: skip
    if loop_users is None:
        row["max_metric_diff"] = max(
            abs(fast[k] - slow[k]) for k in fast if not k.startswith("coverage")
        )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", nargs="+", default=["ml100k", "beauty", "synthetic_1m"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--chunk-elements", type=int, default=2**24, help="users x items scored at once"
    )
    parser.add_argument(
        "--loop-users", type=int, default=2000, help="users timed in the loop on synthetic_1m"
    )
    parser.add_argument("--synthetic-users", type=int, default=1_000_000)
    parser.add_argument("--synthetic-items", type=int, default=100_000)
    args = parser.parse_args()
    device = torch.device(args.device)
    rows = []
    for name in args.data:
        if name == "synthetic_1m":
            n_users, n_items = args.synthetic_users, args.synthetic_items
            seen, targets = synthetic_catalogue(n_users, n_items, 10, device)
            users = torch.nonzero(targets.row_lengths() > 0).view(-1)
            loop_users = args.loop_users
        else:
            _, dm = load_datamodule(name, [])
            if dm is None:
                continue
            batches = dm.ranking_batches("test", torch.device("cpu"))
            users, seen, targets = batches.users, batches.seen, batches.targets
            n_users, n_items, loop_users = dm.data.num_users, dm.data.num_items, None
        torch.manual_seed(0)
        scorer = MatrixFactorization(n_users, n_items, 64)
        row = measure(
            name, scorer, users, seen, targets, n_items, device, args.chunk_elements, loop_users
        )
        rows.append(row)
        print(
            json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}),
            flush=True,
        )
    out = {"date": str(date.today()), "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
           "threads": torch.get_num_threads(), "rows": rows}  # fmt: skip
    results_path(f"eval_speed_{device.type}.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
