"""The one error type every registry parser raises for a bad value."""

from __future__ import annotations


class RegistryValueError(ValueError):
    """A value (or file) the registry import refuses.

    ``message`` is Japanese and safe to show to the operator: it describes the rule that was
    broken and never repeats the full personal value.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
