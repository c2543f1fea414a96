"""Build model parts from config with the sizes the data dictates (never read from a global)."""

from __future__ import annotations

import inspect

import hydra
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from recsys.data.datamodule import InteractionDataModule
from recsys.data.interactions import InteractionData


def build_scorer(scorer_cfg: DictConfig, data: InteractionData) -> nn.Module:
    """Instantiate the scorer, passing sizes and, where its constructor takes them, side features.

    A wrapper (e.g. the propensity head) names its inner scorer under `base:`; the base is built
    first, the same way, and passed in.
    """
    target = hydra.utils.get_class(scorer_cfg._target_)
    accepted = inspect.signature(target.__init__).parameters
    sizes = {
        "num_users": data.num_users,
        "num_items": data.num_items,
        "user_features": data.user_features,
        "item_features": data.item_features,
        # Training counts: rows with none are cold (towers give them an "unknown id" embedding).
        "user_counts": torch.bincount(data.train.users, minlength=data.num_users),
        "item_counts": torch.bincount(data.train.items, minlength=data.num_items),
    }
    given = {k: v for k, v in sizes.items() if k in accepted}
    if "base" in scorer_cfg and "base" in accepted:
        given["base"] = build_scorer(scorer_cfg.base, data)
        scorer_cfg = OmegaConf.create(
            {k: v for k, v in scorer_cfg.items() if k != "base"}
        )  # built: not again
    # Partial first: tensors and FeatureTables cannot pass through OmegaConf as instantiate kwargs.
    make = hydra.utils.instantiate(scorer_cfg, _partial_=True, _convert_="all")
    return make(**given)


def build_loss(model_cfg: DictConfig, datamodule: InteractionDataModule) -> nn.Module:
    """`model.loss` names an entry of `model.losses`; losses that need sampling statistics get them."""
    if model_cfg.loss not in model_cfg.losses:
        raise ValueError(
            f"model.loss={model_cfg.loss!r} is not one of model.losses: {sorted(model_cfg.losses)}"
        )
    loss = hydra.utils.instantiate(model_cfg.losses[model_cfg.loss])
    if hasattr(loss, "prepare"):
        loss.prepare(datamodule.item_counts, datamodule.negative_sampler().probs)
    return loss
