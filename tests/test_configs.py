"""Every config under conf/ composes, and no key is silently ignored (Hydra's compose API, no training).

Fails, naming the config file and the key, on:
- anything the check `train()` runs first finds (recsys/config: a key its mapping's `_target_` or
  conf/'s tree does not have, a `_target_` that does not import, a wrong type, a value out of range),
  for every group option, experiment, hparams search (and each value its search space can give a
  trial) and tool config;
- an experiment / hparams search key that the composition it builds on does not have: a typo such as
  `model.modul.embedding_l2` would otherwise do nothing;
- a literal where the config built on has an interpolation (`${...}`): the value stops following its
  source (`model=mf_propensity model.base.dim=32` once trained at a literal `dim: 64`).
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep
from omegaconf import OmegaConf

from recsys.config import config_problems, tree_problems

CONF = Path(__file__).resolve().parents[1] / "conf"
GROUPS = ("data", "model", "scheduler", "optimizer", "trainer", "logger", "callbacks")
ENTRIES = ("export", "segment", "audience", "ab_plan")
PLUGINS = {  # config text -> the optional Hydra plugin it needs
    "hydra/sweeper: optuna": "hydra_plugins.hydra_optuna_sweeper",
    "joblib": "hydra_plugins.hydra_joblib_launcher",
    "submitit_slurm": "hydra_plugins.hydra_submitit_launcher",
}
# What a user gives for each mandatory (`???`) key of the entry configs.
STAND_INS = {"run_dir": "outputs/train/run", "item": 50, "baseline_rate": 0.05, "mde": 0.02}
REF = re.compile(r"\$\{([\w.]+)\}")


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def group_options() -> list[str]:
    return [f"{g}={o}" for g in (*GROUPS, "hydra/launcher") for o in options(g)]


@pytest.fixture(scope="module")
def cfg_of():
    """compose('train' or another entry config, overrides) with the hydra node, from the repo's conf/."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        yield lambda overrides=(), name="train": compose(
            name, overrides=list(overrides), return_hydra_config=True
        )
    GlobalHydra.instance().clear()


def skip_without_plugin(text: str) -> None:
    for needle, module in PLUGINS.items():
        try:
            missing = needle in text and importlib.util.find_spec(module) is None
        except ModuleNotFoundError:  # no hydra_plugins package at all
            missing = True
        if missing:
            pytest.skip(f"optional plugin {module} is not installed (pip install 'recsys[sweeps]')")


def job(cfg) -> dict:
    """The job config, unresolved (what the YAML files wrote), without the hydra node."""
    return {k: v for k, v in OmegaConf.to_container(cfg, resolve=False).items() if k != "hydra"}


def at(tree, path: str, default=KeyError):
    for key in path.split(".") if path else ():
        if not isinstance(tree, dict) or key not in tree:
            if default is KeyError:
                raise KeyError(path)
            return default
        tree = tree[key]
    return tree


def is_interp(value) -> bool:
    return isinstance(value, str) and "${" in value


def problems_of(cfg, where: str, entry: str = "train") -> list[str]:
    """recsys.config's findings on the job config (as a run resolves it) and the hydra node's targets."""
    job_cfg = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    if "paths" in job_cfg:
        job_cfg.paths.output_dir = "/tmp/run"
    found = config_problems(job_cfg, entry)
    if "hydra" in cfg:
        found += tree_problems(OmegaConf.to_container(cfg.hydra, resolve=False), "hydra")
    return [f"{where}: {p}" for p in found]


def new_keys(base, derived, where: str, path: str = "") -> list[str]:
    """Keys `derived` adds to mappings of `base` (under a new `_target_`, the signature decides)."""
    if not isinstance(base, dict) or not isinstance(derived, dict):
        return []
    if "_target_" in derived and derived.get("_target_") != base.get("_target_"):
        return []
    found = []
    for key, value in derived.items():
        sub = f"{path}.{key}" if path else key
        if key not in base:
            found.append(f"{where}: {sub}: no such key in the composition it builds on (a typo?)")
        else:
            found += new_keys(base[key], value, where, sub)
    return found


