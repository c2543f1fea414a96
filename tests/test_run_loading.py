"""A finished run loads back with the weights that produced its metrics."""

from __future__ import annotations

import pytest

from recsys.errors import RunError
from recsys.metrics.evaluate import evaluate_ranking
from recsys.run_loading import load_run
from recsys.train import train


def test_loaded_run_reproduces_test_metrics(tiny_cfg, tmp_path):
    metrics, _ = train(tiny_cfg())
    run = load_run(tmp_path / "run")
    got, _ = evaluate_ranking(
        run.scorer, run.datamodule.ranking_batches("test"), [10, 20], run.data.num_items
    )
    assert got["ndcg@10"] == pytest.approx(metrics["test/ndcg@10"], abs=1e-6)
    assert run.metrics["test/ndcg@10"] == metrics["test/ndcg@10"]


def test_not_a_run_directory_is_named(tmp_path):
    with pytest.raises(RunError, match=str(tmp_path)):
        load_run(tmp_path)
