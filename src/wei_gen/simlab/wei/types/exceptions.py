"""Exceptions of the simulated ``wei`` package (mirrors ``wei.types.exceptions`` 0.7.4)."""

from __future__ import annotations


class WorkflowFailedException(Exception):
    """Raised by ``start_run`` when a workflow run fails."""

    def __init__(self, message: str):
        """Keep the message."""
        super().__init__(message)
        self.message = message


class WorkflowCanceledException(Exception):
    """Raised when a workflow run is cancelled."""

    def __init__(self, message: str):
        """Keep the message."""
        super().__init__(message)
        self.message = message
