"""Turns library errors into one actionable line and a non-zero exit."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


class UserError(Exception):
    """An error whose message already tells the user what to do; the CLI prints it as is."""


def friendly_errors(fn: F) -> F:
    """Print ``EdgepruneError``-like failures as ``error: <message>`` and exit 1 (2 for usage)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except click.ClickException:
            raise
        except (UserError, ValueError, FileNotFoundError, RuntimeError, OSError) as exc:
            raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc

    return wrapper  # type: ignore[return-value]
