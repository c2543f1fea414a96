"""The Triton model repository (`triton=true`): every model folder has a config.pbtxt whose declared
tensors (names, dtypes, dims, reshape, batching) drive its model file to the eager model's answers.

Triton itself does not run here: a small parser reads the protobuf text subset the exporter writes
(written independently of the writer), and the model files run in a fresh process without recsys.
"""

from __future__ import annotations

import re

import pytest
import torch

from recsys.serving import loader
from tests.onnx_support import (
    eager,
    max_abs_diff,
    needs_onnx,
    onnx_triton_export,
    run_fresh,
    two_tower_export,
)

pytestmark = needs_onnx
TOKEN = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|([\[\]{}:,])|([A-Za-z_][\w.]*|-?\d+))')
DTYPES = {"TYPE_INT64": torch.int64, "TYPE_FP32": torch.float32}
PLATFORM = {"model.pt": "pytorch_libtorch", "model.onnx": "onnxruntime_onnx"}
MODELS = {
    f"{a}_{f}"
    for a in ("retriever", "user_encoder", "item_encoder")
    for f in ("torchscript", "onnx")
}


def _tokens(text: str) -> list:
    out, pos = [], 0
    while text[pos:].strip():
        m = TOKEN.match(text, pos)
        assert m, f"cannot read config.pbtxt at {text[pos : pos + 30]!r}"
        string, punct, word = m.groups()
        out.append(
            ("str", string) if string is not None else (("p", punct) if punct else ("w", word))
        )
        pos = m.end()
    return out


def parse_pbtxt(text: str) -> dict:
    """The protobuf text subset of model configs: `key: scalar`, `key { ... }`, `key [ ... ]`."""
    tokens = _tokens(text)

    def value(i):
        kind, tok = tokens[i]
        if (kind, tok) == ("p", "{"):
            return message(i + 1, "}")
        if (kind, tok) == ("p", "["):
            items, i = [], i + 1
            while tokens[i] != ("p", "]"):
                item, i = value(i)
                items.append(item)
                if tokens[i] == ("p", ","):
                    i += 1
            return items, i + 1
        if kind == "w" and re.fullmatch(r"-?\d+", tok):
            return int(tok), i + 1
        return tok, i + 1

    def message(i, end):
        fields = {}
        while i < len(tokens) and tokens[i] != ("p", end):
            key = tokens[i][1]
            i += 2 if tokens[i + 1] == ("p", ":") else 1
            fields[key], i = value(i)
        return fields, i + 1

    return message(0, None)[0]


@pytest.fixture(scope="module")
def triton_export(tmp_path_factory):
    run_dir, out, manifest = onnx_triton_export(tmp_path_factory)
    configs = {
        p.parent.name: parse_pbtxt(p.read_text()) for p in (out / "triton").glob("*/config.pbtxt")
    }
    return run_dir, out, manifest, configs


def test_layout_has_one_config_and_one_model_file_per_model_all_hashed(triton_export):
    _, out, manifest, configs = triton_export
    assert set(configs) == MODELS
    loader.verify_all(out)
    for model, config in configs.items():
        files = [p for p in (out / "triton" / model).rglob("*") if p.is_file()]
        names = sorted(p.relative_to(out / "triton" / model).as_posix() for p in files)
        assert names in (["1/model.pt", "config.pbtxt"], ["1/model.onnx", "config.pbtxt"]), names
        assert config["name"] == model
        assert config["platform"] == PLATFORM[names[0].split("/")[1]]
        for p in files:
            assert p.relative_to(out).as_posix() in manifest["files"]
        batched = model.startswith(("user_encoder", "item_encoder"))
        assert config["max_batch_size"] == (1024 if batched else 0)
        assert ("dynamic_batching" in config) == batched
    assert manifest["triton"]["run"].endswith("tritonserver --model-repository=/models")


def _wire_to_model(spec: dict, batch: int, values: torch.Tensor) -> torch.Tensor:
    """The tensor a client sends (batch axis + dims, dtype as declared), then what Triton hands
    the model after `reshape`."""
    dims = [batch if d == -1 else d for d in spec["dims"]]
    shape = [batch, *dims] if spec["batched"] else dims
    wire = values.to(DTYPES[spec["data_type"]]).reshape(shape)
    if "reshape" in spec:
        return wire.reshape(
            [batch, *spec["reshape"]["shape"]] if spec["batched"] else spec["reshape"]["shape"]
        )
    return wire


OUTPUTS = {
    "retriever": ["scores", "item_idx"],
    "user_encoder": ["embedding"],
    "item_encoder": ["embedding"],
    "propensity": ["probability"],
}


def test_declared_tensors_drive_every_model_to_the_eager_answer(triton_export, tmp_path):
    run_dir, out, _, configs = triton_export
    _check_declared(run_dir, out, configs, tmp_path)


@pytest.mark.slow
def test_two_tower_with_propensity_serves_from_its_declared_tensors(tmp_path_factory, tmp_path):
    run_dir, out, manifest = two_tower_export(tmp_path_factory)
    configs = {
        p.parent.name: parse_pbtxt(p.read_text()) for p in (out / "triton").glob("*/config.pbtxt")
    }
    assert set(configs) == MODELS | {"propensity_torchscript", "propensity_onnx"}
    _check_declared(run_dir, out, configs, tmp_path)


def _check_declared(run_dir, out, configs: dict, tmp_path) -> None:
    """Send each model the tensors its config declares; compare with the eager model."""
    users, items, k = torch.tensor([0, 4, 9, 120, 299]), torch.tensor([0, 5, 199, 42, 7]), 15
    values = {"user_idx": users, "item_idx": items, "k": torch.tensor([k])}
    jobs, declared = {}, {}
    for model, config in configs.items():
        batched = config["max_batch_size"] > 0
        inputs = []
        for spec in config["input"]:
            plain = spec["name"].split("__")[0]
            inputs.append(
                (spec["name"], _wire_to_model({**spec, "batched": batched}, 5, values[plain]))
            )
        kind = config["platform"].split("_")[0]  # pytorch | onnxruntime
        file = "model.onnx" if kind == "onnxruntime" else "model.pt"
        jobs[model] = (
            "onnx" if kind == "onnxruntime" else "torchscript",
            str(out / "triton" / model / "1" / file),
            inputs,
        )
        declared[model] = (batched, config["output"])
    got = run_fresh(jobs, tmp_path)
    for model, outputs in got.items():
        artifact = model.rsplit("_", 1)[0]
        want = eager(run_dir, artifact, users, items, k)
        batched, specs = declared[model]
        assert [o["name"].split("__")[0] for o in specs] == OUTPUTS[artifact]
        for g, w, spec in zip(outputs, want, specs, strict=True):
            assert g.dtype == DTYPES[spec["data_type"]], (model, spec)
            model_shape = spec.get("reshape", {}).get("shape", spec["dims"])
            expected = (
                [5, *model_shape]
                if batched
                else [
                    5 if d == -1 and i == 0 else (k if d == -1 else d)
                    for i, d in enumerate(model_shape)
                ]
            )
            assert list(g.shape) == expected, (model, spec, g.shape)
            if g.dtype == torch.int64:
                assert torch.equal(g, w), model
            else:
                assert max_abs_diff(g, w) <= 1e-5, model
