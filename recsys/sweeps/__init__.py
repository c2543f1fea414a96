"""Sweeps and multi-GPU runs: the per-job wrapper (`trial`) and the multirun summary (`summary`)."""
