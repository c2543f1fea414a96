"""Build model parts from config with what the data dictate, passed explicitly (never read from a global)."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from recsys.models.contracts import Scorer, ScorerInputs
from recsys.models.losses import RetrievalLoss


def build_scorer(scorer_cfg: DictConfig | dict, inputs: ScorerInputs) -> Scorer:
    """`scorer_cfg._target_` names a scorer class; its `from_inputs(inputs, **rest)` builds it.

    A wrapper (the propensity head) names its inner scorer under `base:`; the base is built first,
    from the same inputs, and passed in.
    """
    config = (
        OmegaConf.to_container(scorer_cfg, resolve=True)
        if isinstance(scorer_cfg, DictConfig)
        else dict(scorer_cfg)
    )
    target = hydra.utils.get_class(config.pop("_target_"))
    for key in ("_partial_", "_convert_", "_recursive_"):
        config.pop(key, None)
    if "base" in config:
        config["base"] = build_scorer(config["base"], inputs)
    return target.from_inputs(inputs, **config)


def build_loss(model_cfg: DictConfig, item_counts: Tensor, negative_probs: Tensor) -> RetrievalLoss:
    """`model.loss` names an entry of `model.losses`; it gets the training item counts and the
    negative sampler's probabilities (what the logQ corrections need; other losses ignore them)."""
    if model_cfg.loss not in model_cfg.losses:
        raise ValueError(
            f"model.loss={model_cfg.loss!r} is not one of model.losses: {sorted(model_cfg.losses)}"
        )
    loss = hydra.utils.instantiate(model_cfg.losses[model_cfg.loss])
    if not isinstance(loss, RetrievalLoss):
        raise TypeError(
            f"model.losses.{model_cfg.loss}: {type(loss).__name__} is not a "
            "recsys.models.losses.RetrievalLoss"
        )
    loss.prepare(item_counts, negative_probs)
    return loss
