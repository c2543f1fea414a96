"""Area "checkpoint": damaged, foreign and hostile run directories, read back through `RunDir`
(and the exporter's vocabulary check). A payload that would write a marker file must never run."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
import yaml

from recsys.run_dir import RunDir
from recsys.serving.exporter import export_run
from tests.bad_inputs.fixtures import run_copy
from tests.bad_inputs.harness import Case, DataLost

AREA = "checkpoint"


class _Payload:
    """Unpickling this calls open(marker, "w"): what a hostile checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _best(run: Path) -> Path:
    return sorted((run / "checkpoints").glob("epoch*.ckpt"))[-1]


def _no_marker(_result, tmp: Path) -> None:
    if (tmp / "marker").exists():
        raise DataLost("a payload in the run directory ran: marker file written")


def _loading(damage, load=lambda run: RunDir(run).load_scorer()):
    """run(tmp): copy the tiny run, `damage(run, tmp)` it, then `load` it."""

    def run(tmp: Path):
        root = run_copy(tmp)
        damage(root, tmp)
        return load(root)

    return run


def _write(relative: str, data: bytes):
    return lambda run, tmp: (run / relative).write_bytes(data)


def _cut(path_of, keep: float):
    def damage(run: Path, tmp: Path) -> None:
        path = path_of(run)
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * keep)])

    return damage


def _save_in_best(obj_of):
    return lambda run, tmp: torch.save(obj_of(run, tmp), _best(run))


def _edit_config(edit):
    def damage(run: Path, tmp: Path) -> None:
        path = run / ".hydra" / "resolved.yaml"
        cfg = yaml.safe_load(path.read_text())
        edit(cfg, tmp)
        path.write_text(yaml.safe_dump(cfg))

    return damage


def _set(keys: list, value):
    def edit(cfg: dict, tmp: Path) -> None:
        node = cfg
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value(tmp) if callable(value) else value

    return edit


def _open_marker(tmp: Path) -> dict:
    return {"_target_": "builtins.open", "file": str(tmp / "marker"), "mode": "w"}


def _other_size_state(run: Path, tmp: Path) -> dict:
    state = torch.load(_best(run), weights_only=True)
    state["state_dict"] = {
        k: v[:, :8] if v.dim() == 2 else v for k, v in state["state_dict"].items()
    }
    return state


def _other_model_state(run: Path, tmp: Path) -> dict:
    return {"state_dict": {"scorer.user_tower.mlp.0.weight": torch.zeros(4, 4)}}


def _drop_vocab_line(name: str, extra: bool = False):
    def damage(run: Path, tmp: Path) -> None:
        path = run / "vocab" / f"{name}.txt"
        lines = path.read_bytes().split(b"\n")[:-1]
        lines = [*lines, b"surplus-id"] if extra else lines[:-1]
        path.write_bytes(b"".join(line + b"\n" for line in lines))

    return damage


def _export(run: Path):
    return export_run(RunDir(run).load(), run.parent / "export")


def _loaded_ok(result, tmp: Path) -> None:
    scorer, ckpt = result
    run = RunDir(tmp / "run")
    assert scorer.num_users == len(run.vocabulary("users")), "users differ from the vocabulary"
    assert scorer.num_items == len(run.vocabulary("items")), "items differ from the vocabulary"
    assert ckpt.parent == run.checkpoints


def _payload_cases() -> list[Case]:
    """A `_target_` payload at several key paths: refused by key, the marker never written."""
    paths = {
        "data": ["data"],
        "model.scorer": ["model", "scorer"],
        "model.losses.bpr": ["model", "losses", "bpr"],
        "trainer": ["trainer"],
        "callbacks.epoch_timer": ["callbacks", "epoch_timer"],
    }
    cases = []
    for label, keys in paths.items():
        for how, load in (("scorer", None), ("data", lambda run: RunDir(run).load_data())):
            damage = _edit_config(_set(keys, _open_marker))
            run = _loading(damage, load) if load else _loading(damage)
            cases.append(
                Case(
                    f"payload-target-{label}-{how}",
                    AREA,
                    run,
                    names=f"{label}._target_",
                    check=_no_marker,
                )  # fmt: skip
            )
    cases.append(
        Case(
            "payload-data-wrapped",
            AREA,
            _loading(_edit_config(_set(["data", "wrapped"], "subprocess.Popen"))),
            names="data.wrapped",
        )  # fmt: skip
    )
    cases.append(
        Case(
            "reexported-shutil-target",
            AREA,
            _loading(
                _edit_config(
                    _set(["model", "scorer", "_target_"], "recsys.serving.exporter.shutil.rmtree")
                )
            ),
            names="model.scorer._target_",
        )  # fmt: skip
    )
    return cases


