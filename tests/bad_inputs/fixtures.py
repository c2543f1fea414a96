"""Trained runs and exports shared by the corpus's cases: made once per process in a temp folder,
copied into each case's own folder, so a case may damage its copy freely."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import cache
from pathlib import Path

_BASE = Path(tempfile.mkdtemp(prefix="recsys-corpus-"))
atexit.register(shutil.rmtree, _BASE, ignore_errors=True)


@cache
def _trained(*overrides: str) -> Path:
    from tests.serving_support import trained_run

    return trained_run(_BASE, f"run{len(list(_BASE.iterdir()))}", *overrides)


@cache
def _exported(*overrides: str) -> Path:
    from tests.serving_support import exported

    out_dir, _ = exported(_trained(*overrides), _BASE / f"export{len(list(_BASE.iterdir()))}")
    return out_dir


def run_copy(tmp: Path, *overrides: str, name: str = "run") -> Path:
    """A private copy of a tiny trained run (MF on the synthetic world unless `overrides` say)."""
    target = tmp / name
    shutil.copytree(_trained(*overrides), target)
    return target


def export_copy(tmp: Path, *overrides: str, name: str = "export") -> Path:
    """A private copy of the verified export of that run."""
    target = tmp / name
    shutil.copytree(_exported(*overrides), target)
    return target