def shadowed(base, derived, where: str, path: str = "") -> list[str]:
    """Paths where `base` has an interpolation and `derived` a literal (both unresolved)."""
    if is_interp(base) and derived is not None and not is_interp(derived):
        return [f"{where}: {path}: literal {derived!r} replaces {base!r} (set the key it reads)"]
    if not isinstance(base, dict) or not isinstance(derived, dict):
        return []
    found = []
    for key in base.keys() & derived.keys():
        found += shadowed(base[key], derived[key], where, f"{path}.{key}" if path else key)
    return found


def interps(tree, path: str = ""):
    """(path, interpolation string) for every interpolation in `tree`."""
    if is_interp(tree):
        yield path, tree
    elif isinstance(tree, dict):
        for key, value in tree.items():
            yield from interps(value, f"{path}.{key}" if path else key)


def derived_options() -> list[tuple[str, str, str, str]]:
    """(group, option, base option, package under the group) for options that extend another one."""
    found = []
    for group in GROUPS:
        for option in options(group):
            text = yaml.safe_load((CONF / group / f"{option}.yaml").read_text()) or {}
            for entry in text.get("defaults", []):
                if isinstance(entry, str) and entry != "_self_":
                    base, _, package = entry.partition("@")
                    found.append((group, option, base, package))
    return found


@pytest.mark.parametrize("choice", group_options())
def test_group_option_composes_and_every_key_reaches_its_target(cfg_of, choice):
    """`train` with one group option (the other groups at their defaults): targets import, keys are taken."""
    group, option = choice.split("=")
    path = CONF / group / f"{option}.yaml"
    skip_without_plugin(path.read_text())
    cfg = cfg_of([choice])
    problems = problems_of(cfg, str(path.relative_to(CONF.parent)))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "recipe", [f"{g}={o}" for g in ("experiment", "hparams_search") for o in options(g)]
)
def test_recipe_only_sets_existing_keys_and_keeps_interpolations(cfg_of, recipe):
    """An experiment / hparams search on top of the group options it picks: only known keys, no shadows."""
    group, name = recipe.split("=")
    path = CONF / group / f"{name}.yaml"
    where = str(path.relative_to(CONF.parent))
    skip_without_plugin(path.read_text())
    cfg = cfg_of([recipe])
    choices = {g: c for g, c in cfg.hydra.runtime.choices.items() if "/" not in g and g != "hydra"}
    base = cfg_of([f"{g}={c}" for g, c in choices.items() if c is not None and g != group])
    problems = problems_of(cfg, where)
    problems += new_keys(job(base), job(cfg), where)
    problems += shadowed(job(base), job(cfg), where)
    if group == "hparams_search":  # every searched key must exist, or the trials all run one config
        for key in cfg.hydra.sweeper.params or {}:
            if OmegaConf.select(cfg, key, default="<missing>") == "<missing>":
                problems.append(f"{where}: hydra.sweeper.params.{key}: no such key in the config")
    assert not problems, "\n".join(problems)


def search_values(expression: str) -> list:
    """The values a sweep expression can hand a trial: every choice, or both ends of an interval."""
    sweep = OverridesParser.create().parse_overrides([f"k={expression}"])[0].value()
    if isinstance(sweep, ChoiceSweep):
        return list(sweep.list)
    if isinstance(sweep, IntervalSweep):
        return [sweep.start, sweep.end]
    return [sweep]


