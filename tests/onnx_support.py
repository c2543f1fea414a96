"""Shared by the ONNX and Triton tests: one export with ONNX and the Triton layout per session, the
eager reference answers, and a runner that executes model files in a fresh process without recsys
(torch.jit.load for .pt, onnxruntime for .onnx), as a serving machine would."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from recsys.run_dir import RunDir
from recsys.serving import artifacts
from tests.serving_support import exported, fresh_python, trained_run

MISSING = [p for p in ("onnx", "onnxruntime", "onnxscript") if importlib.util.find_spec(p) is None]
needs_onnx = pytest.mark.skipif(
    bool(MISSING), reason=f'{MISSING} not installed: pip install -e ".[serving]"'
)

RUNNER = r'''
"""Run model files: argv = <jobs.pt> <outputs.pt>; each job is (kind, path, [(name, tensor)])."""
import sys
import torch

jobs = torch.load(sys.argv[1], weights_only=True)
out = {"recsys_importable": __import__("importlib").util.find_spec("recsys") is not None}
for key, (kind, path, inputs) in jobs.items():
    if kind == "onnx":
        import onnxruntime
        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        got = session.run(None, {name: t.numpy() for name, t in inputs})
        out[key] = [torch.from_numpy(g) for g in got]
    else:
        module = torch.jit.load(path)
        with torch.no_grad():
            got = module(*[t for _, t in inputs])
        out[key] = list(got) if isinstance(got, (tuple, list)) else [got]
torch.save(out, sys.argv[2])
'''


def onnx_triton_export(tmp_path_factory) -> tuple[Path, Path, dict]:
    """(run dir, export dir, manifest) of the tiny MF run exported with ONNX and Triton, made once
    per session and shared by the test modules."""
    run_dir = trained_run(tmp_path_factory.getbasetemp() / "shared", "mf")
    out = run_dir / "export_onnx_triton"
    if not (out / "manifest.json").is_file():
        exported(run_dir, out, "triton=true")
    return run_dir, out, json.loads((out / "manifest.json").read_text())


def two_tower_export(tmp_path_factory) -> tuple[Path, Path, dict]:
    """The same for a two-tower run with side features and a propensity head (slow: training)."""
    run_dir = trained_run(
        tmp_path_factory.getbasetemp() / "shared",
        "two_tower_propensity",
        "model=two_tower_propensity",
    )
    out = run_dir / "export_onnx_triton"
    if not (out / "manifest.json").is_file():
        exported(run_dir, out, "triton=true")
    return run_dir, out, json.loads((out / "manifest.json").read_text())


def run_fresh(jobs: dict, tmp: Path) -> dict:
    """Outputs of each job, computed by `RUNNER` in `python -I -S` (recsys not importable)."""
    script, jobs_path, outputs_path = tmp / "runner.py", tmp / "jobs.pt", tmp / "outputs.pt"
    script.write_text(RUNNER)
    torch.save(jobs, jobs_path)
    proc = fresh_python(str(script), str(jobs_path), str(outputs_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    outputs = torch.load(outputs_path, weights_only=True)
    assert outputs.pop("recsys_importable") is False
    return outputs


@torch.no_grad()
def eager(run_dir: Path, artifact: str, users: torch.Tensor, items=None, k: int = 10) -> list:
    """The eager model's answer for one artifact, along the evaluation path."""
    run = RunDir(run_dir).load()
    scorer = run.scorer.eval()
    if artifact == "user_encoder":
        return [scorer.user_embedding(users).float()]
    if artifact == "item_encoder":
        return [scorer.item_embedding(items).float()]
    if artifact == "propensity":
        return [artifacts.propensity_module_of(scorer)(users, items).float()]
    pairs = [RunDir(run_dir).seen_pairs(s) for s in ("train", "valid")]
    seen = artifacts.seen_items(pairs, scorer.num_users)
    return artifacts.expected_topk(scorer, seen, users, k)


def max_abs_diff(got: torch.Tensor, want: torch.Tensor) -> float:
    """Largest |got - want|, equal infinities (the seen items' -inf) counting as equal."""
    same = got == want
    return float(torch.where(same, 0.0, (got.double() - want.double()).abs()).max())
