"""Export trained scorers for serving (TorchScript and pt2), with a manifest and a parity check."""
