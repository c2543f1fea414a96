"""The errors recsys raises for what a user handed it. Each message names the file, row, field or run
at fault, so the entry points print it as one line (`recsys.cli`) instead of a traceback.
"""


class DataError(Exception):
    """Bad input data: the message names the file, row or field."""


class RunError(Exception):
    """A run directory lacks what was asked of it; the message names the run and what to re-run."""


class ExportError(Exception):
    """An export cannot be produced or did not pass verification; the message says why."""
