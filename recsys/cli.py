"""Shared behaviour of the entry points: bad input ends with one clear line, not a traceback wall."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from recsys.errors import DataError, RunError

log = logging.getLogger("recsys")


def run_or_explain(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except (DataError, RunError) as err:
        log.error("%s: %s", "data error" if isinstance(err, DataError) else "run error", err)
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
