"""Audiences: every user ranked by calibrated P(convert | user, item) for an item or a list of items.

The probabilities come from the run's propensity head (calibration and down-sampling correction
included), for all users at once, a block of items at a time. The audience is the top `size` users
per item; `expected_conversions` is the running sum of their probabilities, i.e. the conversions
expected if the campaign reached the audience down to that row.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from recsys.data.interactions import InteractionData
from recsys.errors import DataError, RunError
from recsys.metrics.classification import lift_table
from recsys.models.contracts import Scorer, has_propensity_head
from recsys.run_dir import RunDir

NUM_DECILES = 10


class AudienceError(RunError):
    """A request the run cannot answer (unknown item, no propensity head); the CLI prints it alone."""


def item_indices(item_ids: Sequence, items: Sequence | str | int) -> list[int]:
    """Raw item ids (as in vocab/items.txt) to indices; unknown ids raise with the id named."""
    requested = [items] if isinstance(items, str | int) else list(items)
    index = {str(raw): i for i, raw in enumerate(item_ids)}
    missing = [str(x) for x in requested if str(x) not in index]
    if missing:
        example = ", ".join(str(x) for x in item_ids[:3])
        raise AudienceError(f"item id(s) {missing} not in the run's vocabulary (e.g. {example})")
    return [index[str(x)] for x in requested]


@torch.no_grad()
def user_probabilities(scorer: Scorer, items: Tensor, chunk_elements: int = 2**22) -> Tensor:
    """(K, U) calibrated probabilities of every user for each of the K items, on the scorer's device."""
    if not has_propensity_head(scorer):
        raise AudienceError(
            "this run's model has no propensity head (train with model=*_propensity)"
        )
    device = next(scorer.parameters()).device
    users = torch.arange(scorer.num_users, device=device)
    per_block = max(1, chunk_elements // max(1, scorer.num_users))
    out = []
    for block in items.to(device).split(per_block):
        grid_users = users.repeat(block.numel())  # (k * U,)
        grid_items = block.repeat_interleave(users.numel())  # (k * U,)
        out.append(scorer.propensity(grid_users, grid_items).float().view(block.numel(), -1))
    return torch.cat(out).cpu()


def user_deciles(probs: Tensor) -> tuple[Tensor, Tensor]:
    """Per row (item): each user's 0-based rank by probability (highest first) and decile (1 = top)."""
    order = torch.argsort(probs, dim=1, descending=True, stable=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(probs.shape[1]).expand_as(order).contiguous())
    deciles = ranks * NUM_DECILES // probs.shape[1] + 1
    return ranks, deciles


def seen_mask(run: RunDir, items: Tensor, num_users: int, num_items: int) -> Tensor:
    """(K, U) bool: the user already has a training or validation exposure of the item."""
    mask = torch.zeros(items.numel(), num_users, dtype=torch.bool)
    row_of = torch.full((num_items,), -1, dtype=torch.long)
    row_of[items] = torch.arange(items.numel())
    for split in ("train", "valid"):
        users, seen_items = run.seen_pairs(split)
        rows = row_of[seen_items]
        keep = rows >= 0
        mask[rows[keep], users[keep]] = True
    return mask


def build_audience(
    scorer: Scorer,
    run: RunDir,
    items: Sequence | str | int,
    size: int | None = 1000,
    exclude_seen: bool = False,
) -> pd.DataFrame:
    """One row per (item, audience user), best first: ids, probability, decile, expected conversions.

    Reads the run's vocabularies (and, with `exclude_seen`, its saved train/valid pairs), no data.
    """
    item_ids, user_ids = run.vocabulary("items"), np.asarray(run.vocabulary("users"), dtype=object)
    index = torch.tensor(item_indices(item_ids, items))
    probs = user_probabilities(scorer, index)  # (K, U)
    ranks, deciles = user_deciles(probs)
    if exclude_seen:
        mask = seen_mask(run, index, scorer.num_users, scorer.num_items)
        probs = probs.masked_fill(mask, float("nan"))
    frames = []
    for row, item in enumerate(index.tolist()):
        order = ranks[row].argsort()  # users by rank
        order = order[~torch.isnan(probs[row, order])]
        if size is not None:
            order = order[:size]
        p = probs[row, order].double().numpy()
        frames.append(
            pd.DataFrame(
                {
                    "item_id": item_ids[item],
                    "rank": ranks[row, order].numpy() + 1,
                    "user_id": user_ids[order.numpy()].astype(str),
                    "user_idx": order.numpy(),
                    "probability": p,
                    "decile": deciles[row, order].numpy(),
                    "expected_conversions": np.cumsum(p),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def decile_lift_on_test(
    scorer: Scorer, data: InteractionData, items: Sequence | str | int | None = None
) -> pd.DataFrame:
    """Lift table of the test exposures of `items` (None = all), ranked by the audience's score.

    `data` is the run's data with labels (`RunDir.load_data().data`): the run directory keeps the
    test pairs but not their conversion labels.

    Exposures are cut into deciles by the same calibrated probability that orders the audience
    (1 = highest); each decile's observed conversion rate over the overall rate is its lift.
    Deciles are over exposures, not over all users: exposed users crowd into an item's top user
    deciles (they chose it), so a table by user decile would compare the top with itself.
    """
    test = data.test
    if test.labels is None:
        raise AudienceError("the test split has no labels: no observed conversion rate to compare")
    keep = torch.ones(len(test), dtype=torch.bool)
    if items is not None:
        keep = torch.isin(test.items, torch.tensor(item_indices(data.item_ids, items)))
    if int(keep.sum()) < NUM_DECILES:
        raise AudienceError(f"only {int(keep.sum())} test exposures of the requested item(s)")
    device = next(scorer.parameters()).device
    with torch.no_grad():
        probs = torch.cat(
            [
                scorer.propensity(u.to(device), i.to(device)).float().cpu()
                for u, i in zip(
                    test.users[keep].split(2**16), test.items[keep].split(2**16), strict=True
                )
            ]
        )
    table = lift_table(probs, test.labels[keep], NUM_DECILES)
    return pd.DataFrame({k: v.numpy() for k, v in table.items()})


def make_audience(cfg) -> dict:
    """The `scripts/audience.py` job: load the run, write the Parquet, print what a marketer needs.

    The audience needs the scorer and vocabularies only; the lift table on test exposures needs
    their labels, so only it rebuilds the data (`RunDir.load_data`)."""
    run = RunDir(cfg.run_dir)
    scorer, _ = run.load_scorer(cfg.get("checkpoint", "best"))
    items = cfg.item if isinstance(cfg.item, str | int) else list(cfg.item)
    frame = build_audience(scorer, run, items, cfg.get("size"), cfg.get("exclude_seen"))
    names = [items] if isinstance(items, str | int) else items
    default = run.path("audiences") / f"audience_{'_'.join(map(str, names))[:80]}.parquet"
    path = Path(cfg.get("output") or default)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    for item, group in frame.groupby("item_id", sort=False):
        print(
            f"item {item}: audience of {len(group)} users, "
            f"expected conversions {group['probability'].sum():.1f} "
            f"(mean probability {group['probability'].mean():.3f})"
        )
    print(f"audience written to {path}")
    summary = {"path": str(path), "expected_conversions": float(frame["probability"].sum())}
    try:
        lift = decile_lift_on_test(
            scorer, run.load_data().data, None if cfg.get("lift_items") == "all" else items
        )
    except (RunError, DataError) as err:  # no test exposures of the item, no labels, the data
        # files gone or changed since training: the audience still stands, without its lift table
        print(f"no lift table: {err}")
        return summary
    lift.to_csv(path.with_suffix(".lift.csv"), index=False)
    print(
        "test exposures of the item(s) by decile of predicted probability (lift = rate / overall):"
    )
    print(lift.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    summary["top_decile_lift"] = float(lift["lift"].iloc[0])
    return summary
