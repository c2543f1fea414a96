"""A finished run loads back with the weights that produced its metrics; its data only on request."""

from __future__ import annotations

import pytest

from recsys.errors import RunError
from recsys.metrics.evaluate import evaluate_ranking
from recsys.run_dir import RunDir
from recsys.train import train


def test_loaded_run_reproduces_test_metrics(tiny_cfg, tmp_path):
    metrics, _ = train(tiny_cfg())
    run_dir = RunDir(tmp_path / "run")
    run = run_dir.load()
    datamodule = run_dir.load_data()
    got, _ = evaluate_ranking(
        run.scorer, datamodule.ranking_batches("test"), [10, 20], run.scorer.num_items
    )
    assert got["ndcg@10"] == pytest.approx(metrics["test/ndcg@10"], abs=1e-6)
    assert run.metrics["test/ndcg@10"] == metrics["test/ndcg@10"]

    # Data that index users differently from the run's vocabulary are refused, file named.
    users = run_dir.vocabulary("users")
    users[0], users[1] = users[1], users[0]
    run_dir.write_vocabularies(users, run_dir.vocabulary("items"))
    with pytest.raises(RunError, match="users.txt: differs from the users of the rebuilt data"):
        run_dir.load_data()


def test_not_a_run_directory_is_named(tmp_path):
    with pytest.raises(RunError, match=f"{tmp_path}: not a recsys run directory"):
        RunDir(tmp_path).load()
