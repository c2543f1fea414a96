"""Customer-level data: an event log with time, turned into one row per customer at a cut-off date."""
