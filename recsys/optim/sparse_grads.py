"""What the sparse-table optimizers share: the closure convention and the coalesced row gradient."""

from __future__ import annotations

from collections.abc import Callable

import torch


def loss_of(closure: Callable[[], torch.Tensor] | None) -> torch.Tensor | None:
    """The optimizer-closure convention: re-evaluate the loss with gradients, when given one."""
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()


def coalesced_rows(p: torch.Tensor, optimizer: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, values) of p's row-sparse gradient: duplicate rows summed, rows sorted and unique."""
    if not p.grad.is_sparse:
        raise RuntimeError(f"{optimizer} needs sparse gradients (nn.Embedding(sparse=True))")
    grad = p.grad.coalesce()
    return grad.indices()[0], grad.values()
