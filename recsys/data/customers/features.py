"""Customer table -> model tensors: counts, days and money log-scaled then standardised with the
training rows' statistics, other numbers (`raw`, e.g. a user vector) standardised only, categorical
side features as codes (0 = unseen). The encoder's state is saved with the run, so scoring customers
later encodes them exactly as training did.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import Tensor


@dataclass
class FeatureEncoder:
    numeric: list[str]  # non-negative, heavy-tailed: log1p first
    categorical: list[str]
    mean: list[float]  # over numeric + raw, in that order
    std: list[float]
    vocab: dict[str, list[str]]  # column -> values; code = position + 1
    raw: list[str] = field(default_factory=list)  # numbers of any sign: standardised as they are

    @classmethod
    def fit(
        cls, table: pd.DataFrame, numeric: list[str], categorical: list[str], raw: list[str] = ()
    ) -> FeatureEncoder:
        x = _scaled(table, numeric, list(raw))
        std = x.std(axis=0)
        vocab = {c: sorted(table[c].astype(str).unique()) for c in categorical}
        mean, std = x.mean(axis=0).tolist(), np.where(std > 0, std, 1.0).tolist()
        return cls(numeric, categorical, mean, std, vocab, list(raw))

    @property
    def columns(self) -> list[str]:
        """The numeric inputs in model order."""
        return self.numeric + self.raw

    @property
    def cardinalities(self) -> dict[str, int]:
        return {c: len(self.vocab[c]) + 1 for c in self.categorical}  # in column order

    def encode(self, table: pd.DataFrame) -> tuple[Tensor, Tensor]:
        """(numeric float32 (N, F), categorical int64 (N, C)) for any table with the same columns."""
        x = (_scaled(table, self.numeric, self.raw) - self.mean) / self.std
        codes = [
            pd.Index(self.vocab[c]).get_indexer(table[c].astype(str)) + 1 for c in self.categorical
        ]
        cat = np.stack(codes, axis=1) if codes else np.zeros((len(table), 0), dtype=np.int64)
        return torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(cat, dtype=torch.int64)

    def state(self) -> dict:
        return asdict(self)


def _scaled(table: pd.DataFrame, numeric: list[str], raw: list[str]) -> np.ndarray:
    """Counts, days and money are heavy-tailed and non-negative: log1p makes them comparable."""
    logged = np.log1p(np.clip(table[numeric].to_numpy(np.float64), 0.0, None))
    return np.concatenate([logged, table[raw].to_numpy(np.float64)], axis=1)
