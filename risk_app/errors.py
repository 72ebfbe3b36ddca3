"""User-facing error types.

Every error an analyst can cause (a bad file, an unknown method, a bad config) is a
`RiskAppError` whose message names the file, row and field. The CLI and Dagster show that
message alone, never a traceback.
"""

from __future__ import annotations


class RiskAppError(Exception):
    """Base class for errors whose message is meant for the user."""


class DataFileError(RiskAppError):
    """A data file that cannot be used at all (format, emptiness, missing columns)."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ConfigError(RiskAppError):
    """A configuration that is unknown, badly typed or out of range."""


class ModelNotFoundError(RiskAppError):
    """A model reference (alias, version, path) that resolves to nothing."""


class NothingToRollBackError(ModelNotFoundError):
    """A rollback asked of a model with no champion, or whose champion replaced none: nothing moves."""
