"""DDP: rank sharding of the loaders, the learning-rate rule, and a 2-process CPU (gloo) sweep whose
metrics equal a single-process evaluation of the saved checkpoints."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from recsys.data.datamodule import build_datamodule
from recsys.metrics.evaluate import evaluate_ranking
from recsys.run_dir import RunDir
from recsys.train import lr_scale
from tests.conftest import TINY, compose_config
from tests.test_sweeps import run_cli


@pytest.fixture
def datamodule(tmp_path):
    cfg = compose_config(TINY, tmp_path / "run")
    return build_datamodule(cfg.data, cfg.seed)


def test_training_rows_are_split_between_ranks(datamodule):
    """Every row once per epoch over all ranks (plus DistributedSampler-style padding), equal steps."""
    full = datamodule.train_batches(torch.device("cpu"))
    shards = [datamodule.train_batches(torch.device("cpu"), rank=r, world_size=3) for r in range(3)]
    assert len({len(s) for s in shards}) == 1  # DDP needs the same number of steps on every rank
    assert len({s.num_steps for s in shards}) == 1
    batches = [list(s.minibatches()) for s in shards]
    rows = [torch.cat([b["users"] * 10_000 + b["items"] for b in bs]) for bs in batches]
    assert len({r.numel() for r in rows}) == 1
    every = torch.cat(rows)
    reference = torch.cat([b["users"] * 10_000 + b["items"] for b in full.minibatches()])
    assert every.numel() - reference.numel() < 3  # at most world_size - 1 padded rows
    assert torch.equal(torch.unique(every), torch.unique(reference))
    negatives = [bs[0]["negatives"] for bs in batches]
    assert not torch.equal(negatives[0], negatives[1])  # per-rank negative streams


def test_ranking_users_are_partitioned_between_ranks(datamodule):
    full = torch.cat([b["users"] for b in datamodule.ranking_batches("test", torch.device("cpu"))])
    parts = [
        torch.cat([b["users"] for b in datamodule.ranking_batches("test", None, r, 2)])
        for r in range(2)
    ]
    assert torch.equal(torch.cat(parts), full)  # disjoint, complete, no padding
    with pytest.raises(ValueError, match="DDP processes"):
        datamodule.ranking_batches("test", None, 0, full.numel() + 1)


def test_lr_scaling_rule():
    assert lr_scale("none", 8) == 1.0
    assert lr_scale("linear", 8) == 8.0
    assert lr_scale("sqrt", 4) == 2.0
    assert lr_scale("sqrt", 1) == 1.0
    with pytest.raises(ValueError, match="lr_scaling"):
        lr_scale("cubic", 2)


@pytest.mark.slow
def test_ddp_sweep_matches_single_process_evaluation(tmp_path):
    """Must-show 4, through the real entry point and in a multirun (where Lightning's re-launch of
    `sys.argv` would restart the sweep): 2 gloo processes per job, 2 jobs one after the other."""
    sweep = tmp_path / "sweep"
    run_cli(["-m", "trainer=ddp", *TINY, "model.dim=8,16", "lr_scaling=linear",
             f"hydra.sweep.dir={sweep}"], tmp_path)  # fmt: skip
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir() and p.name[0] != ".") == ["0", "1"]
    assert not (tmp_path / "outputs").exists() and not (tmp_path / "multirun").exists()
    for job in ("0", "1"):
        run_dir = sweep / job
        child_log = (run_dir / "rank1.log").read_text()  # rank 1 ran this job's config, here
        assert "GLOBAL_RANK: 1, MEMBER: 2/2" in child_log
        assert "lr 0.005 -> 0.01 (lr_scaling=linear)" in child_log
        saved = json.loads((run_dir / "metrics.json").read_text())
        run = RunDir(run_dir).load()
        ks = list(run.cfg.model.module.ks)
        batches = run.run_dir.load_data().ranking_batches("test", torch.device("cpu"))
        reference, table = evaluate_ranking(
            run.scorer, batches, ks, run.scorer.num_items, keep_per_user=True
        )
        assert len(reference) == len([k for k in saved if k.startswith("test/")])
        for name, value in reference.items():
            assert saved[f"test/{name}"] == pytest.approx(value, abs=1e-6), name
        per_user = pd.read_parquet(run_dir / "per_user_metrics.parquet")
        order = table["user_idx"].argsort()
        assert per_user["user_idx"].tolist() == table["user_idx"][order].tolist()  # each user once
        assert per_user["ndcg@10"].to_numpy() == pytest.approx(
            table["ndcg@10"][order].numpy(), abs=1e-6
        )
