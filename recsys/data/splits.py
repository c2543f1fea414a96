"""Seeded splits of one interaction log into train / valid / test."""

from __future__ import annotations

import torch

from recsys.data.interactions import Interactions


def random_split(
    log: Interactions, valid_fraction: float, test_fraction: float, seed: int
) -> tuple[Interactions, Interactions, Interactions]:
    """Each interaction goes to test / valid / train with the given probabilities (exact counts)."""
    if not 0 <= valid_fraction + test_fraction < 1:
        raise ValueError(
            f"valid_fraction + test_fraction must be in [0, 1), got {valid_fraction + test_fraction}"
        )
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(log), generator=gen)
    n_test, n_valid = round(len(log) * test_fraction), round(len(log) * valid_fraction)
    test_idx, valid_idx, train_idx = (
        order[:n_test],
        order[n_test : n_test + n_valid],
        order[n_test + n_valid :],
    )
    return (
        log.subset(train_idx.sort().values),
        log.subset(valid_idx.sort().values),
        log.subset(test_idx.sort().values),
    )


def carve_validation(
    train: Interactions, valid_fraction: float, seed: int
) -> tuple[Interactions, Interactions]:
    """Hold out a random fraction of a training split as validation (for pre-split data)."""
    new_train, valid, _ = random_split(train, valid_fraction, 0.0, seed)
    return new_train, valid