def cases() -> list[Case]:
    found = [
        Case(
            "intact-run-loads", AREA, _loading(lambda run, tmp: None), expect="ok", check=_loaded_ok
        ),  # fmt: skip
        Case("truncated-checkpoint", AREA, _loading(_cut(_best, 0.5)), names=".ckpt"),
        Case("empty-checkpoint", AREA, _loading(_cut(_best, 0.0)), names=".ckpt"),
        Case(
            "garbage-checkpoint",
            AREA,
            _loading(lambda run, tmp: _best(run).write_bytes(b"\x00\xffnot a zip" * 50)),
            names=".ckpt",
        ),  # fmt: skip
        Case(
            "pickle-payload-checkpoint",
            AREA,
            _loading(_save_in_best(lambda run, tmp: {"state_dict": _Payload(tmp / "marker")})),
            names=".ckpt",
            check=_no_marker,
        ),  # fmt: skip
        Case(
            "checkpoint-without-state-dict",
            AREA,
            _loading(_save_in_best(lambda run, tmp: {"epoch": 3})),
            names="state_dict",
        ),  # fmt: skip
        Case(
            "checkpoint-is-a-list",
            AREA,
            _loading(_save_in_best(lambda run, tmp: [1, 2, 3])),
            names="state_dict",
        ),  # fmt: skip
        Case(
            "checkpoint-of-another-size",
            AREA,
            _loading(_save_in_best(_other_size_state)),
            names="does not fit",
        ),  # fmt: skip
        Case(
            "checkpoint-of-another-model",
            AREA,
            _loading(_save_in_best(_other_model_state)),
            names="does not fit",
        ),  # fmt: skip
        Case(
            "explicit-checkpoint-missing",
            AREA,
            _loading(lambda run, tmp: None, lambda run: RunDir(run).load_scorer(run / "nope.ckpt")),
            names="nope.ckpt",
        ),  # fmt: skip
        Case(
            "no-checkpoints-folder",
            AREA,
            _loading(lambda run, tmp: shutil.rmtree(run / "checkpoints")),
            names="checkpoint",
        ),  # fmt: skip
        Case(
            "missing-training-state",
            AREA,
            _loading(lambda run, tmp: (run / "training_state.pt").unlink()),
            names="training_state.pt",
        ),  # fmt: skip
        Case(
            "truncated-training-state",
            AREA,
            _loading(_cut(lambda run: run / "training_state.pt", 0.3)),
            names="training_state.pt",
        ),  # fmt: skip
        Case(
            "training-state-without-inputs",
            AREA,
            _loading(lambda run, tmp: torch.save({"seen": {}}, run / "training_state.pt")),
            names="training_state.pt",
        ),  # fmt: skip
        Case(
            "missing-resolved-yaml",
            AREA,
            _loading(lambda run, tmp: (run / ".hydra" / "resolved.yaml").unlink()),
            names="resolved.yaml",
        ),  # fmt: skip
        Case(
            "garbled-resolved-yaml",
            AREA,
            _loading(_write(".hydra/resolved.yaml", b"model: [unclosed\n  - {")),
            names="resolved.yaml",
        ),  # fmt: skip
        Case(
            "resolved-yaml-is-a-list",
            AREA,
            _loading(_write(".hydra/resolved.yaml", b"- 1\n- 2\n")),
            names="resolved.yaml",
        ),  # fmt: skip
        Case(
            "resolved-yaml-without-model",
            AREA,
            _loading(_edit_config(lambda cfg, tmp: cfg.pop("model"))),
            names="model.scorer",
        ),  # fmt: skip
        Case(
            "scorer-with-unknown-argument",
            AREA,
            _loading(_edit_config(_set(["model", "scorer", "no_such_knob"], 3))),
            names="model.scorer",
        ),  # fmt: skip
        Case(
            "missing-users-vocabulary",
            AREA,
            _loading(lambda run, tmp: (run / "vocab" / "users.txt").unlink(), _export),
            names="users.txt",
        ),  # fmt: skip
        Case(
            "short-users-vocabulary",
            AREA,
            _loading(_drop_vocab_line("users"), _export),
            names="users.txt",
        ),  # fmt: skip
        Case(
            "extra-line-items-vocabulary",
            AREA,
            _loading(_drop_vocab_line("items", extra=True), _export),
            names="items.txt",
        ),  # fmt: skip
        Case(
            "vocabulary-not-utf8",
            AREA,
            _loading(_write("vocab/items.txt", b"\xff\xfe\x00bad\n"), _export),
            names="items.txt",
        ),  # fmt: skip
        Case(
            "run-dir-does-not-exist",
            AREA,
            lambda tmp: RunDir(tmp / "no-such-run").load_scorer(),
            names="does not exist",
        ),  # fmt: skip
        Case("run-dir-is-a-file", AREA, _file_as_run, names="is a file"),
        Case(
            "empty-folder-is-no-run",
            AREA,
            lambda tmp: RunDir(tmp).load_scorer(),
            names="not a recsys run directory",
        ),  # fmt: skip
    ]
    return found + _payload_cases()


def _file_as_run(tmp: Path):
    path = tmp / "run.txt"
    path.write_text("not a run")
    return RunDir(path).load_scorer()
