"""BG/NBD + Gamma-Gamma: the classical customer-base anchor, as closed forms of its parameters.

BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way"): while alive a customer buys
at rate lambda ~ Gamma(r, alpha) and, after each repeat purchase, drops out for good with probability
p ~ Beta(a, b). Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV"; Colombo & Jiang 1999): each
transaction's value is Gamma(p, nu) with nu ~ Gamma(q, gamma), independent of the purchase process.

The closed forms take the history (x = repeat purchases, t_x = last - first purchase, T = cut-off -
first purchase, in days) as arrays and return arrays; parameters may be scalars or arrays that
broadcast against the history (the synthetic world's oracle passes one parameter set per group).
Fitting goes through the `lifetimes` package, an optional dependency (`pip install -e ".[marketing]"`).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.special import expit, hyp2f1

from recsys.errors import ConfigError, DataError

_INSTALL_HINT = 'the BG/NBD fit needs `lifetimes`: pip install -e ".[marketing]"'


def _check_positive(obj) -> None:
    for f in fields(obj):
        value = np.asarray(getattr(obj, f.name), dtype=float)
        if not np.all(np.isfinite(value) & (value > 0)):
            raise ConfigError(f"{type(obj).__name__}.{f.name} must be finite and > 0")


@dataclass(frozen=True)
class BGNBDParams:
    """lambda ~ Gamma(shape r, rate alpha) per day; dropout p ~ Beta(a, b)."""

    r: ArrayLike
    alpha: ArrayLike
    a: ArrayLike
    b: ArrayLike

    def __post_init__(self):
        _check_positive(self)


@dataclass(frozen=True)
class GammaGammaParams:
    """Transaction value ~ Gamma(shape p, rate nu); nu ~ Gamma(shape q, rate gamma)."""

    p: ArrayLike
    q: ArrayLike
    gamma: ArrayLike

    def __post_init__(self):
        _check_positive(self)


def _history(x, t_x, T) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Float arrays of one shape; a history no customer can have raises DataError naming the field."""
    x, t_x, T = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (x, t_x, T)))
    for name, v in (("frequency", x), ("recency_days", t_x), ("tenure_days", T)):
        if not np.all(np.isfinite(v) & (v >= 0)):
            raise DataError(f"{name}: values must be finite and >= 0")
    if np.any(t_x > T + 1e-9):
        raise DataError("recency_days: larger than tenure_days (last event after the cut-off)")
    return x, t_x, T


def table_columns(table: pd.DataFrame, names) -> list[np.ndarray]:
    """Float arrays of a customer table's columns; a missing one raises DataError naming it."""
    missing = [c for c in names if c not in table.columns]
    if missing:
        raise DataError(f"customer table: missing column(s) {', '.join(missing)}")
    return [table[c].to_numpy(dtype=float) for c in names]


