"""Is run B really better than run A? A paired bootstrap over test users (Efron & Tibshirani, 1993,
ch. 16; for IR metrics, Sakai, 2006, "Evaluating evaluation metrics based on the bootstrap").

Both runs rank the same test users, so each user gives one paired difference d_u = m_B(u) - m_A(u).
Resampling users with replacement R times gives the sampling distribution of the mean difference:
the 95% interval is its 2.5th..97.5th percentiles, and the two-sided p-value is twice the smaller
tail beyond zero (so p < 0.05 exactly when the interval excludes zero). Runs evaluated on different
test splits are refused: their per-user numbers are not paired.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.errors import RunError
from recsys.run_dir import RunDir

ID_COLUMNS = ("user_id", "user_idx")


@dataclass
class Comparison:
    table: pd.DataFrame  # one row per metric: mean_a, mean_b, diff, ci_low, ci_high, p_value, ...
    verdict: str  # plain language, on the primary metric
    users: int
    resamples: int
    run_a: str
    run_b: str


def load_per_user(run_dir: str | Path) -> tuple[pd.DataFrame, str]:
    """(per-user metrics, test fingerprint) of a run, or a RunError saying what to re-run."""
    run = RunDir(run_dir)
    rerun = f"train it again with `python scripts/train.py ... hydra.run.dir={run.root}`"
    if not run.root.is_dir():
        raise RunError(f"{run.root}: run directory not found")
    per_user = run.per_user_metrics()
    if per_user is None:
        raise RunError(
            f"{run.root}: no per_user_metrics.parquet (the run did not finish its test, or "
            f"predates per-user metrics); {rerun}"
        )
    fingerprint = run.read_json("data_report.json").get("test_fingerprint")
    if not fingerprint:
        raise RunError(f"{run.root}: data_report.json has no test_fingerprint; {rerun}")
    return per_user, fingerprint


def paired_bootstrap(
    diffs: np.ndarray, resamples: int = 10_000, seed: int = 0, chunk_elements: int = 2**24
) -> np.ndarray:
    """(R, M) bootstrap means of the (N, M) per-user differences, resampling users (rows).

    Each resample is a vector of counts (how often each user was drawn); a chunk of resamples is
    one (C, N) count matrix and one matrix product with the differences. Memory stays at
    `chunk_elements` counts whatever R and N are.
    """
    n = diffs.shape[0]
    rng = np.random.default_rng(seed)
    per_chunk = max(1, chunk_elements // max(n, 1))
    out = []
    for start in range(0, resamples, per_chunk):
        c = min(per_chunk, resamples - start)
        draws = rng.integers(0, n, size=(c, n))  # (C, N) user drawn at each slot
        offsets = np.arange(c)[:, None] * n
        counts = np.bincount((draws + offsets).ravel(), minlength=c * n).reshape(c, n)
        out.append(counts @ diffs / n)  # (C, M)
    return np.concatenate(out)


def _fmt(x: float) -> str:
    return f"{x:+.4f}"


def verdict_line(row: pd.Series, name_a: str, name_b: str, level: float) -> str:
    metric, diff = row["metric"], row["diff"]
    ci = f"{level:.0%} CI {_fmt(row['ci_low'])} to {_fmt(row['ci_high'])}"
    floor = row["p_value"] <= row["p_floor"]
    p = f"p < {row['p_floor']:.4f}" if floor else f"p = {row['p_value']:.4f}"
    rel = f" ({row['rel_diff']:+.1%} relative)" if np.isfinite(row["rel_diff"]) else ""
    if row["significant"]:
        better, worse = (name_b, name_a) if diff > 0 else (name_a, name_b)
        return (
            f"{better} is better than {worse} on {metric}: {name_b} - {name_a} = {_fmt(diff)}{rel}, "
            f"{ci}, {p}. The difference is statistically significant over these test users."
        )
    return (
        f"No significant difference on {metric}: {name_b} - {name_a} = {_fmt(diff)}{rel}, {ci}, {p}. "
        f"The interval includes 0: these test users do not show that either run is better."
    )


def compare_frames(
    a: pd.DataFrame,
    b: pd.DataFrame,
    metrics: list[str] | None = None,
    resamples: int = 10_000,
    seed: int = 0,
    level: float = 0.95,
    primary: str = "ndcg@10",
    names: tuple[str, str] = ("A", "B"),
) -> tuple[pd.DataFrame, str]:
    """Paired comparison of two per-user metric tables (same users); returns (table, verdict)."""
    joined = a.merge(b, on="user_id", how="outer", suffixes=("_a", "_b"), indicator=True)
    unpaired = int((joined["_merge"] != "both").sum())
    if unpaired:
        raise RunError(
            f"{unpaired} test users appear in only one run: the per-user tables do not pair"
        )
    common = [c for c in a.columns if c in b.columns and c not in ID_COLUMNS]
    metrics = metrics or common
    missing = [m for m in metrics if m not in common]
    if missing:
        raise RunError(f"metrics {missing} are not in both runs (have: {common})")
    va = joined[[f"{m}_a" for m in metrics]].to_numpy(np.float64)  # (N, M)
    vb = joined[[f"{m}_b" for m in metrics]].to_numpy(np.float64)
    diffs = vb - va
    boot = paired_bootstrap(diffs, resamples, seed)  # (R, M)
    alpha = 1.0 - level
    low, high = np.quantile(boot, [alpha / 2, 1 - alpha / 2], axis=0)
    # Two-sided percentile p-value with the +1 correction (never exactly 0 from finite resamples).
    below = (1 + (boot <= 0).sum(0)) / (resamples + 1)
    above = (1 + (boot >= 0).sum(0)) / (resamples + 1)
    p = np.minimum(1.0, 2 * np.minimum(below, above))
    mean_a, mean_b = va.mean(0), vb.mean(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(mean_a != 0, (mean_b - mean_a) / mean_a, np.nan)
    table = pd.DataFrame({
        "metric": metrics, "mean_a": mean_a, "mean_b": mean_b, "diff": mean_b - mean_a, "rel_diff": rel,
        "ci_low": low, "ci_high": high, "p_value": p, "significant": (low > 0) | (high < 0),
        "p_floor": 2.0 / (resamples + 1),
    })  # fmt: skip
    key = primary if primary in metrics else metrics[0]
    verdict = verdict_line(table[table["metric"] == key].iloc[0], *names, level)
    return table, verdict


def compare_runs(
    run_a: str | Path,
    run_b: str | Path,
    metrics: list[str] | None = None,
    resamples: int = 10_000,
    seed: int = 0,
    level: float = 0.95,
    primary: str = "ndcg@10",
) -> Comparison:
    """Compare two finished runs user by user; refuses runs evaluated on different test splits."""
    a, fp_a = load_per_user(run_a)
    b, fp_b = load_per_user(run_b)
    if fp_a != fp_b:
        raise RunError(
            f"{run_a} and {run_b} were evaluated on different test sets (test_fingerprint "
            f"{fp_a[:12]}... vs {fp_b[:12]}...); compare runs trained on the same data, split and seed"
        )
    table, verdict = compare_frames(a, b, metrics, resamples, seed, level, primary)
    return Comparison(table, verdict, len(a), resamples, str(run_a), str(run_b))


def write_comparison(result: Comparison, path: str | Path) -> None:
    """The table and verdict as JSON, for reports and CI gates."""
    payload = {
        "run_a": result.run_a,
        "run_b": result.run_b,
        "users": result.users,
        "resamples": result.resamples,
        "verdict": result.verdict,
        "metrics": result.table.drop(columns="p_floor").to_dict(orient="records"),
    }
    Path(path).write_text(json.dumps(payload, indent=2, default=float) + "\n")
