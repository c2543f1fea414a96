"""End-to-end training through `recsys.train.train` with configs composed from conf/."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
import pytorch_lightning as pl

from recsys.train import build_objects, train
from tests.conftest import ROOT, compile_fallbacks, compose_config, require_data


def test_run_directory_has_everything(tiny_cfg, tmp_path):
    metrics, _ = train(tiny_cfg())
    run = tmp_path / "run"
    for name in (
        "metrics.json",
        "data_report.json",
        "per_user_metrics.parquet",
        "vocab/users.txt",
        "vocab/items.txt",
    ):
        assert (run / name).is_file(), name
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert any(p.name.startswith("epoch") for p in (run / "checkpoints").iterdir())
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    saved = json.loads((run / "metrics.json").read_text())
    for key in ("test/ndcg@10", "test/recall@20", "test/coverage@10", "popularity/test/ndcg@10"):
        assert 0.0 <= saved[key] <= 1.0, key
    assert saved == pytest.approx(metrics)
    per_user = pd.read_parquet(run / "per_user_metrics.parquet")
    assert per_user["user_id"].str.startswith("u").all()
    assert per_user["ndcg@10"].mean() == pytest.approx(saved["test/ndcg@10"], abs=1e-6)


def test_default_synthetic_run_beats_popularity(tmp_path):
    """The no-argument run (default data and model), shortened to 5 epochs."""
    cfg = compose_config(["trainer.max_epochs=5", "callbacks.progress_bar=null"], tmp_path / "run")
    metrics, _ = train(cfg)
    assert metrics["test/ndcg@10"] >= 1.5 * metrics["popularity/test/ndcg@10"]


def test_same_seed_same_metrics(tiny_cfg, tmp_path):
    a, _ = train(tiny_cfg(output_dir=tmp_path / "a"))
    b, _ = train(tiny_cfg(output_dir=tmp_path / "b"))
    drop = {"wall_time_s", "time/train_epoch_s", "time/train_rows_per_s"}
    assert {k: v for k, v in a.items() if k not in drop} == {
        k: v for k, v in b.items() if k not in drop
    }
    c, _ = train(tiny_cfg("seed=7", output_dir=tmp_path / "c"))
    assert c["test/ndcg@10"] != a["test/ndcg@10"]


def test_steps_per_batch_changes_speed_not_results(tiny_cfg, tmp_path):
    """k minibatches per Lightning batch are the same k optimizer steps, in the same order."""
    one, _ = train(tiny_cfg("data.loader.steps_per_batch=1", output_dir=tmp_path / "one"))
    grouped, _ = train(tiny_cfg("data.loader.steps_per_batch=3", output_dir=tmp_path / "three"))
    for key, value in one.items():
        if key.startswith(("test/", "best/")):
            assert grouped[key] == pytest.approx(value, abs=1e-6), key


@pytest.mark.compiler
def test_compiled_training_matches_eager(tiny_cfg, tmp_path, compiled_names, recwarn):
    """model.module.compile=true compiles the loss and the sparse row update: same model, faster."""
    sparse = "optimizer=sparse_adam"
    eager, _ = train(tiny_cfg(sparse, output_dir=tmp_path / "eager"))
    assert compiled_names == []
    compiled, _ = train(
        tiny_cfg(sparse, "model.module.compile=true", output_dir=tmp_path / "compiled")
    )
    assert sorted(compiled_names) == ["lazy_adam_rows", "retrieval_terms"]  # loss, row update
    assert compile_fallbacks(recwarn) == [], "fell back to eager: compiling failed"
    for key in ("test/ndcg@10", "test/recall@20", "best/val/ndcg@10"):
        assert compiled[key] == pytest.approx(eager[key], abs=0.02), key


def test_lr_schedule_and_gradient_clipping_are_applied(tiny_cfg, tmp_path):
    """Optimisation is manual, so the module steps the schedule and clips; both must still act."""
    step_lr = "{_target_:torch.optim.lr_scheduler.StepLR,_partial_:true,step_size:1,gamma:0.5}"
    _, objects = train(tiny_cfg("trainer.max_epochs=3", f"model.module.scheduler={step_lr}"))
    lr = objects["trainer"].optimizers[0].param_groups[0]["lr"]
    assert lr == pytest.approx(0.005 * 0.5**3)  # conf/model/mf.yaml lr, halved after each epoch

    # Clipped to a vanishing norm, Adam's steps shrink to ~lr * |g| / eps: the weights stay at init.
    cfg = tiny_cfg("model.module.gradient_clip_val=1e-12", output_dir=tmp_path / "clipped")
    pl.seed_everything(cfg.seed)
    init = build_objects(cfg)["module"].scorer.state_dict()
    _, objects = train(cfg)
    moved = max(
        float((w - init[k]).abs().max()) for k, w in objects["module"].scorer.state_dict().items()
    )
    assert moved < 1e-4


def test_resume_from_last_checkpoint_matches_uninterrupted(tiny_cfg, tmp_path):
    full, _ = train(tiny_cfg("trainer.max_epochs=4", output_dir=tmp_path / "full"))
    train(tiny_cfg("trainer.max_epochs=2", output_dir=tmp_path / "part"))
    last = tmp_path / "part" / "checkpoints" / "last.ckpt"
    resumed, _ = train(
        tiny_cfg("trainer.max_epochs=4", f"ckpt_path={last}", output_dir=tmp_path / "part")
    )
    for key, value in full.items():
        if key.startswith("test/"):
            assert resumed[key] == value, key


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "file not found"),
        ("", "file is empty"),
        ("1\t2\n3\t4\n", "expected 4 columns"),
    ],
    ids=["missing", "empty", "wrong-columns"],
)
def test_bad_ml100k_file_gives_one_clear_error(tmp_path, content, expected):
    src = require_data("ml-100k", "u.user", "u.item", "u1.base", "u1.test")
    root = tmp_path / "ml"
    root.mkdir()
    for name in ("u.user", "u.item", "u1.test"):
        (root / name).write_bytes((src / name).read_bytes())
    if content is not None:
        (root / "u1.base").write_text(content)
    cmd = [sys.executable, str(ROOT / "scripts" / "train.py"), "experiment=ml100k_mf", f"data.root={root}",
           f"hydra.run.dir={tmp_path / 'run'}"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert f"{root / 'u1.base'}: {expected}" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_ml100k_mf_reaches_published_quality(tmp_path):
    """Must-show of the MF issue: NDCG@10 >= 0.50 on the canonical u1 split."""
    root = require_data("ml-100k", "u.user", "u.item", "u1.base", "u1.test")
    cfg = compose_config(
        ["experiment=ml100k_mf", f"data.root={root}", "callbacks.progress_bar=null"],
        tmp_path / "run",
    )
    metrics, _ = train(cfg)
    assert metrics["test/ndcg@10"] >= 0.50
    assert metrics["popularity/test/ndcg@10"] == pytest.approx(0.325, abs=0.01)


def test_epoch_timer_leaves_out_validation(monkeypatch):
    """Lightning validates inside the training epoch; time/train_rows_per_s must not count it."""
    from types import SimpleNamespace

    import recsys.callbacks as callbacks

    clock = iter([0.0, 2.0, 12.0, 13.0])  # epoch start, validation start / end, epoch end
    monkeypatch.setattr(callbacks.time, "perf_counter", lambda: next(clock))
    timer = callbacks.EpochTimer()
    trainer = SimpleNamespace(train_dataloader=SimpleNamespace(num_rows=600))
    module = SimpleNamespace(device=SimpleNamespace(type="cpu"), log=lambda *a, **k: None)
    timer.on_train_epoch_start(trainer, module)
    timer.on_validation_start(trainer, module)
    timer.on_validation_end(trainer, module)
    timer.on_train_epoch_end(trainer, module)
    assert timer.epoch_seconds == [3.0]  # 2 s before validation + 1 s after it
    assert timer.summary()["time/train_rows_per_s"] == 200.0
