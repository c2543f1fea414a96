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

from recsys.optim.row_update import lazy_adam_rows
from recsys.optim.rowwise_adagrad import RowWiseAdagrad
from recsys.optim.sparse_grads import coalesced_rows, loss_of
from recsys.perf.compiling import CompiledOrEager
from recsys.perf.scratch import ScratchBuffer


def split_sparse_parameters(module: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(sparse, dense): weights of `nn.Embedding(sparse=True)` tables, and every other parameter."""
    sparse = [m.weight for m in module.modules() if isinstance(m, nn.Embedding) and m.sparse]
    ids = {id(p) for p in sparse}
    dense = [p for p in module.parameters() if id(p) not in ids and p.requires_grad]
    return sparse, dense


def _unaliased(t: torch.Tensor) -> torch.Tensor:
    """The same memory as a tensor that is no view: torch.compile cannot trace a view whose base is
    a sparse tensor (the values of a sparse gradient), and a copy would cost a pass over them."""
    return torch.empty(0, dtype=t.dtype, device=t.device).set_(
        t.untyped_storage(), t.storage_offset(), t.shape, t.stride()
    )


class RowSparseAdam(torch.optim.Optimizer):
    """Lazy Adam on row-sparse gradients: `torch.optim.SparseAdam`'s update, done with dense row ops.

    SparseAdam builds and adds several sparse tensors per table per step; gathering the touched
    rows, updating them and scattering back does the same arithmetic in a handful of kernels
    (benchmarks/sparse_optim.py measures it against SparseAdam). Same state keys
    (`step`, `exp_avg`, `exp_avg_sq`), so checkpoints of either load into the other.

    weight_decay: decoupled (AdamW-style) and lazy like the rest of the update: a row decays by
    (1 - lr * weight_decay) when a batch touches it, so rare rows are not shrunk towards zero
    while they sit unused. 0 (the default) is SparseAdam exactly.
    compile: run the row update through `torch.compile` (recsys/optim/row_update.py): one fused
    loop instead of a kernel per operation; equal to the eager update up to float rounding.
    """

    chunk_bytes = 1536 * 1024  # the eager update's three temporaries per chunk of rows (CPU)

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas=(0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        compile: bool = False,
    ):
        super().__init__(
            params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)
        )
        self._buffers: dict[torch.Tensor, ScratchBuffer] = {}
        self._compiled = (
            CompiledOrEager(lazy_adam_rows, "the sparse row update", dynamic=True)
            if compile
            else None
        )

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None):
        loss = loss_of(closure)
        for group in self.param_groups:
            lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
            decay = group.get("weight_decay", 0.0)  # absent in SparseAdam checkpoints
            for p in group["params"]:
                if p.grad is None:
                    continue
                rows, values = coalesced_rows(p, "RowSparseAdam")
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                t = state["step"]
                step_size = lr * math.sqrt(1 - beta2**t) / (1 - beta1**t)
                if self._compiled is not None:
                    # A 0-d CPU tensor: no host-to-device copy per step, no recompile per value.
                    size = torch.tensor(step_size, dtype=p.dtype)
                    args = (beta1, beta2, eps, size, 1.0 - lr * decay)
                    self._compiled(
                        p, state["exp_avg"], state["exp_avg_sq"], rows, _unaliased(values), *args
                    )
                    continue
                chunk = self._chunk_rows(p)
                for start in range(0, rows.numel(), chunk):
                    self._update_rows(
                        p,
                        state,
                        rows[start : start + chunk],
                        values[start : start + chunk],
                        (beta1, beta2, eps, step_size, lr * decay),
                    )
        return loss

    def _chunk_rows(self, p: torch.Tensor) -> int:
        """Rows updated at a time: on CPU, few enough that the temporaries stay in a core's L2 cache
        (otherwise each elementwise pass over tens of thousands of touched rows streams from L3;
        the result is bit-identical either way); on GPUs, all of them in one go."""
        if p.device.type != "cpu":
            return 2**62
        row_bytes = p[0].numel() * p.element_size()
        return max(1, self.chunk_bytes // (3 * row_bytes))

    def _update_rows(
        self, p: torch.Tensor, state: dict, rows: torch.Tensor, values: torch.Tensor, hyper: tuple
    ) -> None:
        """Lazy Adam on `rows` (unique) of p and its moments, with their summed gradients `values`."""
        beta1, beta2, eps, step_size, decay = hyper
        m, v, change = self._workspace(p, rows.numel())
        # Rows are unique after coalesce, so adding each row's change writes its new value;
        # index_add_ measured faster than index_copy_ / index_put_ on CPU at 11k rows.
        torch.index_select(state["exp_avg"], 0, rows, out=m)
        torch.sub(values, m, out=change).mul_(1 - beta1)
        state["exp_avg"].index_add_(0, rows, change)
        m.add_(change)
        torch.index_select(state["exp_avg_sq"], 0, rows, out=v)
        torch.mul(values, values, out=change).sub_(v).mul_(1 - beta2)
        state["exp_avg_sq"].index_add_(0, rows, change)
        update = m.div_(v.add_(change).sqrt_().add_(eps)).mul_(-step_size)
        if decay:
            update.add_(torch.index_select(p, 0, rows, out=change), alpha=-decay)
        p.index_add_(0, rows, update)  # (index_add_'s alpha is a slower path on CPU)

    def _workspace(self, p: torch.Tensor, rows: int) -> tuple[torch.Tensor, ...]:
        """Three [rows, dim] scratch blocks, kept between steps (not in the state dict): reused,
        they about halved the update's time on Amazon-Beauty-sized tables (see ScratchBuffer)."""
        scratch = self._buffers.setdefault(p, ScratchBuffer())
        return tuple(scratch.take((3, rows, *p.shape[1:]), p.dtype, p.device).unbind(0))


def table_optimizer_for(
    tables: list[nn.Parameter],
    name: str,
    lr: float,
    betas,
    eps: float,
    weight_decay: float,
    compile: bool,
) -> torch.optim.Optimizer:
    """The sparse embedding tables' optimizer, by config name (SparseDenseAdam's table_optimizer)."""
    if name == "adam":
        return RowSparseAdam(
            tables, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, compile=compile
        )
    if name == "rowwise_adagrad":  # its tables are regularised by the module's embedding_l2
        return RowWiseAdagrad(tables, lr=lr, eps=eps)
    raise ValueError(f"table_optimizer must be 'adam' or 'rowwise_adagrad', got {name!r}")


class SparseDenseAdam(torch.optim.Optimizer):
    """Adam for dense parameters, lazy Adam (`RowSparseAdam`) for sparse embedding tables; one `step`.

    lr, betas, eps apply to both. weight_decay is decoupled (AdamW): every step on the dense
    parameters, on a table row when a batch touches it (so rows no batch uses keep their values).
    compile: the tables' row update through `torch.compile` (RowSparseAdam's `compile`).
    table_optimizer: "adam" (lazy Adam, above) or "rowwise_adagrad" (`RowWiseAdagrad`: one
    accumulator per row, for tables that outgrow the caches; its tables take no weight_decay,
    the dense parameters still do). table_lr: the tables' step size (default: lr).
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
        compile: bool = False,
        table_optimizer: str = "adam",
        table_lr: float | None = None,
    ):
        sparse_params, dense_params = list(sparse_params), list(dense_params)
        self.inner: list[torch.optim.Optimizer] = []
        if sparse_params:
            self.inner.append(
                table_optimizer_for(
                    sparse_params,
                    table_optimizer,
                    lr=lr if table_lr is None else table_lr,
                    betas=betas,
                    eps=eps,
                    weight_decay=weight_decay,
                    compile=compile,
                )
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
        loss = loss_of(closure)
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


def parameter_groups(module: nn.Module) -> list[dict]:
    """What every optimizer factory is called with: the dense parameters, and the sparse embedding
    tables in a group marked `row_sparse` (non-empty groups only). Optimizers that know nothing of
    the mark (torch.optim.*) treat both alike; `sparse_dense_adam` routes the tables to row updates.
    """
    sparse, dense = split_sparse_parameters(module)
    groups = [{"params": dense}] if dense else []
    if sparse:
        groups.append({"params": sparse, "row_sparse": True})
    return groups


def sparse_dense_adam(params: Iterable[dict], compile: bool = False, **kwargs) -> SparseDenseAdam:
    """Factory used from config (`_partial_: true`) on `parameter_groups(module)`."""
    sparse, dense = [], []
    for group in params:
        (sparse if group.get("row_sparse", False) else dense).extend(group["params"])
    return SparseDenseAdam(sparse, dense, compile=compile, **kwargs)
