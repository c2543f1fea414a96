"""Propensity head, calibration, classification metrics and down-sampling: units on small tensors.

Reading label columns (0/1, `data.label_map`) is tested through the data path in
test_data_bad_labels.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn import metrics as skm
from sklearn.isotonic import IsotonicRegression

from recsys.data.ingest.labels import downsample_negatives
from recsys.data.interactions import Interactions
from recsys.metrics.classification import (
    average_precision,
    binary_auc,
    brier_score,
    expected_calibration_error,
    lift_table,
    log_loss,
)
from recsys.models.calibration import fit_calibration, fit_isotonic, fit_platt, fit_temperature
from recsys.models.components.mf import MatrixFactorization
from recsys.models.components.propensity import WithPropensityHead, piecewise_linear


def make_head(hidden=(8,), seed=0) -> WithPropensityHead:
    torch.manual_seed(seed)
    return WithPropensityHead(MatrixFactorization(20, 15, dim=4), hidden=hidden)


def test_head_keeps_the_scorer_contract_of_its_base():
    head = make_head()
    users, items = torch.tensor([0, 3, 7]), torch.tensor([1, 2, 14])
    assert (head.num_users, head.num_items) == (20, 15)
    assert torch.equal(head.score(users, items), head.base.score(users, items))
    assert torch.equal(head.score_all_items(users), head.base.score_all_items(users))
    p = head.propensity(users, items)
    assert p.shape == (3,) and ((p > 0) & (p < 1)).all()


def test_scripted_head_and_export_module_match_eager():
    head = make_head()
    head.set_keep_rate(0.25)
    head.set_calibration(
        a=0.7, b=-0.2, iso_x=torch.tensor([0.0, 0.3, 1.0]), iso_y=torch.tensor([0.05, 0.2, 0.9])
    )
    head.eval()
    users, items = torch.arange(20), torch.arange(20) % 15
    scripted = torch.jit.script(head)
    exported = torch.jit.script(head.propensity_module())
    expected = head.propensity(users, items)
    assert torch.allclose(scripted.propensity(users, items), expected, atol=1e-6)
    assert torch.allclose(exported(users, items), expected, atol=1e-6)
    assert torch.allclose(scripted.score_all_items(users), head.score_all_items(users))
    all_users = scripted.propensity_all_users(4)
    assert torch.allclose(all_users, head.propensity(torch.arange(20), torch.full((20,), 4)))


def test_downsampling_correction_is_the_published_formula():
    head = make_head()
    w = 0.1
    head.set_keep_rate(w)
    logit = torch.linspace(-4, 4, 41)
    p = torch.sigmoid(logit)
    corrected = head.calibrate_logit(logit, calibrated=False)
    assert torch.allclose(corrected, p / (p + (1 - p) / w), atol=1e-6)


def test_correction_recovers_the_base_rate_when_negatives_are_downsampled_10x():
    """A model fitted on 10x down-sampled negatives predicts the original base rate within 1%."""
    g = torch.Generator().manual_seed(0)
    n = 400_000
    true_logit = -1.2 + 1.3 * torch.randn(n, generator=g)
    labels = torch.bernoulli(torch.sigmoid(true_logit), generator=g)
    log = Interactions(torch.zeros(n), torch.zeros(n), labels=labels)
    kept, dropped = downsample_negatives(log, keep_rate=0.1, seed=0)
    assert dropped == pytest.approx(0.9 * int((labels == 0).sum()), rel=0.01)
    # The model: logistic regression on the true logit, fitted on the down-sampled rows only.
    kept_logit = true_logit[_kept_index(log, kept)]
    a, b = fit_platt(kept_logit, kept.labels)
    head = make_head()
    head.set_keep_rate(0.1)
    raw = torch.sigmoid(a * true_logit + b)
    corrected = head.calibrate_logit(a * true_logit + b, calibrated=False)
    base_rate = float(labels.mean())
    assert float(raw.mean()) > 2 * base_rate  # uncorrected: badly inflated
    assert float(corrected.mean()) == pytest.approx(base_rate, rel=0.01)


def _kept_index(log: Interactions, kept: Interactions) -> torch.Tensor:
    """Recompute which rows `downsample_negatives` kept (same seed) to align features."""
    g = torch.Generator().manual_seed(0 + 7919)
    keep = (log.labels > 0) | (torch.rand(len(log), generator=g) < 0.1)
    assert int(keep.sum()) == len(kept)
    return keep


def test_isotonic_knots_survive_a_state_dict_round_trip():
    head = make_head()
    head.set_calibration(iso_x=torch.linspace(0, 1, 37), iso_y=torch.linspace(0, 1, 37) ** 2)
    fresh = make_head(seed=1)
    fresh.load_state_dict(head.state_dict())
    users, items = torch.arange(5), torch.arange(5)
    assert fresh.iso_x.numel() == 37
    assert torch.allclose(fresh.propensity(users, items), head.propensity(users, items))


def test_piecewise_linear_matches_sklearn_isotonic_prediction():
    g = torch.Generator().manual_seed(1)
    p = torch.rand(3000, generator=g)
    y = torch.bernoulli(p**2, generator=g)
    x_knots, y_knots = fit_isotonic(p, y)
    reference = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(p.numpy(), y.numpy())
    query = torch.rand(500, generator=g) * 1.2 - 0.1  # includes values outside the knots
    got = piecewise_linear(query.clamp(0, 1), x_knots, y_knots)
    assert np.allclose(got.numpy(), reference.predict(query.clamp(0, 1).numpy()), atol=1e-5)


def test_platt_and_temperature_recover_known_parameters():
    g = torch.Generator().manual_seed(2)
    z = 2 * torch.randn(200_000, generator=g)
    y = torch.bernoulli(torch.sigmoid(0.5 * z - 0.3), generator=g)
    a, b = fit_platt(z, y)
    assert a == pytest.approx(0.5, abs=0.02) and b == pytest.approx(-0.3, abs=0.02)
    y_sym = torch.bernoulli(torch.sigmoid(z / 2.0), generator=g)
    assert fit_temperature(z, y_sym) == pytest.approx(2.0, rel=0.03)
    assert fit_calibration("none", z, y) == {}
    with pytest.raises(ValueError, match="calibration method"):
        fit_calibration("beta", z, y)


def test_classification_metrics_match_scikit_learn():
    g = torch.Generator().manual_seed(3)
    p = (torch.rand(4000, generator=g) * 20).round() / 20  # many ties
    y = torch.bernoulli(p, generator=g)
    assert float(binary_auc(p, y)) == pytest.approx(skm.roc_auc_score(y, p), abs=1e-6)
    assert float(average_precision(p, y)) == pytest.approx(
        skm.average_precision_score(y, p), abs=1e-6
    )
    q = p.clamp(0.01, 0.99)
    assert float(log_loss(q, y)) == pytest.approx(skm.log_loss(y, q), abs=1e-5)
    assert float(brier_score(p, y)) == pytest.approx(skm.brier_score_loss(y, p), abs=1e-6)


def test_ece_separates_calibrated_from_shifted_predictions():
    g = torch.Generator().manual_seed(4)
    p = torch.rand(60_000, generator=g)
    y = torch.bernoulli(p, generator=g)
    assert float(expected_calibration_error(p, y, 15)) < 0.01
    shifted = (p + 0.1).clamp(max=1)
    assert float(expected_calibration_error(shifted, y, 15)) > 0.08


def test_lift_table_orders_deciles_and_accounts_for_every_conversion():
    g = torch.Generator().manual_seed(5)
    p = torch.rand(10_000, generator=g)
    y = torch.bernoulli(p, generator=g)
    table = lift_table(p, y)
    assert table["count"].sum() == 10_000
    assert float(table["conversions"].sum()) == float(y.sum())
    assert float(table["cumulative_gain"][-1]) == pytest.approx(1.0)
    assert table["lift"][0] > 1.8 and table["lift"][-1] < 0.2


def test_downsampling_keeps_every_positive_and_reports_drops():
    labels = torch.tensor([1.0, 0, 0, 0, 1, 0] * 1000)
    log = Interactions(torch.arange(6000), torch.arange(6000), labels=labels)
    kept, dropped = downsample_negatives(log, 0.5, seed=3)
    assert int(kept.labels.sum()) == 2000
    assert dropped == 6000 - len(kept)
    assert dropped == pytest.approx(2000, rel=0.1)
    same, none_dropped = downsample_negatives(log, 1.0, seed=3)
    assert none_dropped == 0 and len(same) == 6000
