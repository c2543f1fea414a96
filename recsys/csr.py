"""Per-user item sets as CSR tensors: what evaluation masks (seen items) and what it looks for
(targets), and what an export excludes. Shared by data, metrics and serving, so it depends on none."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class UserItemCSR:
    indptr: Tensor  # (U + 1,) int64
    indices: Tensor  # (nnz,) int64 item indices, sorted and unique within each row

    @classmethod
    def from_pairs(cls, users: Tensor, items: Tensor, num_users: int) -> UserItemCSR:
        """Build from (user, item) pairs; duplicate pairs collapse to one entry."""
        num_items = int(items.max()) + 1 if items.numel() else 1
        key = torch.unique(users.to(torch.int64) * num_items + items.to(torch.int64))  # sorted
        rows, cols = key // num_items, key % num_items
        counts = torch.bincount(rows, minlength=num_users)
        indptr = torch.zeros(num_users + 1, dtype=torch.int64)
        indptr[1:] = torch.cumsum(counts, 0)
        return cls(indptr, cols)

    @property
    def num_rows(self) -> int:
        return self.indptr.numel() - 1

    def row_lengths(self, rows: Tensor | None = None) -> Tensor:
        lengths = self.indptr[1:] - self.indptr[:-1]
        return lengths if rows is None else lengths[rows]

    def coords(self, rows: Tensor) -> tuple[Tensor, Tensor]:
        """(position in `rows`, item) for every entry of the given rows, with no Python loop."""
        starts, lengths = self.indptr[rows], self.row_lengths(rows)
        pos = torch.repeat_interleave(torch.arange(rows.numel(), device=rows.device), lengths)
        offsets = torch.arange(int(lengths.sum()), device=rows.device) - torch.repeat_interleave(
            torch.cumsum(lengths, 0) - lengths, lengths
        )
        return pos, self.indices[torch.repeat_interleave(starts, lengths) + offsets]

    def union(self, other: UserItemCSR) -> UserItemCSR:
        pos_a, items_a = self.coords(torch.arange(self.num_rows))
        pos_b, items_b = other.coords(torch.arange(other.num_rows))
        return UserItemCSR.from_pairs(
            torch.cat([pos_a, pos_b]),
            torch.cat([items_a, items_b]),
            max(self.num_rows, other.num_rows),
        )

    def to(self, device: torch.device | str) -> UserItemCSR:
        return UserItemCSR(self.indptr.to(device), self.indices.to(device))
