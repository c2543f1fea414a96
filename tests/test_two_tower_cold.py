"""Cold-start items: held out entirely from training, ranked from their features at test time."""

from __future__ import annotations

import json

import pytest
import torch

from recsys.data.sources.cold_start import ColdStartSource
from recsys.data.sources.synthetic import SyntheticSource
from recsys.train import train
from tests.conftest import compose_config

COLD = [
    "data._target_=recsys.data.sources.cold_start.ColdStartSource",
    "+data.wrapped=recsys.data.sources.synthetic.SyntheticSource",
    "+data.cold_fraction=0.1",
    "+data.cold_seed=0",
]


def test_cold_items_are_removed_entirely_and_kept_for_testing():
    source = SyntheticSource(num_users=200, num_items=150, mean_interactions=15, seed=1)
    full = source()
    cold = ColdStartSource(source, cold_fraction=0.1, cold_seed=4)()
    present = torch.unique(torch.cat([full.train.items, full.valid.items, full.test.items]))
    assert cold.cold_items.numel() == round(0.1 * present.numel())
    for split in (cold.train, cold.valid, cold.test):
        assert not torch.isin(split.items, cold.cold_items).any()
    assert torch.isin(cold.cold_test.items, cold.cold_items).all()
    assert len(cold.train) + len(cold.valid) + len(cold.test) + len(cold.cold_test) == (
        len(full.train) + len(full.valid) + len(full.test)
    )
    step = cold.report["steps"][-1]
    assert step["step"] == "cold_start" and step["cold_test_rows"] == len(cold.cold_test)
    # Built from a dotted path and the wrapped source's own keys, as the Hydra config does.
    again = ColdStartSource(
        "recsys.data.sources.synthetic.SyntheticSource",
        cold_seed=4,
        num_users=200,
        num_items=150,
        mean_interactions=15,
        seed=1,
    )()
    assert torch.equal(again.cold_items, cold.cold_items)


def test_cold_run_reports_whole_catalogue_and_cold_only_views(tiny_cfg, tmp_path):
    metrics, _ = train(tiny_cfg("model=two_tower", "model.scorer.item_id_dropout=0.3", *COLD))
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    n_cold = saved["test_cold/items"]
    assert n_cold == 20  # 10% of the 200 items
    for view in ("test_cold", "test_cold_only"):
        for key in ("recall@20", "ndcg@10"):
            assert 0.0 <= saved[f"{view}/{key}"] <= 1.0
    assert saved["random/test_cold_only/recall@10"] == pytest.approx(10 / n_cold)
    assert saved["random/test_cold/recall@10"] < saved["random/test_cold_only/recall@10"]
    assert saved["test/ndcg@10"] == pytest.approx(metrics["test/ndcg@10"])


@pytest.mark.slow
def test_features_rank_cold_items_better_than_ids_alone(tmp_path):
    """On the synthetic world (item features are noisy views of the true item factors)."""
    base = ["model=two_tower", "model.scorer.item_id_dropout=0.3", "trainer.max_epochs=4",
            "callbacks.progress_bar=null", *COLD]  # fmt: skip
    with_f, _ = train(compose_config(base, tmp_path / "with"))
    without, _ = train(compose_config([*base, "model.scorer.use_features=false"], tmp_path / "ids"))
    assert with_f["test_cold_only/recall@20"] >= 2 * with_f["random/test_cold_only/recall@20"]
    assert with_f["test_cold_only/recall@20"] > without["test_cold_only/recall@20"] + 0.05
