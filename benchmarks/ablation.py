"""Two-tower ablations on MovieLens-100K u1: one `scripts/train.py` command per row, several seeds.

Each row changes one knob of `experiment=ml100k_two_tower` (or of the cold-start recipe) and is
trained once per seed in a child process, exactly as a user would type it; the table reports
mean and sample standard deviation over seeds, with the command of each row.

    python -m benchmarks.ablation --suite warm --seeds 42 1 2
    python -m benchmarks.ablation --suite cold --seeds 42 1 2

Results: benchmarks/results/ablation_<suite>.json and .md (runs under /tmp/recsys-ablation).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import DATA_DIR, ROOT, results_path

QUIET = ["trainer.enable_progress_bar=false", "callbacks.progress_bar=null"]
LOSS = "model.losses.inbatch"

SUITES = {
    "warm": {
        "experiment": "ml100k_two_tower",
        "metrics": ["test/ndcg@10", "test/recall@20"],
        "rows": {
            "full recipe (logQ counts, masking, features)": [],
            "no logQ correction": [f"{LOSS}.logq_correction=none"],
            "streamed logQ (Yi et al.)": [f"{LOSS}.logq_correction=streaming"],
            "no accidental-hit masking": [f"{LOSS}.remove_accidental_hits=false"],
            "+ mixed negatives (1 uniform item per row)": [f"{LOSS}.mixed_negatives=true"],
            "no side features (id-only towers)": ["model.scorer.use_features=false"],
        },
    },
    "cold": {
        "experiment": "ml100k_two_tower_cold",
        "metrics": [
            "test_cold_only/recall@20",
            "random/test_cold_only/recall@20",
            "test_cold/recall@20",
            "random/test_cold/recall@20",
            "test/ndcg@10",
        ],
        "rows": {
            "with side features": [],
            "without side features": ["model.scorer.use_features=false"],
        },
    },
}


def command(experiment: str, overrides: list[str]) -> list[str]:
    data = os.path.relpath(DATA_DIR / "ml-100k", ROOT)
    return ["scripts/train.py", f"experiment={experiment}", f"data.root={data}", *overrides]


def run_one(argv: list[str], seed: int, run_dir: Path) -> dict[str, float]:
    """Train in a child process (a fresh interpreter, as a user runs it) and read metrics.json.

    A finished run (metrics.json present) is read, not retrained: an interrupted table resumes.
    """
    if (run_dir / "metrics.json").is_file():
        return json.loads((run_dir / "metrics.json").read_text())
    full = [sys.executable, *argv, f"seed={seed}", f"hydra.run.dir={run_dir}", *QUIET]
    log = run_dir.with_suffix(".log")
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        rc = subprocess.call(full, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    if rc != 0:
        raise SystemExit(f"run failed (exit {rc}), see {log}: {' '.join(full)}")
    return json.loads((run_dir / "metrics.json").read_text())


def summarise(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {spread:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=sorted(SUITES), default="warm")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2])
    parser.add_argument("--runs", type=Path, default=Path("/tmp/recsys-ablation"))
    args = parser.parse_args()
    if not (DATA_DIR / "ml-100k" / "u1.base").is_file():
        raise SystemExit(
            f"skipping: {DATA_DIR / 'ml-100k' / 'u1.base'} not found (set RECSYS_DATA_DIR)"
        )
    suite = SUITES[args.suite]
    rows = []
    for name, overrides in suite["rows"].items():
        argv = command(suite["experiment"], overrides)
        per_seed = []
        for seed in args.seeds:
            start = time.perf_counter()
            slug = "_".join(o.rsplit(".", 1)[-1].replace("=", "-") for o in overrides) or "base"
            metrics = run_one(argv, seed, args.runs / args.suite / f"{slug}_seed{seed}")
            per_seed.append({m: metrics[m] for m in suite["metrics"]} | {"seed": seed})
            print(f"{name} seed {seed}: {per_seed[-1]} ({time.perf_counter() - start:.0f} s)")
        rows.append({"row": name, "command": "python " + " ".join(argv), "runs": per_seed})
    header = "| variant | " + " | ".join(suite["metrics"]) + " | command |"
    lines = [header, "|" + "---|" * (len(suite["metrics"]) + 2)]
    for row in rows:
        cells = [summarise([r[m] for r in row["runs"]]) for m in suite["metrics"]]
        lines.append(f"| {row['row']} | " + " | ".join(cells) + f" | `{row['command']}` |")
    table = "\n".join(lines)
    print(f"\nseeds {args.seeds}, mean ± sample std\n{table}")
    results_path(f"ablation_{args.suite}.json").write_text(
        json.dumps({"seeds": args.seeds, "rows": rows}, indent=1)
    )
    results_path(f"ablation_{args.suite}.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
