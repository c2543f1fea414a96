"""What `scripts/campaign.py` and `scripts/campaign_readout.py` do, as functions tests can call.

A plan combines three runs: a churn or purchase model (`run_dir`: who is likely to buy or leave), an
optional value model (`value_run_dir`: what each customer is worth in the window) and an optional
retrieval run (`offers_run_dir`: what to offer). All are scored at the same date (`as_of`, default the
end of the log), so the plan's window is the model's label window after that date.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recsys.errors import ConfigError, DataError
from recsys.marketing.campaign import CampaignConfig, CampaignPlan, plan_campaign
from recsys.marketing.customer_scoring import score_customers
from recsys.marketing.readout import Readout, read_out

PLAN_KEYS = ("budget", "strategy", "holdout_fraction", "seed", "mde", "alpha", "power", "interval")


def campaign_scores(
    run_dir: str, value_run_dir: str | None, as_of: str | None
) -> tuple[pd.DataFrame, dict]:
    """(customer, p_purchase, p_churn[, expected_value]) at `as_of`, and what they came from.

    Where the log has no separate purchase event, activity is the purchase, so P(purchase in the
    window) = 1 - P(churn); a purchase model gives p_purchase directly and p_churn as its complement.
    """
    frame, meta = score_customers(run_dir, as_of)
    if meta["target"] == "value_next":
        raise ConfigError(
            f"run_dir={run_dir} is a value model; give a churn or purchase run (value_run_dir= takes this one)"
        )
    p = frame[meta["target"]].to_numpy()
    p_churn = p if meta["target"] == "churned" else 1.0 - p
    scores = pd.DataFrame(
        {"customer": frame["customer"].astype(str), "p_purchase": 1.0 - p_churn, "p_churn": p_churn}
    )
    source = {
        "run_dir": str(run_dir),
        "target": meta["target"],
        "as_of": meta["as_of"],
        "window_days": meta["window_days"],
    }
    if value_run_dir is not None:
        values, vmeta = score_customers(value_run_dir, meta["as_of"])
        if vmeta["target"] != "value_next":
            raise ConfigError(
                f"value_run_dir={value_run_dir} is a {vmeta['target']} model, not model=customer_value"
            )
        if vmeta["window_days"] != meta["window_days"]:
            raise ConfigError(
                f"value_run_dir's window ({vmeta['window_days']} days) differs from run_dir's "
                f"({meta['window_days']} days): train both with the same data.window_days"
            )
        expected = values.set_index(values["customer"].astype(str))["value_next"]
        scores["expected_value"] = scores["customer"].map(expected).fillna(0.0).to_numpy()
        source["value_run_dir"] = str(value_run_dir)
    return scores, source


def make_plan(cfg) -> CampaignPlan:
    """The plan of conf/campaign.yaml's keys, written to `out_dir`."""
    scores, source = campaign_scores(cfg.run_dir, cfg.get("value_run_dir"), cfg.get("as_of"))
    offers = None
    if cfg.get("offers_run_dir"):
        from recsys.marketing.offers import top_offers

        offers = top_offers(cfg.offers_run_dir, scores["customer"], int(cfg.offers_k))
        source["offers_run_dir"] = str(cfg.offers_run_dir)
    plan = plan_campaign(scores, CampaignConfig(**{k: cfg[k] for k in PLAN_KEYS}), offers)
    plan.summary["source"] = source
    plan.write(cfg.out_dir)
    return plan


def read_outcomes(path: str, columns: dict) -> pd.DataFrame:
    """An event log after the campaign (CSV or Parquet): customer, timestamp, and value if mapped.
    Timestamps are dates, or numbers read as unix seconds."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise DataError(f"{file}: outcomes file not found")
    raw = (
        pd.read_parquet(file)
        if file.suffix in (".parquet", ".pq")
        else pd.read_csv(file, dtype=str, keep_default_na=False)
    )
    wanted = {k: v for k, v in columns.items() if v is not None}
    missing = [f"{k} ({v!r})" for k, v in wanted.items() if v not in raw.columns]
    if missing:
        raise DataError(
            f"{file}: no column for {', '.join(missing)}; columns are {list(raw.columns)}"
        )
    out = pd.DataFrame({"customer": raw[wanted["customer"]].astype(str)})
    ts = raw[wanted["timestamp"]]
    numeric = pd.to_numeric(ts, errors="coerce")
    out["timestamp"] = (
        pd.to_datetime(numeric, unit="s")
        if numeric.notna().all()
        else pd.to_datetime(ts, errors="coerce")
    )
    if out["timestamp"].isna().any():
        row = int(np.flatnonzero(out["timestamp"].isna().to_numpy())[0]) + 1
        raise DataError(f"{file}: row {row}, column {wanted['timestamp']!r}: not a date")
    if "value" in wanted:
        out["value"] = pd.to_numeric(raw[wanted["value"]], errors="coerce")
        if out["value"].isna().any():
            row = int(np.flatnonzero(out["value"].isna().to_numpy())[0]) + 1
            raise DataError(f"{file}: row {row}, column {wanted['value']!r}: not a number")
    return out


def make_readout(cfg) -> Readout:
    """The lift of a written plan (`plan_dir`) from the outcomes log, written to `out_dir`."""
    import json

    folder = Path(cfg.plan_dir).expanduser()
    summary_file = folder / "summary.json"
    if not (folder / "plan.parquet").is_file() or not summary_file.is_file():
        raise DataError(
            f"{folder}: not a campaign plan (plan.parquet and summary.json, written by scripts/campaign.py)"
        )
    plan = pd.read_parquet(folder / "plan.parquet")
    summary = json.loads(summary_file.read_text())
    source = summary.get("source", {})
    start = cfg.get("window_start") or source.get("as_of")
    days = cfg.get("window_days") or source.get("window_days")
    if start is None or days is None:
        raise ConfigError("window_start and window_days: not in the plan's summary.json; give both")
    readout = read_out(
        plan, read_outcomes(cfg.outcomes, dict(cfg.columns)), start, float(days), cfg.level
    )
    readout.write(cfg.out_dir)
    return readout
