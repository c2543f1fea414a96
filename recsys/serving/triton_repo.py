"""A Triton Inference Server model repository inside the export (`triton=true`):
`triton/<artifact>_<torchscript|onnx>/config.pbtxt` and `.../1/model.pt|model.onnx`.

The model files are the export's verified artifacts, copied byte for byte, except one: Triton's
libtorch backend passes tensors only, so the TorchScript retriever (whose `k` is a Python int) is
wrapped in `KTensorRetriever` and verified like every artifact, as `retriever_k_tensor`.

Batching: the encoders and the propensity module take one index per request row, so Triton may
merge requests (`max_batch_size`, `dynamic_batching`); each index is declared `dims: [ 1 ]` and
reshaped to the model's 1-D input. The retriever answers a batch of users for one `k`: requests
with different `k` cannot be merged into one top-k, so it has `max_batch_size: 0` (the request
carries its own batch axis, -1) and no dynamic batching. Libtorch names tensors `<name>__<index>`
(the backend's convention, which also fixes their order); ONNX models keep their graph's names.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Tuple  # noqa: UP035  (TorchScript needs typing.Tuple on Python 3.10)

import torch
from torch import Tensor, nn

from recsys.errors import ConfigError
from recsys.serving.manifest import signature
from recsys.serving.modules import Retriever
from recsys.serving.verify import Case

FOLDER = "triton"
WRAPPED = "retriever_k_tensor"  # the manifest artifact of the libtorch retriever
MODEL_FILE = {"torchscript": "model.pt", "onnx": "model.onnx"}
PLATFORM = {"torchscript": "pytorch_libtorch", "onnx": "onnxruntime_onnx"}
DTYPE = {"int64": "TYPE_INT64", "int": "TYPE_INT64", "float32": "TYPE_FP32"}
DOCKER = (
    "docker run --rm -p 8000:8000 -p 8001:8001 -p 8002:8002 -v <export>/triton:/models "
    "nvcr.io/nvidia/tritonserver:<yy.mm>-py3 tritonserver --model-repository=/models"
)


class KTensorRetriever(nn.Module):
    """The retriever with `k` as an int64 tensor of one element, as Triton's libtorch backend
    passes every input."""

    def __init__(self, retriever: Retriever):
        super().__init__()
        self.retriever = retriever

    def forward(self, user_idx: Tensor, k: Tensor) -> Tuple[Tensor, Tensor]:  # noqa: UP006
        if k.numel() != 1:
            raise ValueError("k must hold one number, got " + str(k.numel()))
        return self.retriever(user_idx, int(k.reshape(-1)[0]))


def check_max_batch_size(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"triton_max_batch_size={value!r}: must be a whole number >= 1")
    return value


def add_wrapped_retriever(entries: dict, modules: dict, folder: Path, num_users, num_items, dim):
    """Script the libtorch retriever into the repository and list it as an artifact to verify."""
    path = folder / FOLDER / f"retriever_torchscript/1/{MODEL_FILE['torchscript']}"
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit: see artifacts.save_module
        torch.jit.save(torch.jit.script(KTensorRetriever(modules["retriever"]).eval()), str(path))
    sig = signature("retriever", "pt2", num_users, num_items, dim)  # k: a tensor, as in pt2
    sig["inputs"][1].update(shape=[1], meaning="how many items per user, a 1-element tensor")
    entries[WRAPPED] = {
        "files": {"torchscript": path.relative_to(folder).as_posix()},
        "signature": {"torchscript": sig},
        "skipped": {},
        "verification": {},
    }


def wrapped_case(cases: dict[str, Case]) -> dict[str, Case]:
    """`cases` plus the wrapped retriever's: the retriever's calls with `k` as a tensor."""
    retriever = cases["retriever"]
    inputs = [[users, torch.tensor([k])] for users, k in retriever.inputs]
    wrapped = Case(WRAPPED, inputs, retriever.expected, retriever.exact)
    return {**cases, WRAPPED: wrapped}


def _tensor(name: str, dtype: str, dims: list[int], reshape: list[int] | None) -> str:
    lines = [f'    name: "{name}"', f"    data_type: {DTYPE[dtype]}", f"    dims: {_dims(dims)}"]
    if reshape is not None:
        lines.append(f"    reshape: {{ shape: {_dims(reshape)} }}")
    return "  {\n" + "\n".join(lines) + "\n  }"


def _dims(dims: list[int]) -> str:
    return "[ " + ", ".join(str(d) for d in dims) + " ]" if dims else "[ ]"


def config_text(model: str, fmt: str, sig: dict, max_batch_size: int) -> str:
    """config.pbtxt of one model, from its manifest signature (names, dtypes, shapes)."""
    batched = not any(i["name"] == "k" for i in sig["inputs"])
    blocks = []
    for kind, tensors in (("input", sig["inputs"]), ("output", sig["outputs"])):
        rendered = []
        for index, t in enumerate(tensors):
            name = f"{t['name']}__{index}" if fmt == "torchscript" else t["name"]
            if t["name"] == "k":  # one number: sent as [1], a 0-d tensor in the ONNX graph
                dims, reshape = [1], (None if fmt == "torchscript" else [])
            elif batched:  # Triton adds the batch axis; the rest of the shape stays
                rest = [d for d in t["shape"][1:] if isinstance(d, int)]
                dims, reshape = (rest, None) if rest else ([1], [])
            else:
                dims, reshape = [-1 if isinstance(d, str) else d for d in t["shape"]], None
            rendered.append(_tensor(name, t["dtype"], dims, reshape))
        blocks.append(f"{kind} [\n" + ",\n".join(rendered) + "\n]")
    head = [f'name: "{model}"', f'platform: "{PLATFORM[fmt]}"']
    head.append(f"max_batch_size: {max_batch_size if batched else 0}")
    tail = ["dynamic_batching { }"] if batched else []
    return "\n".join(head + blocks + tail) + "\n"


def write_repository(folder: Path, entries: dict, max_batch_size: int) -> dict:
    """Lay out `folder/triton/` from the artifacts in `entries`; returns the manifest's `triton`."""
    models = {}
    for name, entry in sorted(entries.items()):
        if name == WRAPPED:
            continue
        for fmt in ("torchscript", "onnx"):
            if fmt not in entry["files"]:
                continue
            model = f"{name}_{fmt}"
            source = WRAPPED if name == "retriever" and fmt == "torchscript" else name
            target = folder / FOLDER / model / "1" / MODEL_FILE[fmt]
            target.parent.mkdir(parents=True, exist_ok=True)
            if source == name:
                shutil.copyfile(folder / entry["files"][fmt], target)
            sig = entries[source]["signature"][fmt]
            config = folder / FOLDER / model / "config.pbtxt"
            config.write_text(config_text(model, fmt, sig, max_batch_size))
            models[model] = {
                "config": config.relative_to(folder).as_posix(),
                "model": target.relative_to(folder).as_posix(),
                "artifact": source,
                "format": fmt,
            }
    return {
        "models": models,
        "run": DOCKER,
        "note": "laid out for Triton; recsys checks the files, not a running tritonserver",
    }
