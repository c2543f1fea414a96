"""The export's optional formats beyond TorchScript/pt2: ONNX files (`onnx_export.py`) and a Triton
model repository (`triton_repo.py`), hooked into `exporter.export_run` in three calls so the
exporter stays about the run, the manifest and the parity check."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from torch import nn

from recsys.errors import ConfigError
from recsys.serving import onnx_export, triton_repo
from recsys.serving.verify import Case

log = logging.getLogger(__name__)


def check_flags(formats, onnx, triton, triton_max_batch_size) -> None:
    """Before any work: the flags are booleans, the Triton repository has something to hold, and
    ONNX's packages are installed when asked for."""
    for key, value in (("onnx", onnx), ("triton", triton)):
        if not isinstance(value, bool):
            raise ConfigError(f"{key}={value!r}: must be true or false")
    if triton:
        triton_repo.check_max_batch_size(triton_max_batch_size)
        if "torchscript" not in formats and not onnx:
            raise ConfigError(
                "triton=true: the repository holds TorchScript and ONNX models; "
                "pass format=torchscript or both, or onnx=true"
            )
    if onnx:
        onnx_export.require_onnx()


def write(
    manifest: dict,
    built: dict[str, dict[str, nn.Module]],
    folder: Path,
    scorer: nn.Module,
    dim: int,
    onnx: bool,
    triton: bool,
    triton_max_batch_size: int,
) -> None:
    """Add the ONNX files and the Triton repository to the staging `folder` and to `manifest`.

    `built` maps each format written to its serving modules (`artifacts.build_modules`), `dim`
    is the width of the encoders' output."""
    entries = manifest["artifacts"]
    if onnx:
        started = time.perf_counter()
        modules = built.get("torchscript") or built["pt2"]
        onnx_export.add_onnx(entries, modules, folder, scorer, dim)
        log.info("ONNX export took %.1f s", time.perf_counter() - started)
    if not triton:
        return
    if "torchscript" in built:
        triton_repo.add_wrapped_retriever(
            entries, built["torchscript"], folder, scorer.num_users, scorer.num_items, dim
        )
    manifest["triton"] = triton_repo.write_repository(folder, entries, triton_max_batch_size)


def with_cases(cases: dict[str, Case], entries: dict) -> dict[str, Case]:
    """Parity cases for every artifact in `entries`, the Triton-only wrapped retriever included."""
    return triton_repo.wrapped_case(cases) if triton_repo.WRAPPED in entries else cases
