"""Config -> objects -> Trainer -> run directory. `scripts/train.py` is a thin Hydra wrapper around `train`."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from recsys.callbacks import EpochTimer
from recsys.data.datamodule import InteractionDataModule, build_datamodule
from recsys.metrics.evaluate import evaluate_ranking
from recsys.models.components.popularity import PopularityScorer
from recsys.models.factory import build_loss, build_scorer
from recsys.models.retrieval import RetrievalModule
from recsys.perf.allocator import retain_freed_memory
from recsys.perf.memory import estimate_training_memory
from recsys.reports.cold_start import cold_start_metrics
from recsys.reports.propensity import has_propensity_head, propensity_report
from recsys.run_files import write_json, write_per_user_metrics, write_vocabularies

log = logging.getLogger(__name__)


def resolve_precision(trainer_cfg: DictConfig) -> str:
    """`precision: auto` means bf16 mixed precision where training runs on CUDA, full fp32 elsewhere."""
    precision = str(trainer_cfg.get("precision", "auto"))
    if precision != "auto":
        return precision
    on_cuda = (
        trainer_cfg.get("accelerator", "auto") in ("auto", "gpu", "cuda")
        and torch.cuda.is_available()
    )
    return "bf16-mixed" if on_cuda else "32-true"


def lr_scale(rule: str, world_size: int) -> float:
    """Learning-rate multiplier for a global batch `world_size` times the per-process one.

    'sqrt' suits Adam-type optimisers (Malladi et al., 2022), 'linear' SGD (Goyal et al., 2017).
    """
    rules = {"none": 1.0, "linear": float(world_size), "sqrt": float(world_size) ** 0.5}
    if rule not in rules:
        raise ValueError(f"lr_scaling must be one of {sorted(rules)}, got {rule!r}")
    return rules[rule]


def build_objects(cfg: DictConfig) -> dict[str, Any]:
    """Everything a run needs, built from config; sizes come from the data, passed explicitly."""
    datamodule = build_datamodule(cfg.data, cfg.seed)
    data = datamodule.load()
    scorer = build_scorer(cfg.model.scorer, data)  # before anything else draws from the seeded RNG
    if has_propensity_head(scorer):  # predictions undo the training set's negative down-sampling
        scorer.set_keep_rate(datamodule.label_negative_keep_rate)
    loss = build_loss(cfg.model, datamodule)
    callbacks = [
        hydra.utils.instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None
    ]
    loggers = [
        hydra.utils.instantiate(c) for c in (cfg.get("logger") or {}).values() if c is not None
    ]
    trainer: pl.Trainer = hydra.utils.instantiate(
        cfg.trainer,
        precision=resolve_precision(cfg.trainer),
        callbacks=callbacks,
        logger=loggers or False,
    )
    # Under DDP one optimiser step sees data.loader.batch_size rows on each of world_size processes.
    optimizer_cfg = OmegaConf.to_container(cfg.model.module.optimizer, resolve=True)
    if trainer.world_size > 1 and "lr" in optimizer_cfg:
        base = optimizer_cfg["lr"]
        optimizer_cfg["lr"] = base * lr_scale(cfg.get("lr_scaling", "none"), trainer.world_size)
        log.info(
            "DDP world size %d: %d rows per step, lr %g -> %g (lr_scaling=%s)",
            trainer.world_size,
            trainer.world_size * datamodule.batch_size,
            base,
            optimizer_cfg["lr"],
            cfg.get("lr_scaling", "none"),
        )
    module: RetrievalModule = hydra.utils.instantiate(
        cfg.model.module,
        scorer=scorer,
        loss=loss,
        optimizer=hydra.utils.instantiate(optimizer_cfg),
        _convert_="all",
    )
    return {"datamodule": datamodule, "data": data, "module": module, "trainer": trainer}


def popularity_baseline(datamodule: InteractionDataModule, ks: list[int]) -> dict[str, float]:
    data = datamodule.load()
    scorer = PopularityScorer(datamodule.item_counts)
    metrics, _ = evaluate_ranking(
        scorer, datamodule.ranking_batches("test", torch.device("cpu")), ks, data.num_items
    )
    return {f"popularity/test/{k}": v for k, v in metrics.items()}


def objective(metrics: dict[str, float], cfg: DictConfig) -> float:
    """The number sweepers optimise: `optimized_metric` (default best/<monitor>, a validation score)."""
    name = cfg.get("optimized_metric") or f"best/{cfg.model.module.monitor}"
    if name not in metrics:
        raise KeyError(f"optimized_metric={name!r} is not in the run's metrics: {sorted(metrics)}")
    return metrics[name]


def train(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """Train, test the best checkpoint, write the run directory; returns (metrics, objects).

    Under DDP every process runs this; only global rank 0 writes the run directory, and the
    evaluation metrics it writes are gathered over all ranks' users.
    """
    started = time.time()
    out = Path(cfg.paths.output_dir)
    pl.seed_everything(cfg.seed, workers=True)
    if cfg.get("retain_freed_memory", True):
        retain_freed_memory()
    if cfg.get("matmul_precision"):
        torch.set_float32_matmul_precision(cfg.matmul_precision)

    objects = build_objects(cfg)
    datamodule, data, module, trainer = (
        objects[k] for k in ("datamodule", "data", "module", "trainer")
    )
    writer = trainer.is_global_zero
    if writer:
        # Hydra saves the unresolved config in CLI runs; this resolved copy is what load_run rebuilds from.
        (out / ".hydra").mkdir(parents=True, exist_ok=True)  # also creates the run directory
        (out / ".hydra" / "resolved.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        summary = data.summary()
        log.info("data: %s", json.dumps(summary))
        report = {**data.report, "summary": summary, "test_fingerprint": data.test.fingerprint()}
        write_json(out / "data_report.json", report)
        write_vocabularies(out / "vocab", data)

    estimate = estimate_training_memory(module, datamodule)
    log.info("memory estimate (GiB): %s", json.dumps({k: round(v, 3) for k, v in estimate.items()}))
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=True)
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    trainer.test(module, datamodule=datamodule, ckpt_path=best or None, weights_only=True)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
    monitor = module.hparams.monitor
    if (
        trainer.checkpoint_callback is not None
        and trainer.checkpoint_callback.best_model_score is not None
    ):
        metrics[f"best/{monitor}"] = float(trainer.checkpoint_callback.best_model_score)
    for cb in trainer.callbacks:
        if isinstance(cb, EpochTimer):
            metrics.update(cb.summary())
    metrics["epochs"] = trainer.current_epoch
    if not writer:
        return metrics, objects
    metrics.update(popularity_baseline(datamodule, module.ks))
    metrics.update(cold_start_metrics(datamodule, module.scorer, module.ks))  # {} unless cold-start
    if has_propensity_head(module.scorer):  # calibrate on validation, evaluate, save calibration
        calibration = cfg.model.get("calibration") or {}
        metrics.update(propensity_report(module.scorer, datamodule, calibration, out, trainer))
    metrics["wall_time_s"] = time.time() - started
    for lg in trainer.loggers:
        lg.log_metrics({k: v for k, v in metrics.items() if "/" in k}, step=trainer.global_step)
    write_json(out / "metrics.json", metrics)
    write_per_user_metrics(out / "per_user_metrics.parquet", module.per_user_results, data.user_ids)
    log.info("test metrics: %s", json.dumps({k: round(v, 4) for k, v in metrics.items()}))
    log.info("run directory: %s", out)
    return metrics, objects
