"""Parity of exported artifacts with the eager model, checked in a fresh process without recsys.

The parent computes the expected outputs with the eager scorer along the evaluation path
(`score_all_items` + `topk_items`, a different code path from the serving modules), the child
(`verify_child.py`) runs the saved files, and the parent compares: max |diff| <= atol on floats,
identical item ids for top-k.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

CHILD = Path(__file__).with_name("verify_child.py")


@dataclass
class Case:
    """Calls of one artifact: `inputs[j]` is an argument list, `expected[j]` the eager outputs;
    `exact[i]` marks outputs (item ids) that must match exactly."""

    artifact: str
    inputs: list[list] = field(default_factory=list)
    expected: list[list[Tensor]] = field(default_factory=list)
    exact: tuple[bool, ...] = ()


def _max_abs_diff(got: Tensor, want: Tensor) -> float:
    got, want = got.double(), want.double()
    same = (got == want) | (got.isnan() & want.isnan())  # equal infinities count as equal
    diff = torch.where(same, torch.zeros_like(got), (got - want).abs())
    return float(diff.max()) if diff.numel() else 0.0


def compare(case: Case, outputs: list[list[Tensor]], atol: float) -> dict:
    """{'passed', 'max_abs_diff', 'ids_identical', 'calls', 'rows'} for one artifact and format."""
    worst, ids_ok, problems = 0.0, True, []
    for j, (got, want) in enumerate(zip(outputs, case.expected, strict=True)):
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            if g.shape != w.shape:
                problems.append(f"call {j} output {i}: shape {tuple(g.shape)} != {tuple(w.shape)}")
            elif case.exact and case.exact[i]:
                ids_ok &= bool(torch.equal(g.long(), w.long()))
            else:
                worst = max(worst, _max_abs_diff(g, w))
    result = {
        "max_abs_diff": worst,
        "atol": atol,
        "calls": len(case.inputs),
        "rows": sum(int(args[0].shape[0]) for args in case.inputs),
        "passed": not problems and worst <= atol and ids_ok,
    }
    if any(case.exact):
        result["ids_identical"] = ids_ok
    if problems:
        result["problems"] = problems
    return result


def run_fresh_process(
    export_dir: Path, cases: dict[str, Case], formats: dict[str, str], timeout_s: float = 600
) -> dict:
    """Run each case in `python -I -S` with only torch's site directory on the path.

    `formats` maps a case key to the format to load. Returns the child's outputs dict.
    """
    site_dir = str(Path(torch.__file__).resolve().parents[1])
    with tempfile.TemporaryDirectory(prefix="recsys_verify_") as tmp:
        cases_path, outputs_path = Path(tmp) / "cases.pt", Path(tmp) / "outputs.pt"
        payload = {
            key: {"artifact": c.artifact, "format": formats[key], "inputs": c.inputs}
            for key, c in cases.items()
        }
        torch.save(payload, cases_path)
        # The child runs in `tmp`: a relative export path would point there.
        cmd = [sys.executable, "-I", "-S", str(CHILD), str(Path(export_dir).absolute())]
        cmd += [str(cases_path), str(outputs_path), site_dir]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, cwd=tmp)
        if proc.returncode != 0:
            raise RuntimeError(
                f"verification process failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
            )
        return torch.load(outputs_path, weights_only=True)


def verify(export_dir: Path, cases: dict[str, Case], formats: dict[str, str], atol: float) -> dict:
    """Results per case key, each with the process facts that make the check meaningful."""
    out = run_fresh_process(export_dir, cases, formats)
    process = {
        "command": "python -I -S (torch site directory only on sys.path)",
        "recsys_importable": out["recsys_importable"],
        "torch": torch.__version__,
    }
    results = {}
    for key, case in cases.items():
        result = compare(case, out["runs"][key], atol)
        if out["recsys_importable"]:
            result["passed"] = False
            result.setdefault("problems", []).append("recsys was importable in the fresh process")
        results[key] = {**result, "process": process}
    return results
