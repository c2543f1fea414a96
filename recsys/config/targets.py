"""What a `_target_` takes: its keyword names and their annotated types, read off its signature.

Hydra hands a mapping's keys to its target as keyword arguments; a key the target does not take fails
deep inside `instantiate` (or, under `**kwargs`, is silently swallowed), and a wrong type fails later
still, inside torch or Lightning, without naming the key. Checking the composed config against the
signature names the key before anything is built.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from hydra.utils import get_object

SPECIAL = frozenset({"_target_", "_partial_", "_convert_", "_recursive_", "_args_"})
# Targets whose **kwargs all go to one other callable: its signature says what they may be.
FORWARDS = {
    "recsys.optim.adam.adam": "torch.optim.Adam",
    "recsys.optim.adam.adamw": "torch.optim.AdamW",
    "recsys.optim.sparse_adam.sparse_dense_adam": "recsys.optim.sparse_adam.SparseDenseAdam",
}


@cache
def signature_of(target: str) -> inspect.Signature:
    """The target's call signature; raises ImportError / AttributeError / ValueError if it is broken."""
    return inspect.signature(get_object(target))


def accepted(target: str) -> set[str] | None:
    """Keyword names the target takes; None when it takes **kwargs (anything)."""
    params = signature_of(target).parameters.values()
    names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    if not any(p.kind is p.VAR_KEYWORD for p in params):
        return names
    forwarded = accepted(FORWARDS[target]) if target in FORWARDS else None
    return None if forwarded is None else names | forwarded


@cache
def annotations(target: str) -> dict[str, Any]:
    """name -> annotation for each parameter whose annotation can be evaluated (others: unknown)."""
    obj = get_object(target)
    fn = obj.__init__ if inspect.isclass(obj) else obj
    namespace = dict(getattr(inspect.getmodule(fn), "__dict__", {}))
    found = annotations(FORWARDS[target]) if target in FORWARDS else {}
    for name, param in signature_of(target).parameters.items():
        ann = param.annotation
        if isinstance(ann, str):  # `from __future__ import annotations`
            try:
                ann = eval(ann, namespace)  # noqa: S307 - the target's own annotation text
            except Exception:  # noqa: BLE001 - a name imported only for type checkers: unknown
                continue
        if ann is not inspect.Parameter.empty:
            found[name] = ann
    return found


def _union_args(ann: Any) -> tuple[Any, ...] | None:
    if typing.get_origin(ann) is typing.Union or isinstance(ann, types.UnionType):
        return typing.get_args(ann)
    return None


def type_ok(value: Any, ann: Any) -> bool:
    """Whether a resolved config value fits `ann`; annotations it cannot judge accept anything.

    None passes (many signatures take None without saying so; range rules catch a null where a
    number is needed). A string passes for `str`, and so does a number (ids, names such as `5`).
    """
    if value is None or ann is Any:
        return True
    union = _union_args(ann)
    if union is not None:
        return any(type_ok(value, a) for a in union)
    origin = typing.get_origin(ann)
    if origin is typing.Literal:
        return any(type(value) is type(a) for a in typing.get_args(ann))
    if ann is bool:
        return isinstance(value, bool)
    if ann is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if ann is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if ann is str or ann is Path:
        return isinstance(value, str | int | float) and not isinstance(value, bool)
    container = origin or ann
    if container in (list, tuple, Sequence) or (
        inspect.isclass(container) and issubclass(container, Sequence) and container is not str
    ):
        if not isinstance(value, list | tuple):
            return False
        args = [a for a in typing.get_args(ann) if a is not Ellipsis]
        return len(args) != 1 or all(type_ok(v, args[0]) for v in value)
    if container in (dict, Mapping) or (
        inspect.isclass(container) and issubclass(container, Mapping)
    ):
        return isinstance(value, dict)
    if container is Callable or origin is Callable:
        return isinstance(value, dict | str)  # a `_target_` mapping (often `_partial_`) or a path
    # A class, a tensor, a protocol: built by the code, or by a nested mapping that needs a _target_
    # (`+model.scorer.base.dimm=8` replaces the interpolation of the base scorer with {dimm: 8}).
    return not isinstance(value, dict) or "_target_" in value


def type_name(ann: Any) -> str:
    """How an annotation reads in a message: `int`, `float | None`, `list[int]`."""
    if isinstance(ann, type) and not typing.get_args(ann):
        return ann.__name__
    return str(ann).replace("typing.", "")
