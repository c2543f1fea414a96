"""Training runs a user starts wrongly: an exploding learning rate, a run directory already used or
in use, a checkpoint of other data or another model, a ckpt_path that is no checkpoint. Each trains
a tiny config in-process (one epoch on the corpus's synthetic world), or fails before training."""

from __future__ import annotations

import fcntl
import math
import os
from pathlib import Path

import torch
from omegaconf import OmegaConf

from recsys.run_dir import RunDir
from recsys.run_guard import RunGuard
from recsys.train import objective, train
from tests.bad_inputs.fixtures import run_copy
from tests.bad_inputs.harness import Case, DataLost
from tests.conftest import TINY, compose_config
from tests.hydra_support import command_line

ONE_EPOCH = [*TINY, "trainer.max_epochs=1", "~logger"]
NOT_DATA = [o for o in ONE_EPOCH if not o.startswith("data.")]


def _train(tmp: Path, *overrides: str, run: str = "run"):
    return train(compose_config([*ONE_EPOCH, *overrides], tmp / run))


def _no_non_finite_checkpoint(_, tmp: Path) -> None:
    assert not (tmp / "run" / "metrics.json").exists(), "a diverged run wrote metrics.json"
    for ckpt in tmp.rglob("*.ckpt"):
        state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
        assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point()), ckpt


def _learning_rate(lr: str, names: str) -> Case:
    return Case(
        f"lr_{lr}",
        "training",
        lambda tmp: _train(tmp, f"model.module.optimizer.lr={lr}"),
        names=names,
        check=_no_non_finite_checkpoint,
    )


def _kept(name: str):
    """A check that the shared run's `name` is byte for byte what it was before the case."""

    def run(tmp: Path):
        run_dir = run_copy(tmp)
        (tmp / "before").write_bytes((run_dir / name).read_bytes())
        return train(compose_config([*ONE_EPOCH, "model.dim=8"], run_dir))

    def check(_, tmp: Path) -> None:
        if (tmp / "run" / name).read_bytes() != (tmp / "before").read_bytes():
            raise DataLost(f"the first run's {name} was overwritten by the second run")

    return run, check


def _locked(tmp: Path):
    run_dir = tmp / "run"
    run_dir.mkdir()
    with RunDir(run_dir).lock_path.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return train(compose_config(ONE_EPOCH, run_dir))


def _lock_taken_over(held: str, tmp: Path) -> None:
    assert f"pid {os.getpid()} " in held, held
    assert not RunDir(tmp / "run").lock_path.exists(), "the lock outlived its run"


def _stale_lock(tmp: Path):
    run_dir = tmp / "run"
    run_dir.mkdir()
    RunDir(run_dir).lock_path.write_text("pid 999999 on a machine that rebooted\n")
    with RunGuard(RunDir(run_dir)):
        held = RunDir(run_dir).lock_path.read_text()
    return held


def _resume(tmp: Path, *overrides: str, into="new", cli=False, base: list[str] = ONE_EPOCH):
    ckpt = run_copy(tmp) / "checkpoints" / "last.ckpt"
    wanted = [*base, *overrides, f"ckpt_path={ckpt}"]
    if not cli:
        return train(compose_config(wanted, tmp / into))
    with command_line(*wanted):
        return train(compose_config(wanted, tmp / into))


def _other_runs_checkpoint_into_used_dir(tmp: Path):
    """Resuming run A's checkpoint into run B's directory would overwrite B."""
    ckpt = run_copy(tmp, name="a") / "checkpoints" / "last.ckpt"
    return train(compose_config([*ONE_EPOCH, f"ckpt_path={ckpt}"], run_copy(tmp, name="b")))


def _without_overrides(tmp: Path):
    """The shared run was trained with TINY's data sizes; resumed naming none of them."""
    return _resume(tmp, "trainer.max_epochs=3", into="run", cli=True, base=NOT_DATA)


def _restored(result, tmp: Path) -> None:
    metrics, objects = result
    assert objects["module"].scorer.num_users == 300, "the run's data sizes were not restored"
    assert metrics["epochs"] == 3
    assert OmegaConf.load(tmp / "run" / ".hydra" / "resolved.yaml").data.num_users == 300


def _checkpoint_file(tmp: Path, content: bytes | None):
    path = tmp / "model.ckpt"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    return _train(tmp, f"ckpt_path={path}")


def _propensity_objective(tmp: Path):
    recipe = ["experiment=synthetic_propensity", "model.calibration.baseline_logreg=false"]
    cfg = compose_config([*ONE_EPOCH, *recipe], tmp / "run")
    metrics, _ = train(cfg)
    return objective(metrics, cfg)


def _is_validation_score(value, tmp: Path) -> None:
    assert isinstance(value, float) and 0.0 <= value <= 1.0 and not math.isnan(value), value


def _missing_data(tmp: Path):
    return train(
        compose_config([*NOT_DATA, "data=interactions", "data.path=gone.csv"], tmp / "run")
    )


def _nothing_left(_, tmp: Path, run: str = "run") -> None:
    assert not (tmp / run).exists(), f"a failed start left a half-made run directory {run}"


def _no_new_run(result, tmp: Path) -> None:
    _nothing_left(result, tmp, "new")


def cases() -> list[Case]:
    used = [_kept(name) for name in ("metrics.json", "checkpoints/last.ckpt")]
    return [
        _learning_rate("1e20", "diverged in epoch 0"),
        *(_learning_rate(lr, f"optimizer.lr={lr}") for lr in ("inf", "-inf", "nan", "-0.5")),
        *(
            Case(f"second_run_into_used_dir_keeps_{name}", "training", run, "error", "holds", check)
            for name, (run, check) in zip(("metrics", "last_ckpt"), used, strict=True)
        ),
        Case(
            "resume_into_another_used_dir",
            "training",
            _other_runs_checkpoint_into_used_dir,
            names="already holds",
        ),
        Case("concurrent_run_holds_lock", "training", _locked, names="another run is training"),
        Case("stale_lock_of_killed_run", "training", _stale_lock, "ok", check=_lock_taken_over),
        Case(
            "resume_other_data",
            "training",
            lambda t: _resume(t, "seed=7"),
            names="other data",
            check=_no_new_run,
        ),
        Case(
            "resume_other_dim",
            "training",
            lambda t: _resume(t, "model.dim=8"),
            names="model.scorer.dim=64 (now 8)",
            check=_no_new_run,
        ),
        Case(
            "resume_cli_other_dim",
            "training",
            lambda t: _resume(t, "model.dim=8", cli=True),
            names="model.scorer.dim=64 (now 8)",
            check=_no_new_run,
        ),
        Case(
            "resume_without_overrides", "training", _without_overrides, expect="ok", check=_restored
        ),
        Case(
            "ckpt_path_missing",
            "training",
            lambda t: _train(t, f"ckpt_path={t}/no.ckpt"),
            names="no.ckpt: no such checkpoint file",
            check=_nothing_left,
        ),
        Case(
            "ckpt_path_is_a_directory",
            "training",
            lambda t: _checkpoint_file(t, None),
            names="model.ckpt",
            check=_nothing_left,
        ),
        Case(
            "ckpt_path_not_a_checkpoint",
            "training",
            lambda t: _checkpoint_file(t, b"user,item\n1,2\n"),
            names="not a readable checkpoint",
            check=_nothing_left,
        ),
        Case(
            "synthetic_propensity_objective",
            "training",
            _propensity_objective,
            expect="ok",
            check=_is_validation_score,
        ),
        Case(
            "failed_start_missing_data",
            "training",
            _missing_data,
            names="gone.csv",
            check=_nothing_left,
        ),
    ]
