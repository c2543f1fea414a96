"""Marketing on trained runs: audiences (and, with issue 10, segments and model comparisons)."""
