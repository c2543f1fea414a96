"""Config cases: bad hyper-parameter values, unknown keys at every depth, typos, wrong group options.

Each composes `train` from the real conf/ in-process (Hydra's errors through `composing`, as the entry
scripts report them) and runs the check `train()` runs first; nothing trains.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from recsys.config import check_train_config
from recsys.config.hydra_errors import composing
from tests.bad_inputs.harness import Case
from tests.conftest import TINY, compose_config

BAD = ("0", "-1", "abc", "1e999", "nan")
# key -> (overrides it needs, the values of BAD that are bad for it plus any of its own)
NUMERIC = {
    "model.dim": ([], BAD),
    "data.loader.batch_size": ([], BAD),
    "trainer.max_epochs": ([], ("0", "-2", "abc", "1e999", "nan")),
    "model.module.optimizer.lr": ([], BAD),
    "model.scorer.id_dim": (["model=two_tower"], ("0", "abc")),
    "data.loader.num_negatives": ([], ("-1", "2.5")),
    "data.loader.negative_alpha": (["data.loader.negative_sampling=popularity"], ("-1", "1.5")),
    "model.module.embedding_l2": ([], ("-1", "nan")),
    "model.module.optimizer.weight_decay": (["model=two_tower"], ("-1",)),
    "model.scorer.dropout": (["model=two_tower"], ("1", "-0.5")),
    "model.module.ks": ([], ("[0,10]", "[]", "[ten]")),
    "model.base.dim": (["model=mf_propensity"], ("0",)),
}  # fmt: skip
UNKNOWN = {  # override -> the key the error must name (its did-you-mean)
    "+dimm=8": "dimm",
    "+model.dimm=8": "model.dim",
    "+model.scorer.dimm=8": "model.scorer.dim",
    "+data.loader.batch_sise=8": "data.loader.batch_size",
    "+model.module.optimizer.lrr=0.1": "model.module.optimizer.lr",
    "+model.losses.softmax.temprature=0.5": "model.losses.softmax.temperature",
    "+callbacks.early_stoping.patience=3": "callbacks.early_stopping",
    "+trainer.max_epoch=3": "trainer.max_epochs",
    "+paths.data_dirr=x": "paths.data_dir",
    "model.dimm=8": "model.dim",  # Hydra refuses it (no +): still one line
}
GROUP_OPTIONS = {"model=mff": "model=mff", "data=ml100": "data=ml100", "trainer=gpuu": "trainer=gpuu",
                 "optimizer=adamw": "optimizer=adamw", "experiment=ml100k": "experiment=ml100k"}  # fmt: skip


def checked(tmp: Path, *overrides: str):
    """What the user's `scripts/train.py <overrides>` would check before building anything."""
    with composing():
        cfg = compose_config([*TINY, *overrides], tmp / "run")
    check_train_config(cfg)
    return cfg


def _bad_value(key: str, needs: list[str], value: str) -> Case:
    return Case(
        name=f"{key}={value}" + (f" ({' '.join(needs)})" if needs else ""),
        area="config",
        run=lambda tmp: checked(tmp, *needs, f"{key}={value}"),
        names=key,
    )


def _ok(name: str, overrides: list[str], expected: dict) -> Case:
    def check(cfg, tmp: Path) -> None:
        got = {k: OmegaConf.select(cfg, k) for k in expected}
        assert got == expected, f"{name}: {got} != {expected}"
        assert not (tmp / "run").exists(), "the check wrote into the run directory"

    return Case(f"ok {name}", "config", lambda tmp: checked(tmp, *overrides), "ok", check=check)


def cases() -> list[Case]:
    found = [_bad_value(key, needs, v) for key, (needs, values) in NUMERIC.items() for v in values]
    found += [
        Case(f"unknown {o}", "config", lambda tmp, o=o: checked(tmp, o), names=key)
        for o, key in UNKNOWN.items()
    ]
    found += [
        Case(f"group {o}", "config", lambda tmp, o=o: checked(tmp, o), names=key)
        for o, key in GROUP_OPTIONS.items()
    ]
    found += [
        Case("bpr without negatives", "config",
             lambda tmp: checked(tmp, "data.loader.num_negatives=0"), names="data.loader.num_negatives"),
        Case("loss not in losses", "config", lambda tmp: checked(tmp, "model.loss=warp"), names="model.loss"),
        Case("interpolation to a missing key", "config",
             lambda tmp: checked(tmp, "model.scorer.dim=${model.dimension}"), names="model.scorer.dim"),
        Case("unknown key three deep", "config",
             lambda tmp: checked(tmp, "model=mf_propensity", "+model.scorer.base.dimm=8"),
             names="model.scorer.base"),
        Case("override syntax", "config", lambda tmp: checked(tmp, "model.dim=[1,"), names="model.dim"),
    ]  # fmt: skip
    found += [
        _ok("defaults", [], {"model.dim": 64, "data.loader.batch_size": 1024}),
        _ok("range edges", ["trainer.max_epochs=-1", "model.dim=1", "model.module.ks=[1]",
                            "data.loader.num_negatives=1", "model.module.embedding_l2=0"],
            {"trainer.max_epochs": -1, "model.scorer.dim": 1, "model.module.ks": [1]}),
        _ok("two-tower without sampled negatives", ["model=two_tower", "data.loader.num_negatives=0"],
            {"data.loader.num_negatives": 0, "model.loss": "inbatch"}),
        _ok("propensity dim through its base", ["model=mf_propensity", "model.base.dim=16"],
            {"model.dim": 16, "model.scorer.base.dim": 16}),
        _ok("popularity sampling", ["data.loader.negative_sampling=popularity", "data.loader.negative_alpha=0.75"],
            {"data.loader.negative_alpha": 0.75}),
        _ok("sparse adam table lr", ["optimizer=rowwise_adagrad", "model.module.optimizer.table_lr=0.1"],
            {"model.module.optimizer.table_lr": 0.1, "model.scorer.sparse": True}),
    ]  # fmt: skip
    return found
