"""Config -> objects -> fit -> test -> run directory. `scripts/train.py` is a thin Hydra wrapper.

`train` only trains: reports that read the tested model (popularity baseline, cold-start ranking,
propensity calibration) are callbacks (`recsys/reports/`), and every file of the run directory is
written through `RunDir`. The allocator setting is the entry script's choice, not the library's.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from recsys.callbacks import EpochTimer
from recsys.config import check_train_config
from recsys.data.datamodule import build_datamodule
from recsys.data.interactions import InteractionData
from recsys.divergence import DivergenceGuard
from recsys.errors import ConfigError
from recsys.models.contracts import ScorerInputs, has_propensity_head
from recsys.models.factory import build_loss, build_scorer
from recsys.models.retrieval import RetrievalModule
from recsys.perf.memory import estimate_training_memory
from recsys.reports.run_report import RunReport
from recsys.resume import restore_run_config
from recsys.run_dir import SPLITS, RunDir
from recsys.run_guard import RunGuard
from recsys.run_identity import RunIdentity, check_resume, run_identity
from recsys.tracking.mlflow_run import log_run

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
    inputs = ScorerInputs.from_data(data)
    # Built before anything else draws from the seeded RNG.
    scorer = build_scorer(cfg.model.scorer, inputs)
    if has_propensity_head(scorer):  # predictions undo the training set's negative down-sampling
        scorer.set_keep_rate(datamodule.label_negative_keep_rate)
    sampling = datamodule.negative_sampler().item_probabilities()
    loss = build_loss(cfg.model, inputs.item_counts, sampling)
    callbacks = [
        hydra.utils.instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None
    ]
    # Not optional, so not config: no NaN run passes as trained; every checkpoint names its data.
    identity = run_identity(cfg, data)
    callbacks += [DivergenceGuard(), RunIdentity(identity)]
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
    return {
        "datamodule": datamodule,
        "data": data,
        "inputs": inputs,
        "identity": identity,
        "module": module,
        "trainer": trainer,
    }


def objective(metrics: dict[str, float], cfg: DictConfig) -> float:
    """The number sweepers optimise: `optimized_metric` (default best/<monitor>, a validation score;
    `last/<monitor>` where a recipe keeps no best checkpoint)."""
    name = cfg.get("optimized_metric") or f"best/{cfg.model.module.monitor}"
    if name not in metrics:
        offered = sorted(k for k in metrics if k.startswith(("best/", "last/", "val/")))
        raise ConfigError(
            f"optimized_metric={name!r} is not among the run's metrics; validation scores it has: "
            f"{', '.join(offered) or 'none'} (a run without a best checkpoint has last/<monitor>)"
        )
    return metrics[name]


def write_run_inputs(
    run: RunDir, cfg: DictConfig, data: InteractionData, inputs: ScorerInputs, identity: dict
) -> None:
    """Before training: the resolved config, the data report, vocabularies, and what serving needs."""
    run.write_config(cfg)
    summary = data.summary()
    log.info("data: %s", json.dumps(summary))
    report = {**data.report, "summary": summary, "test_fingerprint": data.test.fingerprint()}
    report["data_fingerprint"] = identity["data_fingerprint"]  # checkpoints carry the same
    run.write_json("data_report.json", report)
    run.write_vocabularies(data.user_ids, data.item_ids, data.item_titles)
    splits = dict(zip(SPLITS, (data.train, data.valid, data.test), strict=True))
    run.write_training_state(inputs, {k: (s.users, s.items) for k, s in splits.items()})


def collect_metrics(
    trainer: pl.Trainer, module: RetrievalModule, last_score: float | None = None
) -> dict[str, float]:
    """Test metrics, the best and last validation scores, timings and every report's metrics."""
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
    if last_score is not None:  # the tested weights' score where no best checkpoint is kept
        metrics[f"last/{module.hparams.monitor}"] = last_score
    checkpoint = trainer.checkpoint_callback
    if checkpoint is not None and checkpoint.best_model_score is not None:
        metrics[f"best/{module.hparams.monitor}"] = float(checkpoint.best_model_score)
    for cb in trainer.callbacks:
        if isinstance(cb, EpochTimer):
            metrics.update(cb.summary())
        if isinstance(cb, RunReport):
            metrics.update(cb.metrics)
    metrics["epochs"] = trainer.current_epoch
    return metrics


def train(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """Train, test the best checkpoint, write the run directory; returns (metrics, objects).

    Under DDP every process runs this; only global rank 0 writes the run directory, and the
    evaluation metrics it writes are gathered over all ranks' users. A resume takes the resumed
    run's config (recsys/resume.py); one run at a time per directory (recsys/run_guard.py).
    """
    run = RunDir(cfg.paths.output_dir)
    with RunGuard(run, cfg.get("ckpt_path")) as guard:  # a refused start leaves no directory
        cfg = restore_run_config(cfg)
        check_train_config(cfg)  # before anything is written: a bad key costs nothing
        if cfg.model.get("kind") == "customer":  # one row per customer, not per interaction
            from recsys.marketing.customer_training import train_customers

            return train_customers(run, cfg, guard)
        return _train_into(run, cfg, guard)


def _train_into(run: RunDir, cfg: DictConfig, guard: RunGuard) -> tuple[dict, dict[str, Any]]:
    started = time.time()
    pl.seed_everything(cfg.seed, workers=True)
    if cfg.get("matmul_precision"):
        torch.set_float32_matmul_precision(cfg.matmul_precision)

    objects = build_objects(cfg)
    datamodule, data, module, trainer = (
        objects[k] for k in ("datamodule", "data", "module", "trainer")
    )
    if cfg.get("ckpt_path"):  # before anything is written: a wrong checkpoint leaves no trace
        check_resume(cfg.ckpt_path, objects["identity"], module, trainer.max_epochs)
    if trainer.is_global_zero:
        write_run_inputs(run, cfg, data, objects["inputs"], objects["identity"])
    estimate = estimate_training_memory(module, datamodule)
    log.info("memory estimate (GiB): %s", json.dumps({k: round(v, 3) for k, v in estimate.items()}))

    guard.training_started()
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=True)
    last_score = trainer.callback_metrics.get(module.hparams.monitor)  # before test resets them
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    trainer.test(module, datamodule=datamodule, ckpt_path=best or None, weights_only=True)

    metrics = collect_metrics(trainer, module, None if last_score is None else float(last_score))
    if not trainer.is_global_zero:
        return metrics, objects
    metrics["wall_time_s"] = time.time() - started
    for lg in trainer.loggers:
        lg.log_metrics({k: v for k, v in metrics.items() if "/" in k}, step=trainer.global_step)
    run.write_json("metrics.json", metrics)
    run.write_per_user_metrics(module.per_user_results, data.user_ids)
    log_run(trainer.loggers, run, cfg, metrics)  # MLflow: config, final metrics, files
    log.info("test metrics: %s", json.dumps({k: round(v, 4) for k, v in metrics.items()}))
    log.info("run directory: %s", run.root)
    return metrics, objects
