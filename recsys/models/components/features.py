"""Side-feature encoder of one tower: every row's features live in buffers, so `forward(idx)` takes
only row indices (evaluation and export stay generic, the module is `torch.jit.script`-able).

Each feature becomes a fixed-width vector, concatenated in a stable order:
- categorical codes (0 = unknown) -> an embedding;
- multi-hot sets (e.g. genres) -> the mean of the embeddings of the set's members (zeros if empty);
- numerics -> the standardised value, and/or a quantile bucket embedded like a categorical
  (`numeric_encoding`: normalize | bucketize | both). Buckets are computed once from the table,
  since a row's features never change.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

NUMERIC_ENCODINGS = ("normalize", "bucketize", "both")


def quantile_buckets(values: Tensor, num_buckets: int) -> Tensor:
    """(N,) int64 bucket codes in [0, num_buckets) at the quantiles of `values` (ties share a code)."""
    qs = torch.linspace(0, 1, num_buckets + 1, dtype=torch.float64)[1:-1]
    edges = torch.unique(torch.quantile(values.double(), qs))
    return torch.bucketize(values.double(), edges, right=True)


class FeatureEncoder(nn.Module):
    """Encodes the side features of rows 0..N-1 of one `FeatureTable` (users or items).

    feature_dim: width of each categorical / multi-hot / bucket embedding.
    The output width is `out_dim` (0 when the table is empty: the tower then uses ids only).
    """

    def __init__(
        self,
        table,  # recsys.data.interactions.FeatureTable (not imported: components never import data)
        num_rows: int,
        feature_dim: int = 16,
        numeric_encoding: str = "both",
        numeric_buckets: int = 8,
        init_std: float = 0.1,
    ):
        super().__init__()
        if numeric_encoding not in NUMERIC_ENCODINGS:
            raise ValueError(
                f"numeric_encoding must be one of {NUMERIC_ENCODINGS}, got {numeric_encoding!r}"
            )
        self.feature_dim = feature_dim
        self.names: list[str] = []  # the features encoded, for logs and reports

        # Categoricals and bucketized numerics share one table; codes are offset per feature.
        codes: list[Tensor] = []
        sizes: list[int] = []
        for name, values in table.categorical.items():
            card = int(table.cardinality.get(name, int(values.max()) + 1 if values.numel() else 1))
            values = self._check_rows(name, values, num_rows).long()
            if values.numel() and (int(values.min()) < 0 or int(values.max()) >= card):
                raise ValueError(
                    f"categorical feature {name!r}: codes must lie in [0, {card}), "
                    f"found [{int(values.min())}, {int(values.max())}]"
                )
            codes.append(values)
            sizes.append(card)
            self.names.append(name)
        numerics: list[Tensor] = []
        for name, values in table.numeric.items():
            values = self._check_rows(name, values, num_rows).float()
            finite = torch.isfinite(values)
            mean = values[finite].mean() if finite.any() else torch.tensor(0.0)
            std = values[finite].std() if int(finite.sum()) > 1 else torch.tensor(1.0)
            # Missing values sit at the mean (0 after standardising) and in a bucket of their own.
            z = torch.where(finite, (values - mean) / std.clamp(min=1e-6), torch.zeros_like(values))
            if numeric_encoding in ("normalize", "both"):
                numerics.append(z)
                self.names.append(name)
            if numeric_encoding in ("bucketize", "both"):
                buckets = torch.zeros(num_rows, dtype=torch.int64)
                if finite.any():
                    buckets[finite] = quantile_buckets(values[finite], numeric_buckets) + 1
                codes.append(buckets)
                sizes.append(numeric_buckets + 1)
                self.names.append(f"{name}_bucket")
        offsets = torch.tensor([0, *sizes[:-1]], dtype=torch.int64).cumsum(0)
        self.num_categorical = len(codes)
        self.register_buffer(
            "codes",
            torch.stack(codes, 1) + offsets
            if codes
            else torch.zeros(num_rows, 0, dtype=torch.int64),
        )  # (N, C) rows of the shared table
        self.categorical_table = nn.Embedding(max(1, sum(sizes)), feature_dim)
        self.register_buffer(
            "numeric",
            torch.stack(numerics, 1) if numerics else torch.zeros(num_rows, 0),
        )  # (N, K)
        self.num_numeric = len(numerics)

        # Multi-hot sets: rows are divided by their set size per feature, so a matmul gives the mean.
        blocks: list[Tensor] = []
        widths: list[int] = []
        for name, values in table.multi_hot.items():
            values = self._check_rows(name, values, num_rows).float()
            blocks.append(values / values.sum(1, keepdim=True).clamp(min=1.0))
            widths.append(values.shape[1])
            self.names.append(name)
        self.num_multi_hot = len(blocks)
        total = sum(widths)
        self.register_buffer(
            "multi_hot", torch.cat(blocks, 1) if blocks else torch.zeros(num_rows, 0)
        )  # (N, V)
        membership = torch.zeros(total, len(blocks))  # (V, M): which feature each column belongs to
        start = 0
        for m, w in enumerate(widths):
            membership[start : start + w, m] = 1.0
            start += w
        self.register_buffer("membership", membership)
        self.multi_hot_table = nn.Parameter(torch.randn(total, feature_dim) * init_std)  # (V, F)
        nn.init.normal_(self.categorical_table.weight, std=init_std)

        self.out_dim = (
            self.num_categorical * feature_dim + self.num_numeric + self.num_multi_hot * feature_dim
        )

    @staticmethod
    def _check_rows(name: str, values: Tensor, num_rows: int) -> Tensor:
        values = torch.as_tensor(values)
        if values.shape[0] != num_rows:
            raise ValueError(f"feature {name!r} has {values.shape[0]} rows, expected {num_rows}")
        return values

    def forward(self, idx: Tensor) -> Tensor:
        """(n, out_dim) encoded features of rows `idx` (n,)."""
        codes, numeric, multi_hot = self.rows(idx)
        return self.encode(codes, numeric, multi_hot)

    def rows(self, idx: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The raw feature rows of `idx`: category codes (n, C), numerics (n, K), multi-hot (n, V)."""
        return self.codes[idx], self.numeric[idx], self.multi_hot[idx]

    def encode(self, codes: Tensor, numeric: Tensor, multi_hot: Tensor) -> Tensor:
        """(n, out_dim) from raw feature rows, however they were fetched."""
        parts: list[Tensor] = []
        if self.num_categorical > 0:
            parts.append(self.categorical_table(codes).flatten(1))  # (n, C*F)
        if self.num_numeric > 0:
            parts.append(numeric)  # (n, K)
        if self.num_multi_hot > 0:
            pooled = torch.einsum(
                "nv,vm,vf->nmf", multi_hot, self.membership, self.multi_hot_table
            )  # (n, M, F)
            parts.append(pooled.flatten(1))
        if len(parts) == 0:
            return torch.zeros(codes.shape[0], 0, device=codes.device)
        return torch.cat(parts, 1)
