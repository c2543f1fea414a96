"""Throughput at equal quality on Amazon-Beauty: a tutorial-style loop against recsys's defaults.

    python -m benchmarks.time_to_quality --threads 1

Speed without the quality it buys means little, so both sides train to their best validation
NDCG@10 and report test Recall@20 with the same evaluator:
(a) tutorial: `Dataset` of (user, positive, negative) triples, default `DataLoader`, batch 1024, eager,
    dense Adam, the same MF scorer, BPR loss, lr and row L2 as `experiment=beauty_mf`; validated
    every 3 epochs with patience 3, as the recipe is;
(b) recsys: `scripts/train.py experiment=beauty_mf` exactly as the README runs it (its
    `time/train_rows_per_s` is the steady-state training throughput, validation excluded).
Same process, same thread count. Saved to benchmarks/results/time_to_quality_cpu.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from datetime import date

import torch
from torch.utils.data import DataLoader

from benchmarks.common import DATA_DIR, compose_config, load_datamodule, results_path
from benchmarks.train_throughput import TripletDataset, build_module, train_step
from recsys.metrics.evaluate import evaluate_ranking


def tutorial_loop(cfg, dm, max_epochs: int, every: int, patience: int) -> dict[str, float]:
    data = dm.load()
    module = build_module(cfg, dm, tutorial=True)  # the recipe's scorer, loss and row L2
    optimizer = torch.optim.Adam(module.parameters(), lr=cfg.model.module.optimizer.lr)
    scorer = module.scorer
    loader = DataLoader(
        TripletDataset(data.train.users, data.train.items, data.num_items, 1),
        batch_size=1024,
        shuffle=True,
    )
    best, best_test, bad_rounds, train_seconds, epochs = -1.0, {}, 0, 0.0, 0
    for epoch in range(max_epochs):
        start = time.perf_counter()
        for users, items, negatives in loader:
            train_step(module, optimizer, {"users": users, "items": items, "negatives": negatives})
        train_seconds += time.perf_counter() - start
        epochs = epoch + 1
        if epochs % every:
            continue
        val, _ = evaluate_ranking(scorer, dm.ranking_batches("val"), [10, 20], data.num_items)
        print(f"tutorial epoch {epochs}: val ndcg@10 {val['ndcg@10']:.4f}", flush=True)
        if val["ndcg@10"] > best:
            best, bad_rounds = val["ndcg@10"], 0
            best_test, _ = evaluate_ranking(
                scorer, dm.ranking_batches("test"), [10, 20], data.num_items
            )
        else:
            bad_rounds += 1
            if bad_rounds >= patience:
                break
    return {
        "rows_per_s": epochs * len(data.train) / train_seconds,
        "train_seconds": train_seconds,
        "epochs": epochs,
        "test/recall@20": best_test["recall@20"],
        "test/ndcg@10": best_test["ndcg@10"],
    }


def recsys_recipe(overrides: list[str]) -> dict[str, float]:
    from recsys.perf.allocator import retain_freed_memory
    from recsys.train import train

    cfg = compose_config(overrides)
    if cfg.get("retain_freed_memory", True):  # as scripts/train.py does before train()
        retain_freed_memory()
    metrics, _ = train(cfg)
    return {
        "rows_per_s": metrics["time/train_rows_per_s"],
        "train_seconds": metrics["time/train_epoch_s"] * metrics["epochs"],
        "epochs": metrics["epochs"],
        "test/recall@20": metrics["test/recall@20"],
        "test/ndcg@10": metrics["test/ndcg@10"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("overrides", nargs="*", help="extra overrides for the recsys run")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    folder = DATA_DIR / "amazon-beauty"
    quiet = ["trainer.enable_progress_bar=false", "callbacks.progress_bar=null", "~logger"]
    # The tutorial gets the recipe's scorer, loss, lr and L2, with dense gradients for its Adam.
    cfg, dm = load_datamodule("beauty", ["experiment=beauty_mf", "optimizer=adam", *quiet])
    if dm is None:
        return
    torch.manual_seed(0)
    random.seed(0)  # the tutorial Dataset draws its negatives with `random`
    tutorial = tutorial_loop(cfg, dm, args.max_epochs, every=3, patience=3)
    print("tutorial:", json.dumps(tutorial), flush=True)
    data_paths = [f"data.{s}={folder / (s + '.txt')}" for s in ("train", "valid", "test")]
    ours = recsys_recipe(["experiment=beauty_mf", *data_paths, *quiet, *args.overrides])
    print("recsys:", json.dumps(ours), flush=True)
    out = {
        "date": str(date.today()),
        "machine": platform.processor() or platform.machine(),
        "threads": args.threads,
        "torch": torch.__version__,
        "recsys_overrides": args.overrides,
        "tutorial": tutorial,
        "recsys": ours,
        "speedup": ours["rows_per_s"] / tutorial["rows_per_s"],
        "recall_at_20_ratio": ours["test/recall@20"] / tutorial["test/recall@20"],
    }
    print(json.dumps({k: out[k] for k in ("speedup", "recall_at_20_ratio")}))
    results_path("time_to_quality_cpu.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
