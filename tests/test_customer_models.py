"""Customer models end to end through `recsys.train.train`: the run directory, the backtest, the
yardsticks in the same run, and scoring that reproduces the run's own test predictions."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from recsys.marketing.customer_scoring import score_customers
from recsys.train import train
from tests.conftest import compose_config, require_data

QUICK = [
    "experiment=synthetic_customers",
    "data.source.num_customers=3000",
    "data.source.days=300",
    "trainer.max_epochs=8",
    "~logger",
]


@pytest.fixture(scope="module")
def churn_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("churn") / "run"
    metrics, _ = train(compose_config(QUICK, out))
    return out, metrics


def test_churn_run_writes_what_a_marketer_reads(churn_run):
    out, metrics = churn_run
    for name in ("metrics.json", "data_report.json", "backtest.csv", "customer_lift.png",
                 "customer_reliability.png", "customer_deciles.csv", "test_predictions.csv",
                 "customer_model.json", "customer_model.pt", ".hydra/resolved.yaml"):  # fmt: skip
        assert (out / name).is_file(), name
    for key in ("test/auc", "test/log_loss", "test/ece", "oracle/test/auc", "oracle/test/log_loss",
                "oracle/test/ece", "logreg/test/auc", "logreg/test/log_loss", "bgnbd/test/auc"):  # fmt: skip
        assert 0 <= metrics[key] < 1.5, key
    assert json.loads((out / "metrics.json").read_text())["test/auc"] == metrics["test/auc"]
    backtest = pd.read_csv(out / "backtest.csv")
    assert len(backtest) == 3 and backtest["test_cutoff"].is_monotonic_decreasing
    assert {f"backtest/{d}/test/auc" for d in backtest["test_cutoff"]} <= set(metrics)
    deciles = pd.read_csv(out / "customer_deciles.csv")
    assert len(deciles) == 10 and deciles["cumulative_gain"].iloc[-1] == pytest.approx(1.0)
    assert deciles["conversion_rate"].iloc[0] > deciles["conversion_rate"].iloc[-1]  # lift is real


def test_the_model_ranks_near_the_truth_and_above_chance(churn_run):
    _, metrics = churn_run
    assert metrics["test/auc"] > metrics["oracle/test/auc"] - 0.03
    assert metrics["test/auc"] > 0.8


def test_scoring_the_run_reproduces_its_test_predictions(churn_run):
    out, _ = churn_run
    state = json.loads((out / "customer_model.json").read_text())
    frame, meta = score_customers(str(out), as_of=state["test_cutoff"])
    saved = pd.read_csv(out / "test_predictions.csv", dtype={"customer": str}).set_index("customer")
    scored = frame.set_index("customer")["churned"]
    assert meta["target"] == "churned" and len(scored) == len(saved)
    pd.testing.assert_series_equal(
        scored.loc[saved.index], saved["prediction"], check_names=False, atol=1e-5, rtol=0
    )


def test_a_value_model_reports_value_metrics(tmp_path):
    metrics, _ = train(compose_config([*QUICK, "model=customer_value"], tmp_path / "value"))
    for key in (
        "test/mae",
        "test/rmse",
        "test/top_decile_share",
        "oracle/test/mae",
        "ridge/test/mae",
    ):
        assert metrics[key] >= 0, key
    assert metrics["test/top_decile_share"] > 0.2  # the top 10% hold more than their share
    assert (tmp_path / "value" / "customer_value_deciles.csv").is_file()


@pytest.mark.slow
def test_synthetic_recipe_matches_the_truth(tmp_path):
    """experiment=synthetic_customers as shipped: churn AUC within 0.02 of the true probabilities'
    AUC, ECE <= 0.02; the value model's MAE within 10% of the oracle's."""
    churn, _ = train(compose_config(["experiment=synthetic_customers"], tmp_path / "churn"))
    assert churn["test/auc"] >= churn["oracle/test/auc"] - 0.02
    assert churn["test/ece"] <= 0.02
    value, _ = train(
        compose_config(["experiment=synthetic_customers", "model=customer_value"], tmp_path / "v")
    )
    assert value["test/mae"] <= 1.10 * value["oracle/test/mae"]


@pytest.mark.slow
def test_ml100k_churn_is_at_least_the_logistic_regression_of_the_same_run(tmp_path):
    require_data("ml-100k", "u.data", "u.user")
    metrics, _ = train(compose_config(["experiment=ml100k_churn"], tmp_path / "run"))
    assert metrics["test/auc"] >= metrics["logreg/test/auc"]
    assert metrics["test/log_loss"] <= metrics["logreg/test/log_loss"]
    assert (tmp_path / "run" / "customer_lift.png").stat().st_size > 1000


@pytest.mark.slow
def test_a_retrieval_runs_user_vectors_become_features(tmp_path):
    require_data("ml-100k", "u.data", "u.user")
    train(
        compose_config(["experiment=ml100k_mf", "trainer.max_epochs=1", "~logger"], tmp_path / "mf")
    )
    out = tmp_path / "churn"
    overrides = [
        "experiment=ml100k_churn",
        f"data.user_embedding.run_dir={tmp_path / 'mf'}",
        "~logger",
    ]
    train(compose_config(overrides, out))
    report = json.loads((out / "data_report.json").read_text())["user_embedding"]
    encoder = json.loads((out / "customer_model.json").read_text())["encoder"]
    assert report["users"] == 943 and len(encoder["raw"]) == report["dim"]
    assert "has_embedding" in encoder["numeric"]
    frame, _ = score_customers(str(out))
    assert frame["has_embedding"].eq(1.0).all() and f"emb_{report['dim'] - 1}" in frame
