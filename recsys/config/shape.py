"""The keys the shipped config tree (conf/) defines, as one tree: what a mapping without a `_target_`
may hold (`model`, `data.loader`, top-level keys), and the types its shipped values have.

Built from the YAML files, not from a second hand-written schema, so a key added to conf/ is known
at once. A group contributes the union over its options (`model.calibration` exists because the
propensity options define it); `x@pkg` entries of a defaults list mount option x at `<group>.pkg`
(`mf@base` -> `model.base`); `# @package _global_` files (experiments, optimizer, scheduler) at the root.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

CONF = Path(__file__).resolve().parents[2] / "conf"
GLOBAL = "# @package _global_"


@dataclass
class Shape:
    """One mapping of the tree: its keys, whether any option gave it a `_target_`, leaf value types."""

    keys: dict[str, Shape] = field(default_factory=dict)
    targeted: bool = False
    kinds: set[str] = field(default_factory=set)  # type names of the shipped scalar values

    @property
    def is_mapping(self) -> bool:
        return bool(self.keys)

    @property
    def is_collection(self) -> bool:
        """Every entry a `_target_` mapping (callbacks, logger, model.losses): any name may be added."""
        entries = self.keys.values()
        return bool(entries) and all(s.targeted and s.kinds <= {"NoneType"} for s in entries)

    def child(self, key: str) -> Shape | None:
        return self.keys.get(key)

    def merge(self, value: Any) -> None:
        if isinstance(value, dict):
            self.targeted |= "_target_" in value
            for key, sub in value.items():
                if key != "defaults":
                    self.keys.setdefault(str(key), Shape()).merge(sub)
        elif isinstance(value, str) and "${" in value:
            self.kinds.add("interpolation")
        else:
            self.kinds.add(type(value).__name__)


def _load(path: Path) -> tuple[dict, bool]:
    text = path.read_text()
    return yaml.safe_load(text) or {}, text.lstrip().startswith(GLOBAL)


def _mount(root: Shape, package: str, content: Any) -> None:
    node = root
    for key in [k for k in package.split(".") if k]:
        node = node.keys.setdefault(key, Shape())
    node.merge(content)


def _mounted_options(group_dir: Path, content: dict) -> list[tuple[str, dict]]:
    """(package suffix, content) for `option@pkg` entries of a defaults list: same group, new place."""
    found = []
    for entry in content.get("defaults", []):
        if isinstance(entry, str) and "@" in entry:
            option, _, package = entry.partition("@")
            source = group_dir / f"{option}.yaml"
            if source.is_file():
                found.append((package, _load(source)[0]))
    return found


@cache
def config_shape(entry: str = "train", conf: Path = CONF) -> Shape:
    """The tree of every key `entry` (train, export, segment, ...) can compose to, hydra.* left out."""
    root = Shape()
    if not (conf / f"{entry}.yaml").is_file():  # an install without conf/: no key is known unknown
        return root
    top, _ = _load(conf / f"{entry}.yaml")
    root.merge({k: v for k, v in top.items() if k != "hydra"})
    groups = [
        e for e in top.get("defaults", [])
        if isinstance(e, dict) and not str(next(iter(e))).startswith(("override", "hydra"))
    ]  # fmt: skip
    for group in [str(next(iter(e))) for e in groups]:
        for path in sorted((conf / group).rglob("*.yaml")):
            content, is_global = _load(path)
            package = "" if is_global else ".".join(path.parent.relative_to(conf).parts)
            _mount(root, package, {k: v for k, v in content.items() if k != "hydra"})
            for suffix, mounted in _mounted_options(path.parent, content):
                _mount(root, f"{package}.{suffix}", mounted)
    return root
