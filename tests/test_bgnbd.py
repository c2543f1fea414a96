"""BG/NBD + Gamma-Gamma closed forms against Monte Carlo from the same process, and the lifetimes fit.

The simulator here is deliberately not the synthetic world's: it draws every inter-purchase gap in
one (customers, max purchases) block, so a shared mistake in the two could not hide itself.
"""

import sys

import numpy as np
import pandas as pd
import pytest

from recsys.errors import DataError
from recsys.models import bgnbd
from recsys.models.bgnbd import (
    BGNBDAnchor,
    BGNBDParams,
    GammaGammaParams,
    expected_events,
    expected_spend,
    p_alive,
    p_no_event,
)

TRUE = BGNBDParams(r=1.5, alpha=20.0, a=2.0, b=10.0)
SPEND = GammaGammaParams(p=4.0, q=5.0, gamma=40.0)
OBSERVED, WINDOW = 120.0, 30.0


def simulate(params, n, seed, observed=OBSERVED, window=WINDOW, max_purchases=200):
    """Customers born uniformly in [0, observed): history at `observed`, count in the window after."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(params.r, 1 / params.alpha, n)
    dropout = rng.beta(params.a, params.b, n)
    last_repeat = rng.geometric(dropout)  # dies right after this repeat purchase
    birth = rng.uniform(0, observed, n)
    times = np.cumsum(rng.exponential(1 / lam[:, None], (n, max_purchases)), axis=1)
    assert np.all(times[:, -1] > observed + window), "max_purchases too small for these rates"
    happens = np.arange(1, max_purchases + 1)[None, :] <= last_repeat[:, None]
    T = observed - birth
    seen = happens & (times <= T[:, None])
    x = seen.sum(1)
    t_x = np.where(seen, times, 0.0).max(1)
    later = (happens & (times > T[:, None]) & (times <= (T + window)[:, None])).sum(1)
    return x.astype(float), t_x, T, later


def bins(x, t_x, T):
    """History bins (frequency x recency share): predictions must hold within any of them."""
    xb = np.digitize(x, [1, 3, 6, 11])
    return xb * 2 + (t_x > 0.5 * T)


def assert_calibrated(pred, real, groups, z=4.0, min_rows=400):
    for g in np.unique(groups):
        m = groups == g
        if m.sum() < min_rows:
            continue
        se = real[m].std(ddof=1) / np.sqrt(m.sum()) + 1e-3
        assert abs(pred[m].mean() - real[m].mean()) < z * se, (g, pred[m].mean(), real[m].mean())


def test_no_event_and_counts_match_simulation_within_history_bins():
    x, t_x, T, later = simulate(TRUE, 60_000, seed=1)
    groups = bins(x, t_x, T)
    silent = (later == 0).astype(float)
    pred_silent = p_no_event(TRUE, x, t_x, T, WINDOW)
    assert_calibrated(pred_silent, silent, groups)
    assert_calibrated(pred_silent, silent, np.zeros_like(groups))
    assert_calibrated(expected_events(TRUE, x, t_x, T, WINDOW), later.astype(float), groups)
    # The bins differ from each other, or the check above would be a check of the mean only.
    per_bin = pd.Series(pred_silent).groupby(groups).mean()
    assert per_bin.max() - per_bin.min() > 0.3


def test_wrong_parameters_are_caught_by_the_same_check():
    x, t_x, T, later = simulate(TRUE, 60_000, seed=2)
    wrong = BGNBDParams(r=1.5, alpha=20.0, a=2.0, b=4.0)  # twice the dropout
    with pytest.raises(AssertionError):
        assert_calibrated(p_no_event(wrong, x, t_x, T, WINDOW), (later == 0) * 1.0, bins(x, t_x, T))


def test_closed_forms_agree_with_lifetimes_and_survive_heavy_buyers():
    lifetimes = pytest.importorskip("lifetimes")
    fitter = lifetimes.BetaGeoFitter()
    fitter.params_ = pd.Series({"r": TRUE.r, "alpha": TRUE.alpha, "a": TRUE.a, "b": TRUE.b})
    x = np.array([0, 1, 3, 8, 20, 40.0])
    t_x = np.array([0, 5, 60, 90, 100, 110.0])
    T = np.array([10, 50, 100, 120, 110, 115.0])
    np.testing.assert_allclose(
        p_alive(TRUE, x, t_x, T), fitter.conditional_probability_alive(x, t_x, T), rtol=1e-9
    )
    theirs = fitter.conditional_expected_number_of_purchases_up_to_time(WINDOW, x, t_x, T)
    np.testing.assert_allclose(expected_events(TRUE, x, t_x, T, WINDOW), theirs, rtol=1e-8)
    # Eq. 10 as printed overflows here; the transformed form stays finite and below the
    # alive-customer's Poisson mean (r+x)/(alpha+T) * window.
    heavy = expected_events(TRUE, 5000.0, 364.0, 365.0, 90.0)
    assert np.isfinite(heavy) and 0 < heavy < (TRUE.r + 5000) / (TRUE.alpha + 365) * 90


def test_expected_spend_is_the_posterior_mean_and_matches_lifetimes():
    rng = np.random.default_rng(3)
    n_cust = 80_000
    nu = rng.gamma(SPEND.q, 1 / SPEND.gamma, n_cust)
    n = rng.integers(1, 6, n_cust).astype(float)
    seen = rng.gamma(SPEND.p * n, 1 / nu)  # sum of n Gamma(p, nu) values
    next_value = rng.gamma(SPEND.p, 1 / nu)
    pred = expected_spend(SPEND, n, seen)
    np.testing.assert_allclose(pred, SPEND.p * (SPEND.gamma + seen) / (SPEND.p * n + SPEND.q - 1))
    assert_calibrated(pred, next_value, n.astype(int))
    lifetimes = pytest.importorskip("lifetimes")
    gg = lifetimes.GammaGammaFitter()
    gg.params_ = pd.Series({"p": SPEND.p, "q": SPEND.q, "v": SPEND.gamma})
    theirs = gg.conditional_expected_average_profit(n[:50], seen[:50] / n[:50])
    np.testing.assert_allclose(pred[:50], theirs, rtol=1e-10)


def test_lifetimes_recovers_the_parameters_of_a_simulated_base():
    pytest.importorskip("lifetimes")
    x, t_x, T, _ = simulate(TRUE, 8000, seed=4)
    fit = bgnbd.fit_bgnbd(x, t_x, T)
    assert fit.r / fit.alpha == pytest.approx(TRUE.r / TRUE.alpha, rel=0.1)
    assert fit.a / (fit.a + fit.b) == pytest.approx(TRUE.a / (TRUE.a + TRUE.b), rel=0.25)
    rng = np.random.default_rng(5)
    nu = rng.gamma(SPEND.q, 1 / SPEND.gamma, 8000)
    n = rng.integers(2, 8, 8000).astype(float)
    mean = rng.gamma(SPEND.p * n, 1 / nu) / n
    gg = bgnbd.fit_gamma_gamma(n, mean)
    assert gg.p * gg.gamma / (gg.q - 1) == pytest.approx(
        SPEND.p * SPEND.gamma / (SPEND.q - 1), rel=0.1
    )
    assert gg.p == pytest.approx(SPEND.p, rel=0.15)


def test_a_base_of_identical_customers_gives_a_clear_error():
    pytest.importorskip("lifetimes")
    same = np.full(300, 3.0), np.full(300, 50.0), np.full(300, 50.0)
    with pytest.raises(DataError, match="BG/NBD: the fit on 300 customers did not converge"):
        bgnbd.fit_bgnbd(*same, retry_penalizer=None)
    with pytest.raises(DataError, match="Gamma-Gamma.*pass a larger penalizer"):
        bgnbd.fit_gamma_gamma(np.full(300, 3.0), np.full(300, 10.0), retry_penalizer=None)
    with pytest.raises(DataError, match="frequency: no customer has a repeat event"):
        bgnbd.fit_bgnbd(np.zeros(50), np.zeros(50), np.full(50, 30.0))


def test_the_retry_with_a_penalizer_is_announced():
    pytest.importorskip("lifetimes")
    same = np.full(300, 3.0), np.full(300, 50.0), np.full(300, 50.0)
    with pytest.warns(RuntimeWarning, match="penalizer=0.0; refit with penalizer=0.001"):
        fit = bgnbd.fit_bgnbd(*same)
    assert np.isfinite([fit.r, fit.alpha, fit.a, fit.b]).all()


def test_impossible_histories_name_the_field():
    with pytest.raises(DataError, match="recency_days"):
        p_alive(TRUE, [2], [40.0], [30.0])
    with pytest.raises(DataError, match="frequency"):
        p_no_event(TRUE, [-1], [0.0], [30.0], 30)


def test_missing_lifetimes_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "lifetimes", None)
    with pytest.raises(ImportError, match=r'pip install -e "\.\[marketing\]"'):
        bgnbd.fit_bgnbd([1, 0], [5.0, 0.0], [10.0, 10.0])


def test_anchor_fits_a_table_and_is_close_to_the_truth():
    pytest.importorskip("lifetimes")
    x, t_x, T, later = simulate(TRUE, 20_000, seed=7)
    table = pd.DataFrame({"frequency": x, "recency_days": t_x, "tenure_days": T})
    anchor = BGNBDAnchor(window_days=WINDOW).fit(table.iloc[:10_000])
    out = anchor.predict(table.iloc[10_000:])
    assert out["expected_value"] is None  # no value column, no value head
    truth = p_no_event(TRUE, x[10_000:], t_x[10_000:], T[10_000:], WINDOW)
    assert np.abs(out["p_no_event"] - truth).mean() < 0.02
    rng = np.random.default_rng(8)
    nu = rng.gamma(SPEND.q, 1 / SPEND.gamma, len(x))
    table["n_events"] = x + 1
    table["value_sum"] = rng.gamma(SPEND.p * (x + 1), 1 / nu)
    valued = BGNBDAnchor(window_days=WINDOW).fit(table.iloc[:10_000]).predict(table.iloc[10_000:])
    oracle = bgnbd.expected_value(
        TRUE, SPEND, x, t_x, T, WINDOW, table["n_events"], table["value_sum"]
    )[10_000:]
    assert valued["expected_value"].mean() == pytest.approx(oracle.mean(), rel=0.1)