def _log_odds_dead(params: BGNBDParams, x, t_x, T) -> np.ndarray:
    """log P(dropped out after the last purchase) - log P(alive), both given the history (x > 0)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    # b + x - 1 >= b > 0 where x > 0; x = 0 rows are masked by the caller (no dropout chance yet).
    return (
        np.log(a)
        - np.log(np.maximum(b + x - 1, 1e-300))
        + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    )


def p_alive(params: BGNBDParams, x, t_x, T) -> np.ndarray:
    """P(still alive at T | x, t_x, T) (Fader, Hardie & Lee 2005, eq. 11), as a logistic of log-odds
    so ((alpha+T)/(alpha+t_x))**(r+x) never overflows for heavy buyers."""
    x, t_x, T = _history(x, t_x, T)
    return np.where(x > 0, expit(-_log_odds_dead(params, x, t_x, T)), 1.0)


def p_no_event(params: BGNBDParams, x, t_x, T, window) -> np.ndarray:
    """P(zero transactions in (T, T+window] | x, t_x, T): dead, or alive and silent for the window.

    Given alive, lambda | history ~ Gamma(r+x, alpha+T), so P(silent | alive) = E[exp(-lambda window)]
    = ((alpha+T)/(alpha+T+window))**(r+x); a death can only follow a purchase, so it adds nothing.
    """
    x, t_x, T = _history(x, t_x, T)
    silent = np.exp((params.r + x) * (np.log(params.alpha + T) - np.log(params.alpha + T + window)))
    return 1.0 - p_alive(params, x, t_x, T) * (1.0 - silent)


def expected_events(params: BGNBDParams, x, t_x, T, window) -> np.ndarray:
    """E[transactions in (T, T+window] | x, t_x, T] (Fader, Hardie & Lee 2005, eq. 10).

    Eq. 10's ((alpha+T)/(alpha+T+t))**(r+x) * 2F1(r+x, b+x; a+b+x-1; z), z = t/(alpha+T+t), overflows
    (and loses scipy's accuracy) for heavy buyers; two Pfaff transformations give the same number as
    ((alpha+T+t)/(alpha+T))**(1-a) * 2F1(a+b-1-r, a-1; a+b+x-1; z), whose first two parameters do not
    grow with x. Needs a != 1 (eq. 10's (a-1) denominator); fitted a is never exactly 1.
    """
    x, t_x, T = _history(x, t_x, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    z = window / (alpha + T + window)
    scale = np.exp((1.0 - a) * (np.log(alpha + T + window) - np.log(alpha + T)))
    given_alive = (
        (a + b + x - 1) / (a - 1) * (1.0 - scale * hyp2f1(a + b - 1 - r, a - 1, a + b + x - 1, z))
    )
    return given_alive * p_alive(params, x, t_x, T)


def expected_spend(gg: GammaGammaParams, n_transactions, value_sum) -> np.ndarray:
    """E[mean transaction value | the n transactions seen] = p (gamma + value_sum) / (p n + q - 1).

    The posterior is nu | values ~ Gamma(q + p n, gamma + value_sum), and the mean value is p / nu.
    Here n and value_sum cover ALL of a customer's transactions, the first included (the customer
    table's `n_events` and `value_sum`): under Gamma-Gamma every transaction is a draw from the same
    Gamma(p, nu), so each one is evidence. Needs p n + q > 1 (q > 1 for the population mean to exist).
    """
    n = np.asarray(n_transactions, dtype=float)
    s = np.asarray(value_sum, dtype=float)
    if not np.all(np.isfinite(n) & (n >= 0)):
        raise DataError("n_events: values must be finite and >= 0")
    if not np.all(np.isfinite(s)):
        raise DataError("value_sum: values must be finite")
    return gg.p * (gg.gamma + s) / (gg.p * n + gg.q - 1.0)


def expected_value(params: BGNBDParams, gg: GammaGammaParams, x, t_x, T, window, n, value_sum):
    """E[value spent in (T, T+window]]: the count and the spend posteriors are independent, because
    the two processes are independent a priori and the likelihood factorises over them."""
    return expected_events(params, x, t_x, T, window) * expected_spend(gg, n, value_sum)


def _lifetimes():
    try:
        # lifetimes sets a pandas option on import that pandas 3 deprecates; the warning is theirs.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import lifetimes
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc
    return lifetimes


def _fit_quietly(make_fitter, args, penalizer: float, retry_penalizer: float | None, what: str):
    """Fit, retrying once with `retry_penalizer` (a warning says so) if lifetimes does not converge.

    lifetimes prints the optimizer's state on failure and sets a process-wide FutureWarning filter
    while fitting; both are contained here, and the optimizer's message goes into the error. Its
    RuntimeWarnings (overflow while the optimizer probes, NaN standard errors that recsys does not
    use) are silenced: convergence and finite parameters are checked here instead.
    """
    if penalizer < 0:
        raise ConfigError(f"penalizer: must be >= 0, got {penalizer}")
    tries = [penalizer]
    if retry_penalizer is not None and retry_penalizer > penalizer:
        tries.append(retry_penalizer)
    from lifetimes.utils import ConvergenceError

    reason = ""
    for coef in tries:
        printed = io.StringIO()
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(printed):
                warnings.simplefilter("ignore", RuntimeWarning)
                fitter = make_fitter(penalizer_coef=coef).fit(*args)
            params = fitter.params_
            if np.all(np.isfinite(params.to_numpy())):
                if coef != penalizer:
                    warnings.warn(
                        f"{what} fit did not converge with penalizer={penalizer}; "
                        f"refit with penalizer={coef} (estimates shrink toward 0)",
                        RuntimeWarning,
                        stacklevel=3,
                    )
                return params
            reason = "non-finite parameters"
        except (ConvergenceError, np.linalg.LinAlgError) as exc:
            lines = [ln.strip() for ln in printed.getvalue().splitlines() if "message" in ln]
            reason = lines[0] if lines else type(exc).__name__
    raise DataError(
        f"{what}: the fit on {len(args[0])} customers did not converge with penalizer "
        f"{' or '.join(map(str, tries))} ({reason}); the history may not follow the model "
        f"(e.g. every customer alike): pass a larger penalizer"
    )


def fit_bgnbd(
    x, t_x, T, penalizer: float = 0.0, retry_penalizer: float | None = 1e-3
) -> BGNBDParams:
    """Maximum-likelihood BG/NBD parameters (per day) with `lifetimes.BetaGeoFitter`.

    If lifetimes raises ConvergenceError (or its Hessian is singular), it is refit once with
    `retry_penalizer` (an L2 penalty on the parameters, with a RuntimeWarning); `retry_penalizer=None`
    turns that off. A fit that still fails raises DataError.
    """
    x, t_x, T = _history(x, t_x, T)
    if x.size == 0:
        raise DataError("frequency: no customers to fit BG/NBD on")
    if not np.any(x > 0):
        raise DataError(
            "frequency: no customer has a repeat event; BG/NBD's rates are not identified"
        )
    if np.any(x != np.round(x)):
        raise DataError("frequency: repeat-event counts must be whole numbers")
    if np.any((x == 0) & (t_x > 0)):
        raise DataError("recency_days: must be 0 where frequency is 0 (no repeat event)")
    lt = _lifetimes()
    fitter = lt.BetaGeoFitter
    p = _fit_quietly(fitter, (x, t_x, T), penalizer, retry_penalizer, "BG/NBD")
    return BGNBDParams(r=float(p["r"]), alpha=float(p["alpha"]), a=float(p["a"]), b=float(p["b"]))


def fit_gamma_gamma(
    n, value_mean, penalizer: float = 0.0, retry_penalizer: float | None = 1e-3
) -> GammaGammaParams:
    """Maximum-likelihood Gamma-Gamma parameters with `lifetimes.GammaGammaFitter`.

    lifetimes' convention: fit on repeat customers only, passing their frequency as the count of
    values averaged; customers with n < 2 are dropped here to follow it. `n` is the number of
    transactions whose mean is `value_mean` (the likelihood is exact for any such pair, so with
    the customer table, n = n_events and value_mean = value_sum / n_events: all transactions, as
    `expected_spend` uses). Choosing customers by n is harmless: spend is independent of the
    purchase process. Non-convergence is handled as in `fit_bgnbd`; values are rescaled by their
    median for the fit, so `penalizer` acts on the parameters in that unit.
    """
    n = np.asarray(n, dtype=float)
    m = np.asarray(value_mean, dtype=float)
    keep = n >= 2
    if not np.any(keep):
        raise DataError("n_events: no customer has 2 or more valued events to fit Gamma-Gamma on")
    if not np.all(np.isfinite(m[keep]) & (m[keep] > 0)):
        raise DataError("value_mean: Gamma-Gamma needs a finite, positive mean value per customer")
    lt = _lifetimes()
    # lifetimes starts every log-parameter at 0.1 and often stalls when values are in the tens or
    # more; the model is scale-equivariant (values * c -> gamma * c), so it fits values / c.
    unit = float(np.median(m[keep]))
    args = (n[keep], m[keep] / unit)
    p = _fit_quietly(lt.GammaGammaFitter, args, penalizer, retry_penalizer, "Gamma-Gamma")
    return GammaGammaParams(p=float(p["p"]), q=float(p["q"]), gamma=float(p["v"]) * unit)


class BGNBDAnchor:
    """The model a marketing analyst would fit: BG/NBD for churn, Gamma-Gamma for value.

    Reads the customer table's `frequency`, `recency_days`, `tenure_days` and, where the log has a
    value column, `n_events` and `value_sum`. Churn is P(no event in the next `window_days`).
    """

    def __init__(self, window_days: float, penalizer: float = 0.0):
        if not window_days > 0:
            raise ConfigError(f"window_days: must be > 0, got {window_days}")
        self.window_days = float(window_days)
        self.penalizer = penalizer
        self.params: BGNBDParams | None = None
        self.spend: GammaGammaParams | None = None

    def fit(self, table_train: pd.DataFrame) -> BGNBDAnchor:
        x, t_x, T = table_columns(table_train, ("frequency", "recency_days", "tenure_days"))
        self.params = fit_bgnbd(x, t_x, T, self.penalizer)
        self.spend = None
        if "value_sum" in table_train.columns:
            n, s = table_columns(table_train, ("n_events", "value_sum"))
            mean = np.divide(s, n, out=np.zeros_like(s), where=n > 0)
            self.spend = fit_gamma_gamma(n, mean, self.penalizer)
        return self

    def predict(self, table: pd.DataFrame) -> dict[str, np.ndarray | None]:
        if self.params is None:
            raise RuntimeError("BGNBDAnchor.predict called before fit")
        x, t_x, T = table_columns(table, ("frequency", "recency_days", "tenure_days"))
        out = {"p_no_event": p_no_event(self.params, x, t_x, T, self.window_days)}
        out["expected_value"] = None
        if self.spend is not None and "value_sum" in table.columns:
            n, s = table_columns(table, ("n_events", "value_sum"))
            out["expected_value"] = expected_value(
                self.params, self.spend, x, t_x, T, self.window_days, n, s
            )
        return out
