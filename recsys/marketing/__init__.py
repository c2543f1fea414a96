"""Marketing on trained runs: segments, offline comparison, A/B planning, audiences."""
