"""Typed errors raised by the compressor; each message says what to change."""

from __future__ import annotations


class CompressError(Exception):
    """Base class of every error raised by ``edgeprune.host.compress``."""


class ConfigError(CompressError, ValueError):
    """A ``CompressionConfig`` is malformed or does not fit the model it is applied to."""


class DataError(CompressError, ValueError):
    """Training arrays needed for importance scores or fine-tuning are missing or malformed."""
