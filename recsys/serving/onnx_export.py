"""ONNX artifacts beside TorchScript: `<name>.onnx` for the retriever, the encoders and the
propensity module, each with a dynamic batch axis, so onnxruntime (or Triton's onnxruntime
backend) serves the model without torch.

Exporter: `torch.onnx.export(..., dynamo=True)`, the torch.export-based path that torch defaults to
and maintains (it needs `onnxscript`); the TorchScript-based exporter (`dynamo=False`) is
deprecated upstream. It traces the same graphs as the pt2 artifacts, so a model that exports as
pt2 almost always exports here too.

ONNX has no assert, and its Gather wraps a negative index around to the end of the table: an
out-of-range index would silently answer for another user. The modules here therefore clamp every
index and mark the rows whose index was out of range: their floats are NaN and the retriever's item
ids -1, never another user's answer. The onnx, onnxruntime and onnxscript packages are imported
here only, inside functions: core recsys exports TorchScript without them.
"""

from __future__ import annotations

import importlib
import logging
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from recsys.errors import ExportError
from recsys.serving.manifest import signature
from recsys.serving.modules import Retriever
from recsys.serving.topk import mask_seen_

log = logging.getLogger(__name__)
PACKAGES = ("onnx", "onnxruntime", "onnxscript")
INSTALL_HINT = 'pip install -e ".[serving]"'
OUTPUT_NAMES = {
    "retriever": ["scores", "item_idx"],
    "user_encoder": ["embedding"],
    "item_encoder": ["embedding"],
    "propensity": ["probability"],
}


def require_onnx() -> None:
    """ExportError naming the extra and the opt-out when a package the ONNX export needs is missing."""
    for name in PACKAGES:
        try:
            importlib.import_module(name)
        except ImportError:
            raise ExportError(
                f"onnx export needs the {name} package, which is not installed: "
                f"{INSTALL_HINT}, or export without ONNX: onnx=false"
            ) from None


