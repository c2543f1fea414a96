"""Is run B better than run A? `python scripts/compare.py <run A> <run B> [--metrics ndcg@10 ...]`.

A paired bootstrap over the test users both runs ranked (recsys.marketing.compare).
"""

import argparse
import logging
import sys
from pathlib import Path


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("run_a", help="baseline run directory (A)")
    p.add_argument("run_b", help="candidate run directory (B); differences are B - A")
    p.add_argument(
        "--metrics", nargs="+", help="metric columns to compare (default: all in both runs)"
    )
    p.add_argument(
        "--primary", default="ndcg@10", help="metric the verdict is about (decide it up front)"
    )
    p.add_argument(
        "--resamples", type=int, default=10_000, help="bootstrap resamples of the test users"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the resampling")
    p.add_argument("--level", type=float, default=0.95, help="confidence level of the intervals")
    p.add_argument("--out", type=Path, help="also write the table and verdict to this JSON file")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    from recsys.cli import run_or_explain
    from recsys.marketing.compare import compare_runs, write_comparison

    # Errors reach the user as one line on stderr (run_or_explain); no duplicate log record.
    logging.getLogger("recsys").addHandler(logging.NullHandler())
    args = parse_args(sys.argv[1:] if argv is None else argv)
    result = run_or_explain(
        compare_runs,
        args.run_a,
        args.run_b,
        args.metrics,
        args.resamples,
        args.seed,
        args.level,
        args.primary,
    )
    print(
        f"A = {result.run_a}\nB = {result.run_b}\n{result.users} paired test users, {result.resamples} resamples\n"
    )
    print(
        result.table.drop(columns="p_floor").to_string(
            index=False, float_format=lambda x: f"{x:.4f}"
        )
    )
    print(f"\n{result.verdict}")
    if args.out:
        write_comparison(result, args.out)
        print(f"written: {args.out}")


if __name__ == "__main__":
    main()
