"""scripts/campaign.py and scripts/campaign_readout.py end to end on the synthetic customer world,
whose future is known: the plan's expected conversions are checked against what really happens."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from recsys.data.customers.sources import SyntheticCustomers
from recsys.train import train
from tests.conftest import ROOT, compose_config
from tests.test_customer_models import QUICK

pytestmark = pytest.mark.slow  # trains three runs and starts six processes

WORLD = {"num_customers": 3000, "days": 300, "future_days": 90, "seed": 42}  # QUICK's world


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / script), *args],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip


@pytest.fixture(scope="module")
def planned(tmp_path_factory):
    root = tmp_path_factory.mktemp("campaign")
    train(compose_config(QUICK, root / "run"))
    done = _run("campaign.py", f"run_dir={root / 'run'}", "budget=1500", f"out_dir={root / 'plan'}")
    assert done.returncode == 0, done.stderr
    return root


def test_expected_conversions_cover_what_the_world_does(planned):
    plan = pd.read_parquet(planned / "plan" / "plan.parquet")
    summary = json.loads((planned / "plan" / "summary.json").read_text())
    start = pd.Timestamp(summary["source"]["as_of"])
    future = SyntheticCustomers(**WORLD)().truth.future
    window = future[
        (future["timestamp"] > start) & (future["timestamp"] <= start + pd.Timedelta(days=30))
    ]
    contacted = plan[plan["group"] == "contact"]
    real = int(contacted["customer"].isin(set(window["customer"].astype(str))).sum())
    expected = summary["expected_conversions"]["contact"]
    assert expected["low"] <= real <= expected["high"], (real, expected)
    assert summary["targeted"] == 1500 and summary["contacted"] + summary["holdout"] == 1500


def test_the_holdout_is_reproducible_from_the_seed_and_balanced(planned):
    again = _run(
        "campaign.py", f"run_dir={planned / 'run'}", "budget=1500", f"out_dir={planned / 'again'}"
    )
    other = _run(
        "campaign.py",
        f"run_dir={planned / 'run'}",
        "budget=1500",
        "seed=7",
        f"out_dir={planned / 'other'}",
    )
    assert again.returncode == 0 and other.returncode == 0, again.stderr + other.stderr
    first, second, third = (
        pd.read_parquet(planned / d / "plan.parquet") for d in ("plan", "again", "other")
    )
    pd.testing.assert_frame_equal(first, second)
    assert not first["group"].equals(third["group"])
    share = first.groupby("segment")["group"].apply(lambda g: (g == "holdout").mean())
    sizes = first.groupby("segment").size()
    assert ((share - 0.1).abs() <= 1 / sizes).all()


def test_readout_measures_the_lift_against_the_holdout(planned, tmp_path):
    outcomes = tmp_path / "after.csv"
    SyntheticCustomers(**WORLD)().truth.future.to_csv(outcomes, index=False)
    done = _run("campaign_readout.py", f"plan_dir={planned / 'plan'}", f"outcomes={outcomes}",
                "columns.value=value", f"out_dir={tmp_path / 'readout'}")  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "readout" / "summary.json").read_text())
    assert summary["lift_low"] <= summary["lift"] <= summary["lift_high"]
    assert summary["customers_contact"] + summary["customers_holdout"] == 1500
    assert summary["events"]["unknown_customer"] > 0  # untargeted customers' events, counted


def test_a_value_run_given_as_the_churn_run_is_one_clear_line(planned, tmp_path):
    train(compose_config([*QUICK, "model=customer_value"], tmp_path / "value"))
    done = _run(
        "campaign.py", f"run_dir={tmp_path / 'value'}", "budget=100", f"out_dir={tmp_path / 'p'}"
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: run_dir={tmp_path / 'value'} is a value model; give a churn or purchase run "
        "(value_run_dir= takes this one)"
    ]
    retain = _run("campaign.py", f"run_dir={planned / 'run'}", f"value_run_dir={tmp_path / 'value'}",
                  "budget=300", "strategy=retain", f"out_dir={tmp_path / 'retain'}")  # fmt: skip
    assert retain.returncode == 0, retain.stderr
    plan = pd.read_parquet(tmp_path / "retain" / "plan.parquet")
    assert (plan["score"] - plan["p_churn"] * plan["expected_value"]).abs().max() < 1e-9
