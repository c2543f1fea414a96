"""`torch.compile` as an option that never stops a run: where compiling fails, eager it is.

On CPU inductor needs a C++ compiler, on CUDA Triton; the first call pays the compile (seconds,
cached on disk for later runs). A failure there is reported once as a warning and the function
runs eagerly from then on, with the same results up to float rounding.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any


class CompiledOrEager:
    """`fn` through `torch.compile(fn, **options)`; eager after the first compile failure."""

    def __init__(self, fn: Callable[..., Any], what: str, **options: Any) -> None:
        import torch

        self.fn, self.what = fn, what
        self._compiled: Callable[..., Any] | None = torch.compile(fn, **options)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._compiled is None:
            return self.fn(*args, **kwargs)
        try:
            return self._compiled(*args, **kwargs)
        except Exception as err:  # noqa: BLE001  (no compiler, unsupported op: keep training)
            warnings.warn(
                f"torch.compile of {self.what} failed ({type(err).__name__}: {err}); "
                "running it eagerly",
                stacklevel=2,
            )
            self._compiled = None
            return self.fn(*args, **kwargs)
