"""Numbers that carry where they came from.

Every figure edgeprune reports is a :class:`Figure`: a value, its unit, its *source* and a short
detail saying how it was obtained. The four sources are never mixed silently:

* ``board`` — measured on real silicon (DWT cycle counter, INA219/INA226 samples, a PPK2 trace);
* ``qemu``  — counted by the emulator under ``-icount`` (instructions: a lower bound on cycles);
* ``model`` — computed from a cited table (energy = count × energy per cycle);
* ``host``  — measured on the host computer (CodeCarbon, wall clock).

Arithmetic between figures goes through :func:`add` / :func:`scale`, which refuse to combine
different sources or units (``SourceMismatch``) instead of producing a number nobody can trace.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

Source = Literal["board", "qemu", "model", "host"]
SOURCES: tuple[str, ...] = ("board", "qemu", "model", "host")


class SourceMismatch(ValueError):
    """Two figures of different sources or units were about to be combined."""


@dataclass(frozen=True)
class Figure:
    """One reported number with its provenance.

    :param value: the number (``math.nan`` when the quantity could not be measured)
    :param unit: SI-style unit string, e.g. ``"instructions"``, ``"cycles"``, ``"ms"``, ``"uJ"``
    :param source: one of ``board``, ``qemu``, ``model``, ``host``
    :param detail: one line on how the number was obtained and what it bounds
        (e.g. ``"estimate at 120 MHz from instruction count (lower bound)"``)
    :param extra: optional machine-readable context (clock, table row, sample count, ...)
    """

    value: float
    unit: str
    source: Source
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"figure source must be one of {SOURCES}, got {self.source!r}")

    @property
    def known(self) -> bool:
        """False when the value is NaN (quantity absent or not measurable here)."""
        return not math.isnan(self.value)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON; an absent (NaN) value becomes ``None`` so the JSON stays standard."""
        out = asdict(self)
        if not self.known:
            out["value"] = None
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Figure:
        return cls(
            value=math.nan if data["value"] is None else float(data["value"]),
            unit=str(data["unit"]),
            source=data["source"],
            detail=str(data.get("detail", "")),
            extra=dict(data.get("extra", {})),
        )

    def format(self, precision: int = 4) -> str:
        """``"1.23e+06 instructions [qemu]"``-style text with the source always visible."""
        if not self.known:
            return f"absent [{self.source}]"
        return f"{self.value:.{precision}g} {self.unit} [{self.source}]"


def _check_same(a: Figure, b: Figure) -> None:
    if a.source != b.source:
        raise SourceMismatch(f"cannot combine a {a.source} figure with a {b.source} figure; report them side by side")
    if a.unit != b.unit:
        raise SourceMismatch(f"cannot combine {a.unit!r} with {b.unit!r}; convert one first")


def add(a: Figure, b: Figure, detail: str | None = None) -> Figure:
    """Sum of two figures of the same source and unit; raises :class:`SourceMismatch` otherwise."""
    _check_same(a, b)
    return Figure(a.value + b.value, a.unit, a.source, detail if detail is not None else a.detail)


def scale(fig: Figure, factor: float, unit: str | None = None, detail: str | None = None) -> Figure:
    """``fig × factor`` keeping the source (a unit change must be stated by the caller)."""
    return replace(
        fig,
        value=fig.value * factor,
        unit=unit if unit is not None else fig.unit,
        detail=detail if detail is not None else fig.detail,
    )


def absent(unit: str, source: Source, why: str) -> Figure:
    """A figure that could not be obtained (e.g. no on-board power meter); value is NaN."""
    return Figure(math.nan, unit, source, f"absent: {why}")
