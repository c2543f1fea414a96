"""Where data come from: built-in synthetic data, public data sets, and users' interaction logs."""
