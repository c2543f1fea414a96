"""Areas "serving" and "export" for the ONNX files and the Triton repository: a damaged `.onnx`
through the standalone loader's `load_onnx`, and bad ONNX/Triton export settings, which must be
refused before any work (no export folder appears)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from recsys.config import check_config
from recsys.serving import loader
from recsys.serving.exporter import export_from_config
from tests.bad_inputs.fixtures import export_copy, run_copy
from tests.bad_inputs.harness import Case
from tests.onnx_support import MISSING
from tests.serving_support import export_config, flip_one_byte

ONNX_FILES = ("retriever.onnx", "user_encoder.onnx", "item_encoder.onnx")


def _open(damage, name: str = "user_encoder"):
    """run(tmp): copy the export, `damage(export)` it, open `name` as an ONNX session and run it."""

    def run(tmp: Path):
        export = export_copy(tmp)
        damage(export)
        session = loader.load_onnx(export, name)
        feeds = {"user_idx": torch.tensor([0, 1]).numpy()}
        if name == "retriever":
            feeds["k"] = torch.tensor(5).numpy()
        return export, session.run(None, feeds)

    return run


def _flip(relative: str):
    def damage(export: Path) -> None:
        flip_one_byte(export / relative)

    return damage


def _truncate(relative: str):
    def damage(export: Path) -> None:
        data = (export / relative).read_bytes()
        (export / relative).write_bytes(data[: len(data) // 3])

    return damage


def _failed_parity(name: str):
    """The manifest says the file failed its parity check (an export kept as `<out>.failed`)."""

    def damage(export: Path) -> None:
        manifest = json.loads((export / "manifest.json").read_text())
        manifest["artifacts"][name]["verification"]["onnx"]["passed"] = False
        (export / "manifest.json").write_text(json.dumps(manifest))

    return damage


def _same_as_torchscript(result, tmp: Path) -> None:
    export, (scores, ids) = result
    want_scores, want_ids = loader.load_artifact(export, "retriever")(torch.tensor([0, 1]), 5)
    assert torch.equal(torch.from_numpy(ids), want_ids), "ONNX and TorchScript rank differently"
    assert float((torch.from_numpy(scores) - want_scores).abs().max()) <= 1e-5


def _export_with(*overrides: str):
    def run(tmp: Path):
        root = run_copy(tmp)
        return export_from_config(export_config(f"run_dir={root}", f"out_dir={tmp}/e", *overrides))

    return run


def _without(package: str):
    """Export as on a machine without `package` (an ImportError on import)."""

    def run(tmp: Path):
        saved = sys.modules.get(package)
        sys.modules[package] = None  # type: ignore[assignment]
        try:
            return _export_with()(tmp)
        finally:
            if saved is None:
                sys.modules.pop(package, None)
            else:
                sys.modules[package] = saved

    return run


def _no_export(_result, tmp: Path) -> None:
    assert not (tmp / "e").exists(), "an export was published despite the error"


def _checked(*overrides: str):
    """What scripts/export.py checks first: the composed config against conf/export.yaml's rules."""
    return lambda tmp: check_config(export_config(*overrides), "export")


def cases() -> list[Case]:
    return _export_settings() + ([] if MISSING else _damaged_files())


def _damaged_files() -> list[Case]:
    serving = [
        Case(
            "onnx-retriever-ok",
            "serving",
            _open(lambda e: None, "retriever"),
            expect="ok",
            check=_same_as_torchscript,
        ),  # fmt: skip
        Case(
            "onnx-missing",
            "serving",
            _open(lambda e: (e / "user_encoder.onnx").unlink()),
            names="user_encoder.onnx",
        ),  # fmt: skip
        Case(
            "onnx-failed-parity",
            "serving",
            _open(_failed_parity("user_encoder")),
            names="did not pass its parity check",
        ),  # fmt: skip
        Case(
            "onnx-not-exported-for-this-model",
            "serving",
            lambda tmp: loader.load_onnx(export_copy(tmp), "propensity"),
            names="no artifact 'propensity'",
        ),  # fmt: skip
    ]
    for relative in ONNX_FILES:
        name = relative.removesuffix(".onnx")
        serving.append(Case(f"onnx-tampered-{name}", "serving", _open(_flip(relative), name),
                            names=relative))  # fmt: skip
        serving.append(Case(f"onnx-truncated-{name}", "serving", _open(_truncate(relative), name),
                            names=relative))  # fmt: skip
    return serving


def _export_settings() -> list[Case]:
    """Refused before any work, with or without the ONNX packages installed."""
    return [
        Case(f"flag-{key}-not-boolean", "export", _export_with(f"{key}=maybe"),
             names=f"{key}='maybe'", check=_no_export)
        for key in ("onnx", "triton")
    ] + [
        Case("triton-max-batch-size-zero", "export",
             _export_with("triton=true", "triton_max_batch_size=0"),
             names="triton_max_batch_size", check=_no_export),  # fmt: skip
        Case("triton-with-nothing-to-serve", "export",
             _export_with("triton=true", "onnx=false", "format=pt2"), names="triton=true",
             check=_no_export),  # fmt: skip
        Case("triton-flag-checked-by-config", "export", _checked("triton=maybe"), names="triton"),
        Case("triton-batch-size-checked-by-config", "export",
             _checked("triton_max_batch_size=-3"), names="triton_max_batch_size"),  # fmt: skip
    ] + [
        Case(f"onnx-without-{package}", "export", _without(package),
             names='pip install -e ".[serving]"', check=_no_export)
        for package in ("onnx", "onnxruntime", "onnxscript")
    ]  # fmt: skip
