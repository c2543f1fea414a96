"""Validate a composed config before anything is built: unknown keys, wrong types, values out of
range, each named by its full dotted path. `check_train_config` is the first thing `train` does, so a
bad key costs a second, not a data load and a traceback from deep inside Lightning.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import InterpolationKeyError, MissingMandatoryValue

from recsys.config.rules import BY_PATH, BY_TARGET, ENTRY_PATHS, path_rule
from recsys.config.shape import Shape, config_shape
from recsys.config.targets import SPECIAL, accepted, annotations, type_name, type_ok
from recsys.errors import ConfigError
from recsys.tracking import missing_tracking_packages

# Mappings the code takes off a target's config and hands to another target, with what it passes itself.
CONSUMED = {"data": {"loader": "recsys.data.datamodule.InteractionDataModule"}}
PASSED_BY_CODE = {"recsys.data.datamodule.InteractionDataModule": {"source", "seed"}}
SKIPPED = ("hydra",)  # Hydra validates its own node against its structured config
REF = re.compile(r"^\$\{([\w.]+)\}$")
_UNSET = object()


def join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


class Resolved:
    """The config resolved leaf by leaf, remembering which key each plain `${a.b}` reads."""

    def __init__(self, cfg: DictConfig) -> None:
        self.problems: list[str] = []
        self.source: dict[str, str] = {}
        self.tree = self._resolve(cfg, "")

    def origin(self, path: str) -> str:
        """The key a chain of plain interpolations starts from (model.scorer.dim -> model.base.dim)."""
        seen = {path}
        while path in self.source and self.source[path] not in seen:
            path = self.source[path]
            seen.add(path)
        return path

    def _resolve(self, node: Any, path: str) -> Any:
        if isinstance(node, DictConfig):
            items = [(k, join(path, k)) for k in node if not (not path and k in SKIPPED)]
        elif isinstance(node, ListConfig):
            items = [(i, join(path, i)) for i in range(len(node))]
        else:
            return node
        out = {} if isinstance(node, DictConfig) else []
        for key, sub in items:
            child = node._get_node(key)
            raw = child._value() if child is not None else None
            if isinstance(raw, str) and (ref := REF.match(raw)):
                self.source[sub] = ref.group(1)
            try:
                value = node[key]
            except MissingMandatoryValue:
                self.problems.append(f"{sub}: required, no value given (set {sub}=...)")
                value = _UNSET
            except InterpolationKeyError as err:
                why = str(err).splitlines()[0]
                self.problems.append(f"{sub}: {raw} reads a key that does not exist ({why})")
                value = _UNSET
            except Exception:  # noqa: BLE001 - e.g. ${hydra:...} outside a Hydra run: not ours to judge
                value = _UNSET
            value = self._resolve(value, sub)
            if isinstance(out, dict):
                out[str(key)] = value
            else:
                out.append(value)
        return out


class Checker:
    def __init__(self, resolved: Resolved, path_rules: dict[str, Any]) -> None:
        self.resolved, self.path_rules = resolved, path_rules
        self.problems: list[str] = []
        self._named: set[str] = set()

    def report(self, path: str, why: str) -> None:
        """One line per origin: `model.dim=0` is reported once, not again at model.scorer.dim."""
        origin = self.resolved.origin(path)
        if origin in self._named:
            return
        self._named.add(origin)
        self.problems.append(why if origin == path else f"{why} (set by {origin})")

    def unknown(self, path: str, key: str, known: set[str], why: str = "") -> None:
        guess = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
        hint = f" (did you mean {join(path, guess[0])}?)" if guess else ""
        self.report(join(path, key), f"unknown key {join(path, key)}{why}{hint}")

    def value(self, path: str, value: Any, rule: Any = None, ann: Any = _UNSET) -> bool:
        if value is _UNSET:
            return False
        if ann is not _UNSET and not type_ok(value, ann):
            expected = rule.text() if rule is not None else f"of type {type_name(ann)}"
            if isinstance(value, dict):
                expected = f"a mapping with a _target_ that builds {type_name(ann)}"
            self.report(path, f"{path}={value!r}: must be {expected}")
            return False
        if rule is not None and not rule.ok(value):
            self.report(path, f"{path}={value!r}: must be {rule.text()}")
            return False
        return True

    def walk(self, node: Any, path: str, shape: Shape | None) -> None:
        if isinstance(node, list):
            for i, item in enumerate(node):
                self.walk(item, join(path, i), None)
            return
        if not isinstance(node, dict):
            rule = path_rule(self.path_rules, path)
            ann = _kind_annotation(shape) if shape is not None else _UNSET
            self.value(path, node, rule, ann)
            return
        if isinstance(node.get("_target_"), str):
            self.target(node, path, node["_target_"], shape)
        elif shape is not None and shape.is_collection:
            for key, sub in node.items():
                if sub is not None and not (isinstance(sub, dict) and "_target_" in sub):
                    known = set(shape.keys)
                    self.unknown(path, key, known, " (each entry needs a _target_)")
                else:
                    self.walk(sub, join(path, key), shape.child(key))
        else:
            for key, sub in node.items():
                if shape is not None and shape.is_mapping and key not in shape.keys:
                    self.unknown(path, key, set(shape.keys))
                else:
                    self.walk(sub, join(path, key), shape.child(key) if shape else None)

    def target(self, node: dict, path: str, target: str, shape: Shape | None, skip=()) -> None:
        try:
            names, types = accepted(target), annotations(target)
        except Exception as err:  # noqa: BLE001 - ImportError, AttributeError, ValueError: all "broken"
            self.report(
                join(path, "_target_"), f"{path}._target_={target}: does not import ({err})"
            )
            return
        consumed = CONSUMED.get(path, {})
        rules = BY_TARGET.get(target, {})
        for key, sub in node.items():
            sub_path = join(path, key)
            if key in SPECIAL or key in skip:
                continue
            if key in consumed:
                self.target(sub or {}, sub_path, consumed[key], None, PASSED_BY_CODE[consumed[key]])
                for passed in PASSED_BY_CODE[consumed[key]] & set(sub or {}):
                    self.report(
                        join(sub_path, passed),
                        f"{join(sub_path, passed)}: set by the code, not the config",
                    )
                continue
            if names is not None and key not in names:
                short = target.rsplit(".", 1)[-1]
                takes = ", ".join(sorted(names)) if len(names) <= 12 else f"no argument {key!r}"
                self.unknown(path, key, names - SPECIAL, f": {short} takes {takes}")
                continue
            rule = rules.get(key) or path_rule(self.path_rules, sub_path)
            if isinstance(sub, dict):
                if self.value(sub_path, sub, None, types.get(key, _UNSET)):
                    self.walk(sub, sub_path, shape.child(key) if shape else None)
            elif self.value(sub_path, sub, rule, types.get(key, _UNSET)) and isinstance(sub, list):
                self.walk(sub, sub_path, None)


def _kind_annotation(shape: Shape) -> Any:
    """The type the shipped values of a plain key share (int, float, bool), or none to check."""
    kinds = shape.kinds - {"interpolation"}
    if shape.is_mapping or not kinds or kinds - {"int", "float", "bool"}:
        return _UNSET
    if kinds == {"bool"}:
        return bool
    return int if kinds == {"int"} else float


def _selected_loss_needs_negatives(tree: dict) -> bool:
    from hydra.utils import get_object

    model = tree.get("model") or {}
    chosen = (model.get("losses") or {}).get(model.get("loss"))
    target = chosen.get("_target_") if isinstance(chosen, dict) else None
    try:
        return bool(target) and get_object(target).needs_sampled_negatives
    except Exception:  # noqa: BLE001 - a broken target is reported by the walk
        return False


def cross_problems(tree: dict) -> list[str]:
    """Rules between keys: the loss named must exist; a pairwise loss needs sampled negatives; a
    tracker needs its package."""
    model = tree.get("model") if isinstance(tree.get("model"), dict) else {}
    found = []
    for prefix, node in (("model", model), ("model.base", model.get("base"))):
        losses = node.get("losses") if isinstance(node, dict) else None
        if isinstance(losses, dict) and "loss" in node and node["loss"] not in losses:
            names = " | ".join(sorted(losses))
            found.append(
                f"{prefix}.loss={node['loss']!r}: must be one of {names} (keys of {prefix}.losses)"
            )
    loader = (tree.get("data") or {}).get("loader") or {}
    if loader.get("num_negatives") == 0 and _selected_loss_needs_negatives(tree):
        found.append(f"data.loader.num_negatives=0: model.loss={model['loss']} compares each "
                     "positive with sampled negatives, so it must be an integer >= 1")  # fmt: skip
    return found + missing_tracking_packages(tree)


def config_problems(cfg: DictConfig, entry: str = "train") -> list[str]:
    """Every problem found, one line each, naming the key (empty when the config is valid)."""
    resolved = Resolved(cfg)
    checker = Checker(resolved, BY_PATH if entry == "train" else ENTRY_PATHS.get(entry, {}))
    checker.walk(resolved.tree, "", config_shape(entry))
    problems = resolved.problems + checker.problems
    return problems + (cross_problems(resolved.tree) if not problems and entry == "train" else [])


def check_config(cfg: DictConfig, entry: str = "train") -> None:
    """Raise one ConfigError listing every problem of `cfg` (composed from conf/<entry>.yaml)."""
    problems = config_problems(cfg, entry)
    if problems:
        raise ConfigError("; ".join(problems))


def check_train_config(cfg: DictConfig) -> None:
    check_config(cfg, "train")


def tree_problems(tree: dict, path: str = "") -> list[str]:
    """Targets and their keys alone, for a tree outside conf/'s shape (e.g. the `hydra` node)."""
    checker = Checker(Resolved(OmegaConf.create({})), {})
    checker.walk(tree, path, None)
    return checker.problems
