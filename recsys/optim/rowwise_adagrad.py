"""Row-wise Adagrad for embedding tables: one accumulator per row instead of two moments per weight.

The optimizer of large-table recommenders (FBGEMM's `EXACT_ROWWISE_ADAGRAD`, TorchRec's default for
sharded tables): a row's accumulator adds the mean of its squared gradient, and the whole row steps
by lr / (sqrt(accumulator) + eps). Lazy Adam reads and writes three [rows, dim] tables per touched
row (weights and two moments); this touches the weights and a [rows] vector that stays in cache.
Once the tables outgrow the CPU's caches that is the difference that counts: from 1M to 50M
interactions MF's epoch time grows with log-log slope 1.18 under lazy Adam and 1.02 under this
(benchmarks/scaling.py, docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from recsys.optim.sparse_grads import coalesced_rows, loss_of
from recsys.perf.scratch import ScratchBuffer


class RowWiseAdagrad(torch.optim.Optimizer):
    """Row-wise Adagrad on row-sparse gradients (`nn.Embedding(sparse=True)`); untouched rows keep
    their weights and accumulators.

    For the touched rows r with summed gradient g (after coalescing duplicates):
        sum[r] += mean(g[r] ** 2)
        w[r]   -= lr * g[r] / (sqrt(sum[r]) + eps)
    initial_accumulator_value: the accumulators' start (Adagrad's; 0 = the first step is sign-like).
    """

    def __init__(
        self, params, lr: float = 0.05, eps: float = 1e-8, initial_accumulator_value: float = 0.0
    ):
        if lr <= 0 or eps < 0 or initial_accumulator_value < 0:
            raise ValueError(
                f"RowWiseAdagrad needs lr > 0, eps >= 0, initial_accumulator_value >= 0; got "
                f"lr={lr}, eps={eps}, initial_accumulator_value={initial_accumulator_value}"
            )
        defaults = dict(lr=lr, eps=eps, initial_accumulator_value=initial_accumulator_value)
        super().__init__(params, defaults)
        self._buffers: dict[torch.Tensor, ScratchBuffer] = {}

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None):
        loss = loss_of(closure)
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                rows, values = coalesced_rows(p, "RowWiseAdagrad")
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["sum"] = torch.full(
                        p.shape[:1],
                        group["initial_accumulator_value"],
                        dtype=p.dtype,
                        device=p.device,
                    )
                state["step"] += 1
                self._update_rows(p, state["sum"], rows, values, group["lr"], group["eps"])
        return loss

    def _update_rows(self, p, accumulator, rows, values, lr: float, eps: float) -> None:
        n, width = rows.numel(), p[0].numel()
        if n == 0:
            return
        flat = self._buffers.setdefault(p, ScratchBuffer()).take(
            (n * (width + 1),), p.dtype, p.device
        )
        update, row_scale = flat[: n * width].view_as(values), flat[n * width :]
        torch.mean(torch.mul(values, values, out=update), dim=1, out=row_scale)
        accumulator.index_add_(0, rows, row_scale)  # rows are unique: this writes sum + mean g^2
        torch.index_select(accumulator, 0, rows, out=row_scale)
        row_scale.sqrt_().add_(eps).reciprocal_().mul_(-lr)
        p.index_add_(0, rows, torch.mul(values, row_scale.unsqueeze(1), out=update))
