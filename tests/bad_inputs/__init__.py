"""The bad-input corpus: generated cases of what a careful adversarial user hands recsys."""
