"""Adam and AdamW on every parameter, with the fused single-kernel update where all of them live on
CUDA (one launch for the whole update instead of one per tensor) and torch's default elsewhere."""

from __future__ import annotations

from collections.abc import Iterable

import torch


def _on_cuda(groups: list) -> bool:
    tensors = [p for g in groups for p in (g["params"] if isinstance(g, dict) else [g])]
    return bool(tensors) and all(p.is_cuda for p in tensors)


def adam(params: Iterable, fused: bool | None = None, **kwargs) -> torch.optim.Adam:
    """`torch.optim.Adam`; `fused=None` picks the fused kernel where every parameter is on CUDA."""
    groups = list(params)
    use_fused = _on_cuda(groups) if fused is None else fused
    return torch.optim.Adam(groups, fused=use_fused or None, **kwargs)


def adamw(params: Iterable, fused: bool | None = None, **kwargs) -> torch.optim.AdamW:
    """`torch.optim.AdamW` (decoupled weight decay), fused on CUDA as `adam`."""
    groups = list(params)
    use_fused = _on_cuda(groups) if fused is None else fused
    return torch.optim.AdamW(groups, fused=use_fused or None, **kwargs)
