"""Sample size for an online A/B test, checked against published worked examples."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from recsys.errors import ConfigError
from recsys.marketing.ab_plan import (
    plan,
    plan_from_config,
    power_two_proportions,
    sample_size_per_arm,
)
from tests.conftest import CONF, ROOT


def test_matches_the_worked_examples_of_r_power_prop_test():
    """R Core Team, `?stats::power.prop.test`, Examples (same formula, Fleiss et al. 2003):
    power.prop.test(p1 = .50, p2 = .75, power = .90)  ## =>     n = 76.7
    power.prop.test(n = 50, p1 = .50, p2 = .75)       ## => power = 0.740
    """
    assert sample_size_per_arm(0.50, 0.75, alpha=0.05, power=0.90) == pytest.approx(76.7, abs=0.05)
    assert power_two_proportions(50, 0.50, 0.75, alpha=0.05) == pytest.approx(0.740, abs=0.0005)
    assert plan(0.50, 0.25, power=0.90).per_arm == 77  # rounded up to whole users


def test_sample_size_and_power_are_inverse():
    n = sample_size_per_arm(0.05, 0.07, alpha=0.05, power=0.8)
    assert power_two_proportions(n, 0.05, 0.07) == pytest.approx(0.8, abs=1e-9)


def test_relative_effect_and_duration():
    absolute = plan(0.05, 0.005)
    relative = plan(0.05, 0.1, relative=True, daily_users=10_000)
    assert relative.target_rate == pytest.approx(0.055)
    assert relative.per_arm == absolute.per_arm
    assert relative.days == -(-relative.total // 10_000)
    assert plan(0.05, 0.01).per_arm > plan(0.05, 0.02).per_arm  # smaller effects cost more users


def test_script_prints_the_plan_and_rejects_impossible_rates():
    cmd = [sys.executable, str(ROOT / "scripts" / "ab_plan.py")]
    ok = subprocess.run([*cmd, "baseline_rate=0.05", "mde=0.02"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert f"needs {plan(0.05, 0.02).per_arm:,} users" in ok.stdout
    bad = subprocess.run([*cmd, "baseline_rate=0.05", "mde=0.99"], capture_output=True, text=True)
    assert bad.returncode == 2
    assert "target rate must be a rate strictly between 0 and 1" in bad.stderr


def ab_config(*overrides: str):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("ab_plan", overrides=list(overrides))


@pytest.mark.parametrize(
    ("overrides", "said"),
    [
        ((), "baseline_rate and mde must be given"),
        (("baseline_rate=0.05",), "mde must be given"),
        (("baseline_rate=0.05", "mde=0"), "mde=0 must be > 0"),
        (("baseline_rate=0.05", "mde=-0.01"), "mde=-0.01 must be > 0"),
        (("baseline_rate=1.5", "mde=0.01"), "baseline_rate=1.5 must lie strictly between 0 and 1"),
        (("baseline_rate=0.05", "mde=0.01", "alpha=1"), "alpha=1 must lie strictly between"),
        (("baseline_rate=0.05", "mde=five"), "mde='five' is not a number"),
        (("baseline_rate=0.05", "mde=0.01", "arms=1"), "arms=1 must be a whole number >= 2"),
    ],
)
def test_config_errors_name_the_key(overrides, said):
    with pytest.raises(ConfigError, match=re.escape(said)):
        plan_from_config(ab_config(*overrides))


def test_script_without_mde_says_so_in_one_line():
    cmd = [sys.executable, str(ROOT / "scripts" / "ab_plan.py"), "baseline_rate=0.05"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 2
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: mde: required"), lines
