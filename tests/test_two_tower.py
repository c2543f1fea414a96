"""Two-tower scorer: contract, TorchScript parity, cold rows, id-only fallback, training logs."""

from __future__ import annotations

import logging

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from recsys.data.interactions import FeatureTable
from recsys.data.sources.synthetic import SyntheticSource
from recsys.metrics.evaluate import evaluate_ranking
from recsys.models.components.towers import TwoTower
from recsys.models.contracts import ScorerInputs
from recsys.models.factory import build_scorer
from recsys.models.losses import InBatchSoftmaxLoss
from recsys.run_dir import RunDir
from recsys.train import train
from tests.conftest import compose_config, require_data


class FeaturelessSynthetic(SyntheticSource):
    """The synthetic world with its side features stripped, like a bare interaction log."""

    def __call__(self):
        data = super().__call__()
        data.user_features, data.item_features = FeatureTable(), FeatureTable()
        return data


@pytest.fixture(scope="module")
def data():
    return SyntheticSource(num_users=120, num_items=80, mean_interactions=10, seed=3)()


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_scripted_model_matches_eager(tiny_cfg, data):
    cfg = tiny_cfg("model=two_tower", "model.scorer.item_id_dropout=0.3")
    model = build_scorer(cfg.model.scorer, ScorerInputs.from_data(data)).eval()
    scripted = torch.jit.script(model)
    users, items = torch.tensor([0, 5, 7]), torch.tensor([3, 3, 79])
    torch.testing.assert_close(scripted.user_embedding(users), model.user_embedding(users))
    torch.testing.assert_close(scripted.item_embedding(items), model.item_embedding(items))
    torch.testing.assert_close(scripted.score(users, items), model.score(users, items))
    torch.testing.assert_close(scripted.score_all_items(users), model.score_all_items(users))
    assert model.score_all_items(users).shape == (3, data.num_items)


def twins(num_items: int) -> FeatureTable:
    """Items 0 and 1 share every feature; item 2 differs."""
    category = torch.tensor([1, 1, 2] + [3] * (num_items - 3))
    tags = torch.zeros(num_items, 3)
    tags[:2, 0] = tags[:2, 2] = 1.0
    price = torch.tensor([0.5, 0.5, -1.0] + [0.0] * (num_items - 3))
    return FeatureTable(
        categorical={"category": category},
        multi_hot={"tags": tags},
        numeric={"price": price},
        cardinality={"category": 4, "tags": 3},
    )


def test_cold_items_are_placed_by_their_features():
    counts = torch.ones(10, dtype=torch.int64)
    counts[:3] = 0  # items 0, 1, 2 never seen in training
    model = TwoTower(5, 10, 8, item_features=twins(10), item_counts=counts).eval()
    e = model.item_embedding(torch.arange(4))
    torch.testing.assert_close(e[0], e[1])  # same features, no usable id: same place
    assert not torch.allclose(e[0], e[2])  # different features: a different place
    assert not torch.allclose(e[0], e[3])  # warm items keep their own id embedding
    ids_only = TwoTower(5, 10, 8, item_features=twins(10), item_counts=counts, use_features=False)
    e = ids_only.eval().item_embedding(torch.arange(3))
    torch.testing.assert_close(e[0], e[2])  # without features every cold item looks the same


def test_item_id_dropout_applies_in_training_only():
    model = TwoTower(5, 10, 8, item_features=twins(10), item_id_dropout=1.0)
    items = torch.tensor([0, 1])
    train_emb = model.train().item_embedding(items)
    torch.testing.assert_close(train_emb[0], train_emb[1])  # ids all dropped: features alone
    eval_emb = model.eval().item_embedding(items)
    assert not torch.allclose(eval_emb[0], eval_emb[1])


def test_gradients_reach_both_towers_and_the_temperature(data):
    model = TwoTower(data.num_users, data.num_items, 16, data.user_features, data.item_features)
    loss_fn = InBatchSoftmaxLoss(logq_correction="counts", mixed_negatives=True)
    loss_fn.prepare(
        torch.bincount(data.train.items, minlength=data.num_items),
        torch.full((data.num_items,), 1.0 / data.num_items),
    )
    users, items = data.train.users[:32], data.train.items[:32]
    negatives = torch.randint(data.num_items, (32, 2))
    both = model.item_embedding(torch.cat([items, negatives.view(-1)]))
    loss = loss_fn(
        model.user_embedding(users), both[:32], both[32:].view(32, 2, -1), items, negatives
    )
    loss.backward()
    for tower in (model.user_tower, model.item_tower):
        for name, p in tower.named_parameters():
            if p.numel():  # the user side has no multi-hot features: an empty table
                assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert model.log_temperature.grad.abs() > 0