def _guard(idx: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """(idx clamped into [0, size), (B,) bool: the index was in range)."""
    return idx.clamp(0, size - 1), (idx >= 0) & (idx < size)


def _nan_where_bad(values: Tensor, ok: Tensor) -> Tensor:
    """values (B,) or (B, D) with the rows where `ok` is False set to NaN."""
    mask = ok.view(-1, *([1] * (values.dim() - 1)))
    return torch.where(mask, values, torch.full_like(values, float("nan")))


class OnnxEncoder(nn.Module):
    """forward(idx int64[B]) -> float32[B, D]: the scorer's user (or item) embedding; the scorer
    is a submodule, so its weights and side-feature buffers become the graph's initializers."""

    def __init__(self, scorer: nn.Module, side: str):
        super().__init__()
        self.scorer, self.side = scorer, side
        self.size = int(scorer.num_users if side == "user" else scorer.num_items)

    def forward(self, idx: Tensor) -> Tensor:
        safe, ok = _guard(idx, self.size)
        embed = self.scorer.user_embedding if self.side == "user" else self.scorer.item_embedding
        return _nan_where_bad(embed(safe).float(), ok)


class OnnxPropensity(nn.Module):
    """forward(user_idx int64[B], item_idx int64[B]) -> P(convert) float32[B]."""

    def __init__(self, head: nn.Module, num_users: int, num_items: int):
        super().__init__()
        self.head, self.num_users, self.num_items = head, int(num_users), int(num_items)

    def forward(self, user_idx: Tensor, item_idx: Tensor) -> Tensor:
        users, ok_users = _guard(user_idx, self.num_users)
        items, ok_items = _guard(item_idx, self.num_items)
        return _nan_where_bad(self.head(users, items).float(), ok_users & ok_items)


class OnnxRetriever(nn.Module):
    """forward(user_idx int64[B], k int64 0-d) -> (scores float32[B, k], item_idx int64[B, k]).

    ONNX TopK breaks ties by the lower index (its specification), which is the evaluation
    convention, so a plain top-k is exact here; the sort-based repair of `topk.py` is not needed
    (and its stable sort has no ONNX form).
    """

    def __init__(self, retriever: Retriever):
        super().__init__()
        self.retriever = retriever

    def forward(self, user_idx: Tensor, k: Tensor) -> tuple[Tensor, Tensor]:
        r = self.retriever
        users, ok = _guard(user_idx, r.num_users)
        scores = r.user_vectors[users] @ r.item_vectors.T  # (B, I)
        scores = mask_seen_(scores, users, r.seen_indptr, r.seen_indices)
        top, ids = torch.topk(scores, k.item(), dim=1)  # (B, k) each
        return _nan_where_bad(top, ok), torch.where(ok.view(-1, 1), ids, torch.full_like(ids, -1))


def onnx_modules(scorer: nn.Module, retriever: Retriever, propensity) -> dict[str, nn.Module]:
    """The ONNX forms of the serving modules (`retriever` is the TorchScript build's)."""
    modules = {
        "retriever": OnnxRetriever(retriever),
        "user_encoder": OnnxEncoder(scorer, "user"),
        "item_encoder": OnnxEncoder(scorer, "item"),
    }
    if propensity is not None:
        modules["propensity"] = OnnxPropensity(propensity, scorer.num_users, scorer.num_items)
    return {name: m.eval() for name, m in modules.items()}


def _example(name: str, num_users: int, num_items: int) -> tuple[tuple, tuple, list[str]]:
    """(example inputs, dynamic shapes, input names): the batch axis stays free."""
    batch = torch.export.Dim("batch", min=1)
    users, items = torch.arange(2) % num_users, torch.arange(2) % num_items
    if name == "item_encoder":
        return (items,), ({0: batch},), ["item_idx"]
    if name == "user_encoder":
        return (users,), ({0: batch},), ["user_idx"]
    if name == "retriever":
        return (users, torch.tensor(min(10, num_items))), ({0: batch}, None), ["user_idx", "k"]
    return (users, items), ({0: batch}, {0: batch}), ["user_idx", "item_idx"]


def save_onnx(module: nn.Module, name: str, folder: Path, num_users: int, num_items: int) -> Path:
    """Write `<name>.onnx` (one self-contained file: weights inside, so at most 2 GiB)."""
    path = folder / f"{name}.onnx"
    args, shapes, inputs = _example(name, num_users, num_items)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's own deprecation and naming chatter
        program = torch.onnx.export(
            module,
            args,
            dynamo=True,
            dynamic_shapes=shapes,
            input_names=inputs,
            output_names=OUTPUT_NAMES[name],
            external_data=False,
            # onnxruntime (Triton's backend too) folds and fuses the graph when it loads it; the
            # exporter's own optimizer pass would cost seconds per module for the same result.
            optimize=False,
            verbose=False,
        )
        _unique_output_names(program.model.graph)
        program.save(str(path), external_data=False)
    return path


def _unique_output_names(graph) -> None:
    """Rename inner values that carry an output's name (the exporter names values after their op,
    so an `embedding` lookup inside the model collides with an `embedding` output)."""
    outputs = {id(v) for v in graph.outputs}
    wanted = {v.name for v in graph.outputs}
    for node in graph.all_nodes():
        for value in node.outputs:
            if value.name in wanted and id(value) not in outputs:
                value.name = f"{value.name}_inner"


def add_onnx(entries: dict, modules: dict, folder: Path, scorer: nn.Module, dim: int) -> None:
    """Export each of the serving `modules` (TorchScript build) to ONNX and record its file and
    signature in `entries` (the manifest's artifacts), or under `skipped` why it did not export."""
    require_onnx()
    onnx_forms = onnx_modules(scorer, modules["retriever"], _propensity_head(modules))
    for name, module in onnx_forms.items():
        entry = entries[name]
        try:
            path = save_onnx(module, name, folder, scorer.num_users, scorer.num_items)
        except Exception as err:  # noqa: BLE001  (the model decides which ops export)
            entry["skipped"]["onnx"] = f"{type(err).__name__}: {str(err)[:500]}"
            log.warning("%s: not exportable as ONNX (%s); skipped", name, str(err)[:200])
            continue
        entry["files"]["onnx"] = path.name
        entry["signature"]["onnx"] = signature(
            name, "onnx", scorer.num_users, scorer.num_items, dim
        )


def _propensity_head(modules: dict) -> nn.Module | None:
    wrapper = modules.get("propensity")
    return wrapper.head if wrapper is not None else None
