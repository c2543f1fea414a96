"""Score every current customer with a trained customer model: what a campaign is planned from.

The run directory is data: its config passes `recsys.config.trusted` before the log source is
rebuilt, the network is built from recsys's own class with the saved sizes (no `_target_` is
called), and the weights are read with `weights_only` (recsys/run_loading.py).
"""

from __future__ import annotations

import hydra
import pandas as pd
import torch
import torch.nn.functional as F

from recsys.data.customers.datamodule import CustomerDataModule
from recsys.data.customers.features import FeatureEncoder
from recsys.errors import DataError, RunError
from recsys.models.calibration import apply_calibration
from recsys.models.components.customer_net import CustomerNet
from recsys.run_dir import RunDir
from recsys.run_loading import read_torch_file

MODEL_FILE, WEIGHTS_FILE = "customer_model.json", "customer_model.pt"


def customer_model(run: RunDir) -> tuple[dict, CustomerNet]:
    """The saved description and the trained network of a customer-model run."""
    state = run.read_json(MODEL_FILE)
    if not state:
        raise RunError(
            f"{run.root}: not a customer-model run (no {MODEL_FILE}); train one with "
            "python scripts/train.py experiment=synthetic_customers (or model=customer_churn ...)"
        )
    encoder = FeatureEncoder(**state["encoder"])
    kwargs = {k: v for k, v in state["net"].items() if not k.startswith("_")}
    net = CustomerNet(len(encoder.columns), list(encoder.cardinalities.values()), **kwargs)
    weights = read_torch_file(run.path(WEIGHTS_FILE), "customer model weights")
    net.load_state_dict(weights)
    return state, net.eval()


def score_customers(run_dir: str, as_of: str | None = None) -> tuple[pd.DataFrame, dict]:
    """One row per customer at `as_of` (default: the end of the log): the model's prediction
    (a calibrated probability, or an expected value) under the name of its target, and the
    features it was computed from. Returns (frame, the model's description)."""
    run = RunDir(run_dir)
    cfg = run.config()
    state, net = customer_model(run)
    datamodule: CustomerDataModule = hydra.utils.instantiate(cfg.data)
    datamodule.read_log()
    end = datamodule.log.end
    when = end if as_of is None else pd.Timestamp(as_of)
    if not datamodule.log.start < when <= end:
        raise DataError(
            f"{datamodule.log.name}: as_of={as_of} is outside the data "
            f"({datamodule.log.start} to {end})"
        )
    table = datamodule.table_at(when, labels=False)
    encoder = FeatureEncoder(**state["encoder"])
    with torch.no_grad():
        out = net(*encoder.encode(table)).double()
    if state["target"] == "value_next":
        prediction = F.softplus(out) * state["value_scale"]
    else:
        prediction = apply_calibration(state["calibration"], out).double()
    frame = table.reset_index()
    frame.insert(1, state["target"], prediction.numpy())
    return frame, {**state, "as_of": str(when), "log_end": str(end)}
