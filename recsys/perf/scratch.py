"""Memory for per-step temporaries, kept between steps."""

from __future__ import annotations

import math

import torch
from torch import Tensor


class ScratchBuffer:
    """A block reused for a temporary of the same or a slightly varying size at every step.

    glibc's allocator hands freed multi-MB blocks back to the OS and page-faults them in again on
    the next allocation, about 1,000 faults per 4 MiB on CPU; at a training step's pace that cost
    is a sizeable share of the step (benchmarks/loss_speed.py). A block kept here stays mapped. It
    grows with 25% headroom, so the smaller last batch of an epoch does not reallocate.
    """

    def __init__(self) -> None:
        self._flat: Tensor | None = None

    def take(self, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> Tensor:
        """A tensor of `shape` on this block; its contents are undefined."""
        numel = math.prod(shape)
        flat = self._flat
        if flat is None or flat.numel() < numel or flat.dtype != dtype or flat.device != device:
            flat = self._flat = torch.empty(max(numel + numel // 4, 1), dtype=dtype, device=device)
        return flat[:numel].view(shape)