def test_featureless_log_gives_id_only_towers_with_a_note(tiny_cfg, caplog):
    caplog.set_level(logging.WARNING)
    cfg = tiny_cfg(
        "model=two_tower",
        "trainer.max_epochs=1",
        f"data._target_={FeaturelessSynthetic.__module__}.FeaturelessSynthetic",
    )
    metrics, objects = train(cfg)
    for side in ("user", "item"):
        assert f"no {side} side features; the {side} tower uses ids only" in caplog.text
    scorer = objects["module"].scorer
    assert not scorer.user_tower.use_features and not scorer.item_tower.use_features
    assert 0.0 <= metrics["test/ndcg@10"] <= 1.0


def test_tensorboard_has_loss_parts_temperature_and_metrics_per_epoch(tiny_cfg, tmp_path):
    metrics, _ = train(tiny_cfg("model=two_tower", "trainer.max_epochs=3"))
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard")).Reload()
    tags = set(events.Tags()["scalars"])
    for tag in ("train/loss", "train/loss_logsumexp", "train/loss_positive_logit",
                "train/accidental_hits_per_row", "train/temperature", "val/ndcg@10", "val/recall@20"):  # fmt: skip
        assert tag in tags, tag
        assert len(events.Scalars(tag)) == 3, tag  # one point per epoch
    assert events.Scalars("train/temperature")[-1].value != pytest.approx(0.05)  # it is learned
    # The run loads back (features are buffers in the checkpoint) and gives the same test metrics.
    run = RunDir(tmp_path / "run")
    scorer, _ = run.load_scorer()
    got, _ = evaluate_ranking(
        scorer, run.load_data().ranking_batches("test"), [10], scorer.num_items
    )
    assert got["ndcg@10"] == pytest.approx(metrics["test/ndcg@10"], abs=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["adam", "sparse_adam"])
def test_default_two_tower_beats_popularity(tmp_path, optimizer):
    """Must-show 1: `python scripts/train.py model=two_tower`, shortened to 4 epochs; also with
    row-sparse id tables (`optimizer=sparse_adam`)."""
    overrides = ["model=two_tower", "trainer.max_epochs=4", "callbacks.progress_bar=null"]
    if optimizer == "sparse_adam":
        overrides.append("optimizer=sparse_adam")
    cfg = compose_config(overrides, tmp_path / "run")
    metrics, _ = train(cfg)
    assert metrics["test/ndcg@10"] >= 3 * metrics["popularity/test/ndcg@10"]


def test_sparse_id_tables_update_only_the_batch_rows(tiny_cfg, data):
    """optimizer=sparse_adam: id tables get row-sparse gradients and lazy updates, the MLPs Adam."""
    from recsys.optim.sparse_adam import parameter_groups, sparse_dense_adam

    cfg = tiny_cfg("model=two_tower", "optimizer=sparse_adam")
    model = build_scorer(cfg.model.scorer, ScorerInputs.from_data(data))
    assert model.item_tower.id_table.sparse and model.user_tower.id_table.sparse
    optimizer = sparse_dense_adam(parameter_groups(model), lr=0.01, weight_decay=0.05)
    ids_before = model.item_tower.id_table.weight.detach().clone()
    mlp_before = model.item_tower.mlp[0].weight.detach().clone()
    users, items = torch.tensor([0, 1, 2]), torch.tensor([5, 6, 5])
    model.score(users, items).square().mean().backward()
    optimizer.step()
    moved = (model.item_tower.id_table.weight != ids_before).any(1).nonzero().view(-1)
    assert set(moved.tolist()) <= {
        5,
        6,
        data.num_items,
    }  # the batch's rows (or "unknown" on dropout)
    assert not torch.equal(model.item_tower.mlp[0].weight, mlp_before)


@pytest.mark.slow
def test_ml100k_two_tower_reaches_target(tmp_path):
    """Must-show 2: NDCG@10 >= 0.52 on the canonical u1 split."""
    root = require_data("ml-100k", "u.user", "u.item", "u1.base", "u1.test")
    cfg = compose_config(
        ["experiment=ml100k_two_tower", f"data.root={root}", "callbacks.progress_bar=null"],
        tmp_path / "run",
    )
    metrics, _ = train(cfg)
    assert metrics["test/ndcg@10"] >= 0.52
