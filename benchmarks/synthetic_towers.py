"""Synthetic item and user tower outputs shaped like trained embeddings, for `serving_scale.py`.

Why not isotropic Gaussian noise: ANN indexes are fast and accurate exactly because real
embeddings are not. Trained towers (MF, two-tower with sampled softmax) put items on a
low-dimensional, clustered manifold (genres, brands, price bands), and popular items get larger
norms, which under an inner product makes them everyone's neighbours. Isotropic noise in 64-128
dimensions has none of that: every point is nearly equidistant from every other, IVF clusters cut
through nothing and HNSW's graph has no shortcuts, so recall at a given latency would be far worse
than any trained model gives, and the chosen parameters would be wrong in the other direction.

The model here:
- `clusters` centres in a rank-`dim // 4` subspace, cluster sizes Zipf-like (a few big genres);
- an item = its centre + a within-cluster offset in the same subspace + small full-rank noise,
  scaled by a log-normal "popularity" factor (norm spread, sigma 0.35);
- a user = a mixture of 1 to 3 cluster centres (tastes) + offset + noise, in the same subspace.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def _subspace(dim: int, g: torch.Generator) -> Tensor:
    rank = max(2, dim // 4)
    basis, _ = torch.linalg.qr(torch.randn(dim, rank, generator=g))  # (D, r) orthonormal columns
    return basis.T.contiguous()  # (r, D)


def towers(num_items: int, num_users: int, dim: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """(items (I, D), users (U, D)) float32, deterministic for a seed."""
    g = torch.Generator().manual_seed(seed)
    basis = _subspace(dim, g)
    rank = basis.shape[0]
    clusters = max(8, int(math.sqrt(num_items) / 2))
    centres = torch.randn(clusters, rank, generator=g) * 1.0  # (C, r)
    sizes = 1.0 / torch.arange(1, clusters + 1).float() ** 0.8  # Zipf-like cluster weights
    cluster = torch.multinomial(sizes, num_items, replacement=True, generator=g)  # (I,)
    items = torch.empty(num_items, dim)
    for start in range(0, num_items, 262144):  # bounded temporaries at 1M x 128
        c = cluster[start : start + 262144]
        n = c.numel()
        latent = centres[c] + 0.45 * torch.randn(n, rank, generator=g)  # (n, r)
        x = latent @ basis + 0.05 * torch.randn(n, dim, generator=g)  # (n, D)
        popularity = torch.exp(0.35 * torch.randn(n, 1, generator=g))
        items[start : start + n] = torch.nn.functional.normalize(x, dim=1) * popularity
    tastes = torch.multinomial(sizes, num_users * 3, replacement=True, generator=g).view(-1, 3)
    weights = torch.rand(num_users, 3, generator=g) * (torch.rand(num_users, 3, generator=g) < 0.6)
    weights[:, 0] = 1.0  # at least one taste
    latent = (weights.unsqueeze(2) * centres[tastes]).sum(1) / weights.sum(1, keepdim=True)
    latent = latent + 0.3 * torch.randn(num_users, rank, generator=g)
    users = latent @ basis + 0.05 * torch.randn(num_users, dim, generator=g)
    return items.contiguous(), torch.nn.functional.normalize(users, dim=1).contiguous()
