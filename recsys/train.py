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

from recsys.cold_start_eval import cold_start_metrics
from recsys.data.datamodule import InteractionDataModule, build_datamodule
from recsys.metrics.evaluate import evaluate_ranking
from recsys.models.components.popularity import PopularityScorer
from recsys.models.factory import build_loss, build_scorer
from recsys.models.retrieval import RetrievalModule
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


def build_objects(cfg: DictConfig) -> dict[str, Any]:
    """Everything a run needs, built from config; sizes come from the data, passed explicitly."""
    datamodule = build_datamodule(cfg.data, cfg.seed)
    data = datamodule.load()
    scorer = build_scorer(cfg.model.scorer, data)
    loss = build_loss(cfg.model, datamodule)
    module: RetrievalModule = hydra.utils.instantiate(
        cfg.model.module, scorer=scorer, loss=loss, _convert_="all"
    )
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
    return {"datamodule": datamodule, "data": data, "module": module, "trainer": trainer}


def popularity_baseline(datamodule: InteractionDataModule, ks: list[int]) -> dict[str, float]:
    data = datamodule.load()
    scorer = PopularityScorer(datamodule.item_counts)
    metrics, _ = evaluate_ranking(
        scorer, datamodule.ranking_batches("test", torch.device("cpu")), ks, data.num_items
    )
    return {f"popularity/test/{k}": v for k, v in metrics.items()}


def train(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """Train, test the best checkpoint, write the run directory; returns (metrics, objects)."""
    started = time.time()
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(cfg.seed, workers=True)
    if cfg.get("matmul_precision"):
        torch.set_float32_matmul_precision(cfg.matmul_precision)

    # Hydra saves the unresolved config in CLI runs; this resolved copy is what load_run rebuilds from.
    (out / ".hydra").mkdir(exist_ok=True)
    (out / ".hydra" / "resolved.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    objects = build_objects(cfg)
    datamodule, data, module, trainer = (
        objects[k] for k in ("datamodule", "data", "module", "trainer")
    )
    summary = data.summary()
    log.info("data: %s", json.dumps(summary))
    report = {**data.report, "summary": summary, "test_fingerprint": data.test.fingerprint()}
    write_json(out / "data_report.json", report)
    write_vocabularies(out / "vocab", data)

    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    trainer.test(module, datamodule=datamodule, ckpt_path=best or None, weights_only=True)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
    metrics.update(popularity_baseline(datamodule, module.ks))
    metrics.update(
        cold_start_metrics(datamodule, module.scorer, module.ks)
    )  # {} unless cold-start data
    monitor = module.hparams.monitor
    if (
        trainer.checkpoint_callback is not None
        and trainer.checkpoint_callback.best_model_score is not None
    ):
        metrics[f"best/{monitor}"] = float(trainer.checkpoint_callback.best_model_score)
    metrics["epochs"] = trainer.current_epoch
    metrics["wall_time_s"] = time.time() - started
    for lg in trainer.loggers:
        lg.log_metrics({k: v for k, v in metrics.items() if "/" in k}, step=trainer.global_step)
    write_json(out / "metrics.json", metrics)
    write_per_user_metrics(out / "per_user_metrics.parquet", module.per_user_results, data.user_ids)
    log.info("test metrics: %s", json.dumps({k: round(v, 4) for k, v in metrics.items()}))
    log.info("run directory: %s", out)
    return metrics, objects
