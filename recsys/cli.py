"""Shared behaviour of the entry points: bad input ends with one clear line, not a traceback wall."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from recsys.errors import RecsysError
from recsys.serving.loader import IntegrityError, RequestError

log = logging.getLogger("recsys")

# Everything a user's input can cause; anything else is a bug in recsys and keeps its traceback.
USER_ERRORS: tuple[type[Exception], ...] = (RecsysError, IntegrityError, RequestError)


def one_line(err: BaseException) -> str:
    """The message as the user sees it: `error: ...` on one line, whatever the message holds."""
    return "error: " + " ".join(str(err).split())


def run_or_explain(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except USER_ERRORS as err:
        log.error("%s: %s", type(err).__name__, err)
        print(one_line(err), file=sys.stderr)
        sys.exit(2)
