"""The lazy-Adam update of a table's touched rows, as one function `torch.compile` can fuse.

Eager, the update is about sixteen passes over the touched rows (gather, moments, scatter, step),
each a separate kernel reading and writing memory; compiled, inductor turns it into a loop or two
that gather, update and scatter each row once (benchmarks/compile_ab.py; docs/benchmarks.md).
Compiling needs a C++ compiler
on CPU (Triton on CUDA) and takes seconds on the first step (recsys/perf/compiling.py).
"""

from __future__ import annotations

from torch import Tensor


def lazy_adam_rows(
    param: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    rows: Tensor,
    grad: Tensor,
    beta1: float,
    beta2: float,
    eps: float,
    step_size: Tensor,
    keep: float,
) -> None:
    """Adam on `rows` (unique) of `param` and its moments, in place; `keep` = 1 - lr * weight_decay.

    step_size is a 0-d tensor, so a compiled graph is not re-specialised on every step's value.
    """
    m = exp_avg[rows].lerp(grad, 1 - beta1)
    v = exp_avg_sq[rows].lerp(grad * grad, 1 - beta2)
    exp_avg.index_put_((rows,), m)
    exp_avg_sq.index_put_((rows,), v)
    update = m / (v.sqrt() + eps) * step_size
    param.index_put_((rows,), param[rows] * keep - update)
