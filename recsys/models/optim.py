"""Optimizers for embedding tables: only the rows a batch touched are updated.

Dense Adam steps every row of every table at every batch; with 80k+ rows that step, not the model,
is the cost of training (benchmarks/train_throughput.py). `SparseDenseAdam` sends row-sparse
gradients (from `nn.Embedding(sparse=True)`) to `RowSparseAdam` (SparseAdam's lazy Adam update in
dense row operations) and everything else to Adam (fused on CUDA), behind one Optimizer, so
Lightning, checkpoints and LR schedulers see a single optimizer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import nn


def split_sparse_parameters(module: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(sparse, dense): weights of `nn.Embedding(sparse=True)` tables, and every other parameter."""
    sparse = [m.weight for m in module.modules() if isinstance(m, nn.Embedding) and m.sparse]
    ids = {id(p) for p in sparse}
    dense = [p for p in module.parameters() if id(p) not in ids and p.requires_grad]
    return sparse, dense


def _loss_of(closure: Callable[[], torch.Tensor] | None) -> torch.Tensor | None:
    """The optimizer-closure convention: re-evaluate the loss with gradients, when given one."""
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()


class RowSparseAdam(torch.optim.Optimizer):
    """Lazy Adam on row-sparse gradients: `torch.optim.SparseAdam`'s update, done with dense row ops.

    SparseAdam builds and adds several sparse tensors per table per step; gathering the touched
    rows, updating them and scattering back does the same arithmetic in a handful of kernels
    (1.6x faster per step on Amazon-Beauty-sized tables, benchmarks/sparse_optim.py). Same state keys
    (`step`, `exp_avg`, `exp_avg_sq`), so checkpoints of either load into the other.

    weight_decay: decoupled (AdamW-style) and lazy like the rest of the update: a row decays by
    (1 - lr * weight_decay) when a batch touches it, so rare rows are not shrunk towards zero
    while they sit unused. 0 (the default) is SparseAdam exactly.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas=(0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        super().__init__(
            params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)
        )

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None):
        loss = _loss_of(closure)
        for group in self.param_groups:
            lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
            decay = group.get("weight_decay", 0.0)  # absent in SparseAdam checkpoints
            for p in group["params"]:
                if p.grad is None:
                    continue
                if not p.grad.is_sparse:
                    raise RuntimeError(
                        "RowSparseAdam needs sparse gradients (nn.Embedding(sparse=True))"
                    )
                grad = p.grad.coalesce()  # duplicate rows summed, rows sorted
                rows, values = grad.indices()[0], grad.values()
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                # Rows are unique after coalesce, so adding each row's change is writing its new
                # value; index_add_ is no slower than index_copy_ on CPU (faster at a few 1k rows).
                m = state["exp_avg"].index_select(0, rows)
                v = state["exp_avg_sq"].index_select(0, rows)
                m_change = (values - m).mul_(1 - beta1)
                v_change = values.square().sub_(v).mul_(1 - beta2)
                state["exp_avg"].index_add_(0, rows, m_change)
                state["exp_avg_sq"].index_add_(0, rows, v_change)
                t = state["step"]
                step_size = lr * math.sqrt(1 - beta2**t) / (1 - beta1**t)
                m.add_(m_change)
                v.add_(v_change)
                update = m.div_(v.sqrt_().add_(eps)).mul_(-step_size)
                if decay:
                    update.add_(p.index_select(0, rows), alpha=-lr * decay)
                p.index_add_(0, rows, update)
        return loss


class SparseDenseAdam(torch.optim.Optimizer):
    """Adam for dense parameters, lazy Adam (`RowSparseAdam`) for sparse embedding tables; one `step`.

    lr, betas, eps apply to both. weight_decay is decoupled (AdamW): every step on the dense
    parameters, on a table row when a batch touches it (so rows no batch uses keep their values).
    """

    def __init__(
        self,
        sparse_params: Iterable[nn.Parameter],
        dense_params: Iterable[nn.Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        fused: bool | None = None,
    ):
        sparse_params, dense_params = list(sparse_params), list(dense_params)
        self.inner: list[torch.optim.Optimizer] = []
        if sparse_params:
            self.inner.append(
                RowSparseAdam(sparse_params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
            )
        if dense_params:
            on_cuda = all(p.is_cuda for p in dense_params)
            use_fused = on_cuda if fused is None else fused
            self.inner.append(
                torch.optim.Adam(
                    dense_params,
                    lr=lr,
                    betas=betas,
                    eps=eps,
                    weight_decay=weight_decay,
                    decoupled_weight_decay=True,
                    fused=use_fused or None,
                    foreach=None if use_fused else True,
                )
            )
        if not self.inner:
            raise ValueError("SparseDenseAdam got no parameters")
        # Share the inner optimizers' groups and state so schedulers and checkpoints see everything.
        self.defaults = dict(lr=lr, betas=betas, eps=eps)
        self.param_groups = [g for opt in self.inner for g in opt.param_groups]
        self.state = {}
        self._optimizer_step_pre_hooks = {}
        self._optimizer_step_post_hooks = {}
        self._optimizer_state_dict_pre_hooks = {}
        self._optimizer_state_dict_post_hooks = {}
        self._optimizer_load_state_dict_pre_hooks = {}
        self._optimizer_load_state_dict_post_hooks = {}

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None):
        loss = _loss_of(closure)
        for opt in self.inner:
            opt.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.inner:
            opt.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        return {"inner": [opt.state_dict() for opt in self.inner]}

    def load_state_dict(self, state_dict: dict) -> None:
        for opt, sd in zip(self.inner, state_dict["inner"], strict=True):
            opt.load_state_dict(sd)


def sparse_dense_adam(params: Iterable, module: nn.Module, **kwargs) -> SparseDenseAdam:
    """Factory used from config (`_partial_: true`): splits `module`'s parameters itself."""
    sparse, dense = split_sparse_parameters(module)
    return SparseDenseAdam(sparse, dense, **kwargs)
