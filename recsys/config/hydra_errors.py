"""Hydra's own composition errors as one-line ConfigErrors that name the group or key at fault.

Hydra reports a wrong group option (`model=mff`) over a dozen lines with its search path, and a
missing key with a hint but no suggestion; composing through `composing()` turns both into one line.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from hydra.errors import (
    ConfigCompositionException,
    HydraException,
    MissingConfigException,
    OverrideParseException,
)

from recsys.config.shape import config_shape
from recsys.errors import ConfigError

MISSING_OPTION = re.compile(r"Could not find '([^']+)/([^']+)'")
AVAILABLE = re.compile(r"Available options in '[^']+':\n((?:\t.*\n?)*)")
OVERRIDE = re.compile(r"Could not override '([^']+)'")


def _guess(word: str, choices: list[str]) -> str:
    found = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {found[0]}?)" if found else ""


def _known_near(path: str, entry: str) -> list[str]:
    """Keys of conf/ next to `path` (the siblings it could be a typo of), as dotted paths."""
    *parents, _ = path.split(".")
    shape = config_shape(entry)
    for key in parents:
        shape = shape.child(key) if shape is not None else None
    prefix = ".".join(parents)
    return [f"{prefix}.{k}" if prefix else k for k in (shape.keys if shape else {})]


def explain(err: HydraException, entry: str = "train") -> ConfigError:
    """One line for a Hydra composition error, naming the group or key."""
    text = str(err)
    if isinstance(err, MissingConfigException) and (found := MISSING_OPTION.search(text)):
        group, option = found.groups()
        listed = AVAILABLE.search(text)
        options = listed.group(1).split() if listed else []
        hint = _guess(option, options)
        return ConfigError(
            f"{group}={option}: no such option in conf/{group}{hint}; available: "
            + (", ".join(options) or "none")
        )
    if isinstance(err, ConfigCompositionException) and (found := OVERRIDE.search(text)):
        key = found.group(1)
        hint = _guess(key, _known_near(key, entry))
        return ConfigError(f"unknown key {key}{hint}; to add a new key anyway: +{key}=...")
    if isinstance(err, OverrideParseException):
        line = text.strip().splitlines()[0] if text.strip() else "does not parse"
        return ConfigError(f"override {err.override!r}: {line} (Hydra's override grammar)")
    first = text.strip().splitlines()[0] if text.strip() else type(err).__name__
    return ConfigError(f"config: {first}")


@contextmanager
def composing(entry: str = "train") -> Iterator[None]:
    """Around a `hydra.compose(...)`: its errors leave as one-line ConfigErrors."""
    try:
        yield
    except HydraException as err:
        raise explain(err, entry) from err


@contextmanager
def one_line_hydra_errors(entry: str = "train") -> Iterator[None]:
    """Around an entry script's `main()`: a composition error prints `error: ...` and exits 2.

    Hydra prints its own errors over many lines and exits 1 unless HYDRA_FULL_ERROR is set, in
    which case it re-raises them; set here (unless the user chose), they reach this handler, and
    any other exception keeps its full traceback.
    """
    from recsys.cli import one_line

    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    try:
        yield
    except (ConfigCompositionException, OverrideParseException) as err:
        print(one_line(explain(err, entry)), file=sys.stderr)
        sys.exit(2)