@pytest.mark.parametrize("search", options("hparams_search"))
def test_every_search_value_passes_validation(cfg_of, search):
    """Each value an Optuna trial can get passes the check train() runs first (else the trial dies)."""
    skip_without_plugin((CONF / "hparams_search" / f"{search}.yaml").read_text())
    cfg = cfg_of([f"hparams_search={search}"])
    problems = []
    for key, expression in cfg.hydra.sweeper.params.items():
        for value in search_values(str(expression)):
            trial = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
            trial.paths.output_dir = "/tmp/run"
            OmegaConf.update(trial, key, value)
            problems += [f"{key}={value}: {p}" for p in config_problems(trial)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("group,option,base_option,package", derived_options())
def test_derived_option_does_not_shadow_its_base(cfg_of, group, option, base_option, package):
    """An option built on another (`mf@base`, `interactions`, `default`) keeps the base's interpolations.

    Mounted under `<group>.<package>`, the base's `${model.dim}` reads the derived option's `model.dim`:
    that key must then follow `model.base.dim` (an interpolation), never hold a literal of its own.
    Where the derived option mirrors a base mapping (`_target_: ${model.base.module._target_}`), every key
    of the base mapping must reach it, or overriding that key under `model.base` does nothing.
    """
    where = f"conf/{group}/{option}.yaml"
    base = job(cfg_of([f"{group}={base_option}"]))[group]
    derived = job(cfg_of([f"{group}={option}"]))[group]
    mounted = at(derived, package)
    problems = shadowed(base, mounted, where, f"{group}.{package}" if package else group)
    if package:
        for path, value in interps(base, group):
            for ref in REF.findall(value):
                key = ref.removeprefix(f"{group}.")
                if ref.startswith(f"{group}.") and not key.startswith(f"{package}."):
                    own = at(derived, key, None)
                    if own is not None and not isinstance(own, dict) and not is_interp(own):
                        problems.append(
                            f"{where}: {ref}: literal {own!r} shadows {group}.{package}.{key}, "
                            f"which {group}.{package}.{path.partition('.')[2]} = {value} should read"
                        )
        for path, value in interps(derived):
            sub = path.removesuffix("._target_")
            if path.endswith("._target_") and value == f"${{{group}.{package}.{sub}._target_}}":
                missing = set(at(mounted, sub)) - set(at(derived, sub))
                problems += [
                    f"{where}: {group}.{sub}.{k}: {group}.{package}.{sub}.{k} never reaches it"
                    for k in sorted(missing)
                ]
    assert not problems, "\n".join(sorted(set(problems)))


@pytest.mark.parametrize("name", ENTRIES)
def test_entry_config_composes(cfg_of, name):
    cfg = cfg_of([], name=name)
    for key in [k for k in cfg if k != "hydra" and OmegaConf.is_missing(cfg, k)]:
        cfg[key] = STAND_INS[key]  # `???`: the user must give it
    problems = problems_of(cfg, f"conf/{name}.yaml", entry=name)
    assert not problems, "\n".join(problems)


def test_checks_catch_a_typo_and_a_shadow(cfg_of):
    """The checks above are live: a misspelt group key and a literal over an interpolation both fail."""
    base = job(cfg_of(["model=mf_propensity"]))
    bad = job(cfg_of(["model=mf_propensity", "+model.modul.embedding_l2=0.1", "model.loss=bce"]))
    assert new_keys(base, bad, "x") == [
        "x: model.modul: no such key in the composition it builds on (a typo?)"
    ]
    assert shadowed(base, bad, "x") == [
        "x: model.loss: literal 'bce' replaces '${model.base.loss}' (set the key it reads)"
    ]
    unknown = {"_target_": "recsys.models.components.mf.MatrixFactorization", "dimm": 8}
    assert tree_problems(unknown, "model.scorer")[0].startswith("unknown key model.scorer.dimm")
    assert "does not import" in tree_problems({"_target_": "recsys.nope.Nope"}, "a")[0]


@pytest.mark.parametrize("model", ["mf_propensity", "two_tower_propensity"])
@pytest.mark.parametrize("key", ["model.dim", "model.base.dim"])
def test_propensity_dim_override_reaches_the_scorer(cfg_of, model, key):
    """`model.dim=32` or its source `model.base.dim=32`: every dim the scorer reads, and the built scorer, are 32.

    (`model.dim=32` leaves model.base.dim, the base's default that nothing reads then, at 64.)
    """
    from recsys.data.sources.synthetic import SyntheticSource
    from recsys.models.contracts import ScorerInputs
    from recsys.models.factory import build_scorer

    cfg = cfg_of([f"model={model}", f"{key}=32"])
    paths = {"model.dim", "model.base.scorer.dim", "model.scorer.base.dim", key}
    dims = {p: OmegaConf.select(cfg, p) for p in sorted(paths)}
    assert dims == dict.fromkeys(dims, 32), f"conf/model/{model}.yaml: {key}=32 gives {dims}"
    data = SyntheticSource(num_users=40, num_items=30, mean_interactions=5, seed=0)()
    scorer = build_scorer(cfg.model.scorer, ScorerInputs.from_data(data))
    width = scorer.base.dim  # the constructor's argument (MF's item table adds a bias column)
    assert width == 32, f"conf/model/{model}.yaml: {key}=32 built a scorer of width {width}"
