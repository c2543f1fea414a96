"""The classical and the true answers a customer model is set beside, on the same test customers.

- BG/NBD + Gamma-Gamma (recsys/models/bgnbd.py): fitted, without labels, on the RFM summary of the
  test cut-off's history, as an analyst would run it; it predicts P(no event in the window) and the
  window's expected value. Where the fit does not converge (bursty logs break its assumptions) the
  anchor is left out and the log says why.
- The oracle: on a synthetic world, the exact posterior probabilities and expected values under
  the process that generated it (`EventLog.truth`).
"""

from __future__ import annotations

import logging

import pandas as pd
import torch
from torch import Tensor

from recsys.data.customers.cutoffs import Fold
from recsys.data.customers.log import EventLog

log = logging.getLogger(__name__)


def _from_no_event(p_no_event, target: str) -> Tensor:
    p = torch.as_tensor(p_no_event, dtype=torch.float32)
    return p if target == "churned" else 1.0 - p


def anchor_predictions(enabled: bool, dm, fold: Fold, target: str) -> dict[str, Tensor]:
    """{"bgnbd": predictions} for the fold's test customers, or {} (disabled, no value column for
    a value target, or a fit that failed)."""
    if not enabled or (target == "value_next" and not dm.log.has_value):
        return {}
    from recsys.models.bgnbd import BGNBDAnchor

    table = dm.splits["test"].table
    try:
        anchor = BGNBDAnchor(window_days=dm.window_days).fit(table)
        found = anchor.predict(table)
    except ImportError as err:
        log.warning("BG/NBD anchor skipped: %s", err)
        return {}
    except Exception as err:  # noqa: BLE001 - a non-converging fit is a finding, not a failed run
        log.warning(
            "BG/NBD anchor skipped: the fit failed on this data (%s)", " ".join(str(err).split())
        )
        return {}
    if target == "value_next":
        return {"bgnbd": torch.as_tensor(found["expected_value"], dtype=torch.float32)}
    return {"bgnbd": _from_no_event(found["p_no_event"], target)}


def oracle_predictions(
    event_log: EventLog, table: pd.DataFrame, window_days: float, target: str
) -> dict[str, Tensor]:
    """{"oracle": the true probabilities / expected values} where the world is synthetic, else {}."""
    truth = event_log.truth
    if truth is None:
        return {}
    if target == "value_next":
        return {
            "oracle": torch.as_tensor(truth.oracle_value(table, window_days), dtype=torch.float32)
        }
    return {"oracle": _from_no_event(truth.oracle_no_event(table, window_days), target)}
