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


def _to_log_files(err: BaseException) -> None:
    """The error goes into the run's log file too, but not to the console a second time."""
    record = log.makeRecord(
        log.name, logging.ERROR, __file__, 0, "%s: %s", (type(err).__name__, err), None
    )
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def run_or_explain(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except USER_ERRORS as err:
        _to_log_files(err)
        print(one_line(err), file=sys.stderr)
        sys.exit(2)
