"""Cold-start items: wrap any source, remove a random share of items entirely from training and
validation, and keep all their interactions as a separate cold test set.

The wrapped source keeps its own user-facing keys at the top of the `data` config, so
`experiment=ml100k_two_tower_cold data.root=...` reads like the warm experiment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import hydra
import torch
from torch import Tensor

from recsys.data.interactions import InteractionData, Interactions


@dataclass
class ColdStartData(InteractionData):
    """InteractionData whose train / valid / test hold warm items only, plus the held-out cold part."""

    cold_test: Interactions | None = None  # every interaction with a cold item, from all splits
    cold_items: Tensor | None = None  # (C,) sorted item indices never seen in training


def concat(parts: list[Interactions]) -> Interactions:
    """Rows of several splits in one; an optional field survives only where every part has it."""
    columns = [
        {
            "timestamps": p.timestamps,
            "ratings": p.ratings,
            "labels": p.labels,
            "label_probs": p.label_probs,
        }
        for p in parts
    ]
    kept = {
        name: torch.cat([c[name] for c in columns])
        for name in columns[0]
        if all(c[name] is not None for c in columns)
    }
    return Interactions(
        torch.cat([p.users for p in parts]), torch.cat([p.items for p in parts]), **kept
    )


class ColdStartSource:
    """Holds out `cold_fraction` of the items that occur in the data (drawn with `cold_seed`).

    wrapped: the source to wrap, as a dotted class path (built with the remaining keyword
        arguments) or a ready callable returning InteractionData.
    """

    def __init__(
        self,
        wrapped: str | Callable[[], InteractionData],
        cold_fraction: float = 0.1,
        cold_seed: int = 0,
        **source_kwargs,
    ):
        if not 0 < cold_fraction < 1:
            raise ValueError(f"cold_fraction must be in (0, 1), got {cold_fraction}")
        if isinstance(wrapped, str):
            wrapped = hydra.utils.get_class(wrapped)(**source_kwargs)
        elif source_kwargs:
            raise TypeError(f"unexpected arguments for a ready source: {sorted(source_kwargs)}")
        self.source, self.cold_fraction, self.cold_seed = wrapped, cold_fraction, cold_seed

    def __call__(self) -> ColdStartData:
        data = self.source()
        splits = {"train": data.train, "valid": data.valid, "test": data.test}
        present = torch.unique(torch.cat([s.items for s in splits.values()]))
        n_cold = max(1, round(self.cold_fraction * present.numel()))
        gen = torch.Generator().manual_seed(self.cold_seed)
        cold_items = present[torch.randperm(present.numel(), generator=gen)[:n_cold]].sort().values
        is_cold = torch.zeros(data.num_items, dtype=torch.bool)
        is_cold[cold_items] = True

        warm, cold = {}, []
        for name, split in splits.items():
            mask = is_cold[split.items]
            warm[name] = split.subset(~mask)
            cold.append(split.subset(mask))
        cold_test = concat(cold)
        report = dict(data.report)
        report["steps"] = [
            *report.get("steps", []),
            {
                "step": "cold_start",
                "cold_fraction": self.cold_fraction,
                "cold_seed": self.cold_seed,
                "cold_items": n_cold,
                "items_present": int(present.numel()),
                "rows_moved_to_cold_test": {
                    name: len(part) for name, part in zip(splits, cold, strict=True)
                },
                "cold_test_rows": len(cold_test),
                "cold_test_users": int(torch.unique(cold_test.users).numel()),
            },
        ]
        # Every field of the wrapped data (vocabularies, features, ...), with the warm splits.
        base = {f.name: vars(data)[f.name] for f in fields(data)}
        base.update(warm, report=report, name=f"{data.name}-cold")
        return ColdStartData(**base, cold_test=cold_test, cold_items=cold_items)
