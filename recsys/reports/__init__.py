"""Reports computed after training on what fit/test already hold: popularity baseline, cold-start
ranking, propensity calibration."""
