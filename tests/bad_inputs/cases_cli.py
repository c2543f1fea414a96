"""Config area: what people type at the command-line tools (ab_plan, inspect_data, data presets,
threads), called in-process through the functions the scripts call."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from tests.bad_inputs.harness import Case
from tests.conftest import CONF, compose_config


def ab_plan(*overrides: str):
    from recsys.marketing.ab_plan import plan_from_config

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("ab_plan", overrides=list(overrides))
    return plan_from_config(cfg)


def write_log(path: Path) -> Path:
    path.write_text(
        "user,item\n" + "".join(f"u{u},i{(u * 7 + k) % 13}\n" for u in range(30) for k in range(6))
    )
    return path


def inspect(tmp: Path, *overrides: str) -> dict:
    from recsys.data.summary import inspect_data

    return inspect_data(compose_config(["data=interactions", *overrides], tmp / "run"))


@contextmanager
def offline_with_data_dir(data_dir: Path, cache_dir: Path) -> Iterator[None]:
    """RECSYS_DATA_DIR and the cache pointed at `data_dir` and `cache_dir`, and no network."""
    from recsys.data.sources import download

    def no_network(url, timeout):
        raise OSError("[Errno 101] Network is unreachable")

    saved = {k: os.environ.get(k) for k in ("RECSYS_DATA_DIR", "RECSYS_CACHE_DIR")}
    real = download.urllib.request.urlopen
    os.environ.update(RECSYS_DATA_DIR=str(data_dir), RECSYS_CACHE_DIR=str(cache_dir))
    download.urllib.request.urlopen = no_network
    try:
        yield
    finally:
        download.urllib.request.urlopen = real
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def load_preset_offline(tmp: Path, preset: str):
    from recsys.data.datamodule import build_datamodule

    (tmp / "empty").mkdir()
    with offline_with_data_dir(tmp / "empty", tmp / "cache"):
        cfg = compose_config([f"data={preset}"], tmp / "run")
        return build_datamodule(cfg.data, cfg.seed).load()


def _plan_cases() -> list[Case]:
    bad = [
        ("ab_plan_without_mde", ["baseline_rate=0.05"], "mde"),
        ("ab_plan_without_anything", [], "baseline_rate"),
        ("ab_plan_mde_zero", ["baseline_rate=0.05", "mde=0"], "mde=0"),
        ("ab_plan_mde_negative", ["baseline_rate=0.05", "mde=-0.02"], "mde=-0.02"),
        ("ab_plan_mde_not_a_number", ["baseline_rate=0.05", "mde=two"], "mde"),
        ("ab_plan_target_above_one", ["baseline_rate=0.5", "mde=0.6"], "target rate"),
        ("ab_plan_arms_one", ["baseline_rate=0.05", "mde=0.01", "arms=1"], "arms"),
    ]
    for value in ("0", "1", "1.5", "-0.1"):
        bad.append((f"ab_plan_baseline_rate_{value}", [f"baseline_rate={value}", "mde=0.01"],
                    "baseline_rate"))  # fmt: skip
    for key, value in (("alpha", "0"), ("alpha", "1.2"), ("power", "1")):
        bad.append((f"ab_plan_{key}_{value}", ["baseline_rate=0.05", "mde=0.01", f"{key}={value}"],
                    key))  # fmt: skip
    cases = [
        Case(name, "config", lambda tmp, o=overrides: ab_plan(*o), names=names)
        for name, overrides, names in bad
    ]

    def r_worked_example(result, tmp):  # R: power.prop.test(p1=.5, p2=.75, power=.9) -> n = 76.7
        assert (result.per_arm, result.total) == (77, 154), result

    cases.append(Case("ab_plan_worked_example", "config", expect="ok", check=r_worked_example,
                      run=lambda tmp: ab_plan("baseline_rate=0.5", "mde=0.25", "power=0.9")))  # fmt: skip
    return cases


def _data_cases() -> list[Case]:
    def counts_add_up(result, tmp):
        summary, report = result["summary"], result["report"]
        assert (summary["users"], summary["items"], summary["interactions"]) == (30, 13, 180)
        assert report["rows_read"] == report["rows_removed"] + report["rows_kept"]["total"] == 180

    return [
        Case("inspect_data_missing_file", "config", names="missing.csv",
             run=lambda tmp: inspect(tmp, f"data.path={tmp / 'missing.csv'}")),
        Case("inspect_data_folder_as_file", "config", names="logs",
             run=lambda tmp: (tmp / "logs").mkdir() or inspect(tmp, f"data.path={tmp / 'logs'}")),
        Case("inspect_data_good_file", "config", expect="ok", check=counts_add_up,
             run=lambda tmp: inspect(tmp, f"data.path={write_log(tmp / 'log.csv')}")),
        Case("ml100k_empty_data_dir_offline", "config", names="empty/ml-100k",
             run=lambda tmp: load_preset_offline(tmp, "ml100k")),
        Case("ml1m_empty_data_dir_offline", "config", names="empty/ml-1m",
             run=lambda tmp: load_preset_offline(tmp, "ml1m")),
    ]  # fmt: skip


def _thread_cases() -> list[Case]:
    from recsys.perf.threads import resolve_threads

    return [
        Case(f"threads_{value}", "config", names="threads=",
             run=lambda tmp, v=value: resolve_threads(v))
        for value in (0, -2, "many", 1.5)  # as Hydra parses threads=0, threads=many, ...
    ]  # fmt: skip


def cases() -> list[Case]:
    return [*_plan_cases(), *_data_cases(), *_thread_cases()]
