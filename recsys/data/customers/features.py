"""Customer table -> model tensors: numeric features log-scaled and standardised with the training
rows' statistics, categorical side features as codes (0 = unseen). The encoder's state is saved
with the run, so scoring customers later encodes them exactly as training did.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor

UNSEEN = "<unseen>"


@dataclass
class FeatureEncoder:
    numeric: list[str]
    categorical: list[str]
    mean: list[float]
    std: list[float]
    vocab: dict[str, list[str]]  # column -> values; code = position + 1

    @classmethod
    def fit(cls, table: pd.DataFrame, numeric: list[str], categorical: list[str]) -> FeatureEncoder:
        x = _log_scale(table[numeric].to_numpy(np.float64))
        std = x.std(axis=0)
        vocab = {c: sorted(table[c].astype(str).unique()) for c in categorical}
        return cls(
            numeric,
            categorical,
            x.mean(axis=0).tolist(),
            np.where(std > 0, std, 1.0).tolist(),
            vocab,
        )

    @property
    def cardinalities(self) -> dict[str, int]:
        return {c: len(self.vocab[c]) + 1 for c in self.categorical}  # in column order

    def encode(self, table: pd.DataFrame) -> tuple[Tensor, Tensor]:
        """(numeric float32 (N, F), categorical int64 (N, C)) for any table with the same columns."""
        x = (_log_scale(table[self.numeric].to_numpy(np.float64)) - self.mean) / self.std
        codes = [
            pd.Index(self.vocab[c]).get_indexer(table[c].astype(str)) + 1 for c in self.categorical
        ]
        cat = np.stack(codes, axis=1) if codes else np.zeros((len(table), 0), dtype=np.int64)
        return torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(cat, dtype=torch.int64)

    def state(self) -> dict:
        return asdict(self)


def _log_scale(x: np.ndarray) -> np.ndarray:
    """Counts, days and money are heavy-tailed and non-negative: log1p makes them comparable."""
    return np.log1p(np.clip(x, 0.0, None))
