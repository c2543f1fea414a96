"""A memory estimate printed before training, so a run that cannot fit says so before it starts."""

from __future__ import annotations

from torch import nn

from recsys.data.datamodule import InteractionDataModule

GIB = 1024**3


def estimate_training_memory(
    module: nn.Module, datamodule: InteractionDataModule
) -> dict[str, float]:
    """Bytes (in GiB) of parameters, Adam-style optimizer state (two moments per parameter), data
    resident on the device (training rows, evaluation sets) and one evaluation chunk of scores.
    """
    data = datamodule.load()
    params = sum(p.numel() * p.element_size() for p in module.parameters())
    buffers = sum(b.numel() * b.element_size() for b in module.buffers())
    train = data.train
    per_row = 2 * 8 + (4 if train.labels is not None else 0)  # user + item int64 (+ label float32)
    rows = len(train) * per_row
    eval_sets = (
        len(data.valid) + len(data.test) + 2 * len(train)
    ) * 8  # CSR indices of seen and target sets
    chunk = datamodule.eval_chunk_elements * (4 + 4 + 1)  # scores, masked copy, relevance flags
    parts = {
        "parameters_gib": (params + buffers) / GIB,
        "optimizer_state_gib": 2 * params / GIB,
        "data_on_device_gib": (rows + eval_sets) / GIB,
        "eval_chunk_gib": chunk / GIB,
    }
    parts["total_gib"] = sum(parts.values())
    return parts
