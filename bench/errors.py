"""The measurement path's error, in a module of its own so statistics, input encoding, agreement and
orchestration can all raise it without importing one another."""

from __future__ import annotations


class MeasureError(RuntimeError):
    """A measurement could not be made (bad inputs, manifest/device mismatch); the message says why."""
