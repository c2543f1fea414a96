"""User segments from a trained run: k=auto finds the true groups, the files a marketer reads."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from recsys.data.interactions import FeatureTable, InteractionData, Interactions
from recsys.errors import RunError
from recsys.marketing.profiles import profile_table
from recsys.marketing.segments import choose_k, segment_run
from recsys.train import train
from tests.conftest import ROOT, TINY, compose_config

# Four taste groups, enough users and epochs for the embeddings to show them.
GROUPED = ["data.num_users=1000", "data.num_items=500", "data.num_groups=4", "trainer.max_epochs=5"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One tiny trained run shared by the tests of this module; tests that alter it copy it first."""
    out = tmp_path_factory.mktemp("segments") / "run"
    train(compose_config(TINY, out))
    return out


def run_script(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "scripts" / "segment.py"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_k_auto_recovers_the_true_user_groups(tiny_cfg, tmp_path):
    metrics, objects = train(tiny_cfg(*GROUPED))
    run = tmp_path / "run"
    proc = run_script(f"run_dir={run}", "k=auto")
    assert proc.returncode == 0, proc.stderr
    out = run / "segments"
    segments = pd.read_parquet(out / "segments.parquet")
    truth = np.asarray(objects["data"].report["true_user_groups"])
    assert segments["user_id"].tolist() == (run / "vocab" / "users.txt").read_text().split()
    assert segments["segment"].nunique() == 4
    assert adjusted_rand_score(truth[segments["user_idx"]], segments["segment"]) >= 0.8
    summary = json.loads((out / "summary.json").read_text())
    assert summary["k"] == 4 and summary["adjusted_rand_index_vs_true_groups"] >= 0.8
    for name in (
        "k_selection.png",
        "k_selection.csv",
        "projection.png",
        "profiles.csv",
        "profiles.md",
    ):
        assert (out / name).stat().st_size > 0, name
    assert len(pd.read_csv(out / "k_selection.csv")) == 11  # k = 2 .. 12


def test_fixed_k_with_profile_features_writes_a_profile_per_segment(tiny_run, tmp_path):
    result = segment_run(tiny_run, k=3, features=True, out_dir=tmp_path / "segments")
    profiles = pd.read_csv(tmp_path / "segments" / "profiles.csv")
    assert profiles["segment"].tolist() == [0, 1, 2]
    assert profiles["users"].sum() == result.summary["users_segmented"]
    assert profiles["share"].sum() == pytest.approx(1.0)
    for column in ("interactions_per_user", "conversion_rate", "test_ndcg@10", "top_category",
                   "top_items", "segment_hint", "region", "age_mean"):  # fmt: skip
        assert column in profiles, column
    assert profiles["conversion_rate"].between(0, 1).all()
    markdown = (tmp_path / "segments" / "profiles.md").read_text()
    assert markdown.count("\n") == 2 + 3  # header, rule, one line per segment
    assert result.summary["matrix"]["profile_features"] is True


def test_choose_k_finds_groups_whose_centres_are_close():
    """8 separated groups (8 std apart) in 4 pairs (33 std between pairs): silhouette alone
    prefers the coarse cut into pairs, the elbow rule finds the 8 groups."""
    pairs = np.array([[0, 0], [20, 0], [0, 20], [20, 20]], dtype=float)
    centres = np.concatenate([pairs, pairs + [5.0, 0]])
    x, truth = make_blobs(2000, centers=centres, cluster_std=0.6, random_state=0)
    selection = choose_k(x, 2, 12, seed=0, n_init=4)
    assert selection.silhouette_k == 4
    assert selection.k == 8


def test_profile_names_what_each_segment_buys_more_of():
    users = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    items = torch.tensor([0, 1, 0, 1, 2, 3, 2, 3])
    log = Interactions(users, items, labels=torch.tensor([1.0, 1, 1, 1, 0, 0, 0, 1]))
    empty = Interactions(torch.tensor([], dtype=torch.long), torch.tensor([], dtype=torch.long))
    data = InteractionData(
        train=log,
        valid=empty,
        test=empty,
        user_ids=np.array(["a", "b", "c", "d"]),
        item_ids=np.array(["x0", "x1", "x2", "x3"]),
        item_features=FeatureTable(
            categorical={"category": torch.tensor([1, 1, 2, 2])}, cardinality={"category": 3}
        ),
    )
    scores = {"mean_propensity": np.array([0.9, 0.7, 0.2, 0.0])}
    table = profile_table(data, np.array([0, 0, 1, 1]), user_scores=scores)
    assert table["mean_propensity"].tolist() == pytest.approx([0.8, 0.1])
    assert table["top_category"].tolist() == [
        "category=1 100.0% (2.0x)",
        "category=2 100.0% (2.0x)",
    ]
    assert table["conversion_rate"].tolist() == [1.0, 0.25]
    assert table["interactions_per_user"].tolist() == [2.0, 2.0]


def test_run_without_checkpoint_names_the_run_and_what_to_rerun(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    for ckpt in (run / "checkpoints").iterdir():
        ckpt.unlink()
    with pytest.raises(RunError, match="train it again"):
        segment_run(run, k=2)
    proc = run_script(f"run_dir={run}", "k=2")
    assert proc.returncode == 2
    assert f"{run}: no checkpoint" in proc.stderr and "Traceback" not in proc.stderr
