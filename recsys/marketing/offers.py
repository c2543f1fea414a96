"""What to offer each contacted customer: a retrieval run's top items, items they already have
left out, optionally re-ranked by that run's propensity head (P(convert | customer, item))."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch

from recsys.marketing.audience import seen_mask
from recsys.models.contracts import has_propensity_head
from recsys.run_dir import RunDir

log = logging.getLogger(__name__)
SHORTLIST = 5  # retrieval candidates per offer slot that the propensity head re-ranks


def top_offers(run_dir: str, customers: pd.Series, k: int = 3, chunk: int = 4096) -> pd.DataFrame:
    """(customer, items) rows, `items` the k raw item ids each known customer is offered. Customers
    the retrieval run never saw get no offer; they are counted in the log, not dropped silently."""
    run = RunDir(run_dir)
    scorer, _ = run.load_scorer()
    users = pd.Index(run.vocabulary("users"))
    items = np.asarray(run.vocabulary("items"), dtype=object)
    index = users.get_indexer(customers.astype(str))
    known = index >= 0
    if (~known).any():
        log.info(
            "offers: %d of %d customers unknown to %s get none",
            int((~known).sum()),
            len(index),
            run.root,
        )
    user_idx = torch.as_tensor(index[known], dtype=torch.long)
    all_items = torch.arange(len(items))
    seen = seen_mask(run, all_items, len(users), len(items)).T  # (U, I)
    picks = []
    width = min(k, len(items))
    with torch.no_grad():
        for part in user_idx.split(chunk):
            scores = scorer.score_all_items(part).masked_fill(seen[part], float("-inf"))
            if not has_propensity_head(scorer):
                picks.append(torch.topk(scores, width, dim=1).indices)
                continue
            # Re-rank the retrieval shortlist by P(convert | customer, item): the offer most likely
            # to convert among the items the customer is likely to want.
            shortlist = torch.topk(scores, min(SHORTLIST * k, len(items)), dim=1).indices
            p = scorer.propensity(part.repeat_interleave(shortlist.shape[1]), shortlist.reshape(-1))
            p = p.view_as(shortlist).masked_fill(torch.gather(scores, 1, shortlist).isinf(), -1.0)
            picks.append(torch.gather(shortlist, 1, torch.topk(p, width, dim=1).indices))
    chosen = torch.cat(picks).numpy() if picks else np.zeros((0, k), dtype=np.int64)
    return pd.DataFrame(
        {
            "customer": customers.astype(str).to_numpy()[known],
            "items": [list(items[row]) for row in chosen],
        }
    )
