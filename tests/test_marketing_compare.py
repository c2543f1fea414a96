"""Offline A/B comparison of two runs: a paired bootstrap over the test users."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest

from recsys.errors import RunError
from recsys.marketing.compare import compare_runs, paired_bootstrap
from recsys.train import train
from tests.conftest import ROOT, TINY, compose_config, require_data


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One tiny trained run shared by the tests of this module; tests that alter it copy it first."""
    out = tmp_path_factory.mktemp("compare") / "run"
    train(compose_config(TINY, out))
    return out


def run_script(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "scripts" / "compare.py"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_two_copies_of_one_run_differ_by_zero(tiny_run, tmp_path):
    a, b = tiny_run, tmp_path / "copy"
    shutil.copytree(a, b)
    result = compare_runs(a, b)
    t = result.table
    assert (t["diff"] == 0).all()
    assert ((t["ci_low"] <= 0) & (t["ci_high"] >= 0)).all()
    assert not t["significant"].any() and (t["p_value"] == 1.0).all()
    assert {"ndcg@10", "recall@10", "mrr@20"} <= set(t["metric"])
    proc = run_script(str(a), str(b), "--out", str(tmp_path / "cmp.json"))
    assert proc.returncode == 0, proc.stderr
    assert "No significant difference on ndcg@10: B - A = +0.0000" in proc.stdout
    assert (tmp_path / "cmp.json").is_file()


def test_bootstrap_interval_matches_normal_theory_and_is_seeded():
    """For a mean of n iid differences the 95% interval is close to mean +- 1.96 sd / sqrt(n)."""
    rng = np.random.default_rng(1)
    diffs = rng.normal(0.1, 1.0, size=(2000, 2)) * [1.0, 0.0]  # second metric: no difference
    boot = paired_bootstrap(diffs, resamples=10_000, seed=3)
    assert boot.shape == (10_000, 2)
    low, high = np.quantile(boot[:, 0], [0.025, 0.975])
    half = 1.96 * diffs[:, 0].std() / np.sqrt(len(diffs))
    assert low == pytest.approx(diffs[:, 0].mean() - half, abs=0.01)
    assert high == pytest.approx(diffs[:, 0].mean() + half, abs=0.01)
    assert (boot[:, 1] == 0).all()
    np.testing.assert_array_equal(boot, paired_bootstrap(diffs, resamples=10_000, seed=3))


def test_runs_on_different_test_sets_are_refused(tiny_run, tiny_cfg, tmp_path):
    train(tiny_cfg("seed=7", output_dir=tmp_path / "b"))  # the seed also reshuffles the split
    with pytest.raises(RunError, match="different test sets"):
        compare_runs(tiny_run, tmp_path / "b")


def test_run_without_per_user_metrics_names_the_run_and_what_to_rerun(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "per_user_metrics.parquet").unlink()
    with pytest.raises(RunError, match="train it again"):
        compare_runs(run, run)
    proc = run_script(str(run), str(run))
    assert proc.returncode == 2
    assert f"{run}: no per_user_metrics.parquet" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


@pytest.mark.slow
def test_mf_beats_a_popularity_level_model_significantly_on_ml100k(tmp_path):
    root = require_data("ml-100k", "u.user", "u.item", "u1.base", "u1.test")

    def run(name: str, epochs: int) -> dict:
        overrides = ["experiment=ml100k_mf", f"data.root={root}", f"trainer.max_epochs={epochs}",
                     "callbacks.progress_bar=null"]  # fmt: skip
        metrics, _ = train(compose_config(overrides, tmp_path / name))
        return metrics

    weak = run("weak", 1)  # one epoch of BPR learns little beyond item popularity
    strong = run("mf", 8)
    assert weak["test/ndcg@10"] == pytest.approx(weak["popularity/test/ndcg@10"], abs=0.05)
    result = compare_runs(tmp_path / "weak", tmp_path / "mf")
    row = result.table.set_index("metric").loc["ndcg@10"]
    assert row["diff"] == pytest.approx(strong["test/ndcg@10"] - weak["test/ndcg@10"], abs=1e-6)
    assert row["significant"] and row["ci_low"] > 0 and row["p_value"] < 0.001
    assert result.verdict.startswith("B is better than A on ndcg@10")
