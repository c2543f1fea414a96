"""Evaluate any scorer (the `user_embedding` / `item_embedding` / `score_all_items` contract) outside Lightning.

Used for baselines, benchmarks and tests; the LightningModule runs the same two functions per batch.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from recsys.errors import TrainingError
from recsys.metrics.ranking import RankingAccumulator, topk_items
from recsys.models.contracts import Scorer


def score_all_items(scorer: Scorer, users: Tensor) -> Tensor:
    """(B, I) float32 scores, outside autocast: rankings are decided in full precision."""
    with torch.autocast(device_type=users.device.type, enabled=False):
        return scorer.score_all_items(users).float()


# Lightning's stage names (trainer.state.stage) as the split a stage ranks.
SPLIT_OF_STAGE = {"validate": "valid", "sanity_check": "valid", "test": "test"}


def rank_batch(
    scorer: Scorer, batch: dict[str, Tensor], k: int, stage: str | None = None
) -> Tensor:
    scores = score_all_items(scorer, batch["users"])
    # One host sync per chunk of users (evaluation, not the training hot path): a NaN or inf score
    # would rank arbitrarily and give finite-looking metrics.
    if not bool(torch.isfinite(scores).all()):
        split = SPLIT_OF_STAGE.get(getattr(stage, "value", stage), "evaluation")
        raise TrainingError(
            f"non-finite scores while ranking the {split} split: the model's weights or scores "
            "overflowed; no metrics are computed from them"
        )
    # A scorer's `score_all_items` returns a new tensor (MF, two-tower: a matmul), which the mask
    # may overwrite instead of copying B x I floats; a view (popularity's expanded counts) is copied.
    fresh = scores._base is None
    return topk_items(scores, k, (batch["exclude_rows"], batch["exclude_items"]), inplace=fresh)


@torch.no_grad()
def evaluate_ranking(
    scorer: Scorer,
    batches: Iterable[dict[str, Tensor]],
    ks: list[int],
    num_items: int,
    keep_per_user: bool = False,
) -> tuple[dict[str, float], dict[str, Tensor]]:
    """Mean metrics and (optionally) the per-user table over all chunks of `batches`."""
    acc = RankingAccumulator(ks, num_items, keep_per_user)
    was_training = scorer.training
    scorer.eval()
    for batch in batches:
        topk = rank_batch(scorer, batch, max(ks))
        acc.update(
            batch["users"],
            topk,
            (batch["target_rows"], batch["target_items"]),
            batch["num_targets"],
        )
    scorer.train(was_training)
    return acc.compute(), acc.per_user_table()
