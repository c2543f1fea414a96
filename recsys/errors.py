"""The errors recsys raises for what a user handed it. Each message names the file, row, field, key
or run at fault, so the entry points print it as one line (`recsys.cli`) instead of a traceback.
"""


class RecsysError(Exception):
    """Base of every error caused by the user's input rather than by recsys itself."""


class DataError(RecsysError):
    """Bad input data: the message names the file, row or field."""


class RunError(RecsysError):
    """A run directory lacks what was asked of it; the message names the run and what to re-run."""


class ExportError(RecsysError):
    """An export cannot be produced or did not pass verification; the message says why."""


class ConfigError(RecsysError):
    """A config key has a wrong type, an out-of-range value, or names something recsys won't build."""


class TrainingError(RecsysError):
    """Training cannot go on (a non-finite loss or weights); the message names the epoch and step."""
