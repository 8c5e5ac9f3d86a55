"""The MCU energy model: energy = cycles × energy per cycle, from a cited table.

``bench/energy_table.json`` holds one row per board: a run-mode current per MHz at a stated supply
voltage, the document it comes from and whether it could be checked. Since 1 µA/MHz × 1 V is exactly
1 pJ per cycle, the energy of ``n`` cycles is ``n × current_ua_per_mhz × voltage_v`` pJ.

Under QEMU the count is instructions, not cycles; every Cortex-M instruction takes at least one
cycle, so the modelled energy is then a *lower bound* and its detail says so. All figures returned
here have source ``model`` — they are never added to measured (``board``) or ``host`` energy.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from edgeprune.bench.figures import Figure, absent

log = logging.getLogger(__name__)

AD01_MACS = 264_192
"""Multiply-accumulates per inference of the MLPerf Tiny anomaly-detection model (AD01)."""


class EnergyTableError(ValueError):
    """The energy table is missing, malformed, or has no row for the requested core/board."""


@dataclass(frozen=True)
class EnergyRow:
    """One cited row of the energy table.

    :param id: short key, e.g. ``"stm32l4r5"``
    :param board: PlatformIO-style board name the row describes
    :param mcu: part number
    :param core: ``m0`` | ``m3`` | ``m4`` | ``m7`` | ``m33``
    :param clock_hz: the clock the row's current figure (and latency estimates) refer to
    :param current_ua_per_mhz: run-mode supply current per MHz
    :param voltage_v: supply voltage the current is taken at
    :param basis: ``"datasheet"`` or ``"benchmark-derived"``
    :param source: citation (document and conditions)
    :param checked_here: whether the figure was re-read against the primary document
    :param cross_check: optional published benchmark to compare against
        (``cycles_per_mac``, ``published_uj``, ``benchmark``)
    """

    id: str
    board: str
    mcu: str
    core: str
    clock_hz: int
    current_ua_per_mhz: float
    voltage_v: float
    basis: str
    source: str
    checked_here: bool
    cross_check: dict[str, Any] | None

    @property
    def pj_per_cycle(self) -> float:
        return self.current_ua_per_mhz * self.voltage_v


@dataclass(frozen=True)
class EnergyTable:
    """The parsed table.

    :param rows: rows by id
    :param default_board_for_core: row id used when only the core is known (e.g. under QEMU)
    """

    rows: dict[str, EnergyRow]
    default_board_for_core: dict[str, str]

    def row(self, *, board: str | None = None, core: str | None = None) -> EnergyRow:
        """The row for ``board`` (row id or board name), else the default row for ``core``."""
        if board is not None:
            for row in self.rows.values():
                if board in (row.id, row.board):
                    return row
            raise EnergyTableError(f"no energy-table row for board {board!r}; add one to bench/energy_table.json")
        if core is not None:
            key = core.lower().removeprefix("cortex-")
            row_id = self.default_board_for_core.get(key)
            if row_id is None:
                raise EnergyTableError(f"no cited energy figure for core {core!r}; pass --energy-board or add a row")
            return self.rows[row_id]
        raise EnergyTableError("give a board or a core to look up the energy table")


def _default_path() -> Path:
    return Path(str(resources.files("edgeprune.bench").joinpath("energy_table.json")))


def load_table(path: str | Path | None = None) -> EnergyTable:
    """Read and validate ``energy_table.json`` (the packaged one unless ``path`` is given)."""
    p = Path(path) if path is not None else _default_path()
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
        rows = {}
        for raw in data["rows"]:
            row = EnergyRow(
                id=str(raw["id"]),
                board=str(raw["board"]),
                mcu=str(raw["mcu"]),
                core=str(raw["core"]),
                clock_hz=int(raw["clock_hz"]),
                current_ua_per_mhz=float(raw["current_ua_per_mhz"]),
                voltage_v=float(raw["voltage_v"]),
                basis=str(raw["basis"]),
                source=str(raw["source"]),
                checked_here=bool(raw["checked_here"]),
                cross_check=raw.get("cross_check"),
            )
            if row.current_ua_per_mhz <= 0 or row.voltage_v <= 0 or row.clock_hz <= 0:
                raise EnergyTableError(f"row {row.id}: current, voltage and clock must be positive")
            if not row.source.strip():
                raise EnergyTableError(f"row {row.id}: every row needs a cited source")
            rows[row.id] = row
        defaults = {str(k): str(v) for k, v in data.get("default_board_for_core", {}).items()}
    except (OSError, KeyError, TypeError, json.JSONDecodeError) as exc:
        raise EnergyTableError(f"cannot read energy table {p}: {exc}") from exc
    for core, row_id in defaults.items():
        if row_id not in rows:
            raise EnergyTableError(f"default row {row_id!r} for core {core} is not in the table")
    return EnergyTable(rows=rows, default_board_for_core=defaults)


def model_energy(count: float, counter: str, row: EnergyRow) -> Figure:
    """Energy of one inference from its count: ``count × pJ/cycle``, in µJ, source ``model``.

    ``counter`` is the device's counter kind: ``"dwt"`` (cycles) or ``"icount"`` (QEMU
    instructions, so the result is a lower bound on the energy at ``row``'s board).
    """
    if count < 0:
        raise ValueError(f"count must be non-negative, got {count}")
    uj = count * row.pj_per_cycle * 1e-6
    what = "cycles" if counter == "dwt" else "instructions (lower bound on cycles)"
    bound = "" if counter == "dwt" else "; lower bound"
    detail = (
        f"{count:.0f} {what} x {row.current_ua_per_mhz:g} uA/MHz x {row.voltage_v:g} V "
        f"({row.mcu}, {row.basis}){bound}"
    )
    return Figure(uj, "uJ", "model", detail, extra={"row": row.id, "pj_per_cycle": row.pj_per_cycle})


def model_energy_for(count: float, counter: str, *, core: str | None, board: str | None = None,
                     table: EnergyTable | None = None) -> Figure:
    """:func:`model_energy` with the row looked up; an ``absent`` figure when no row is cited."""
    tab = table if table is not None else load_table()
    try:
        row = tab.row(board=board, core=core)
    except EnergyTableError as exc:
        log.info("energy model unavailable: %s", exc)
        return absent("uJ", "model", str(exc))
    return model_energy(count, counter, row)


def cross_check(row: EnergyRow, macs: int = AD01_MACS) -> dict[str, float] | None:
    """Modelled vs published energy for the row's benchmark (``None`` when it has none).

    Returns ``{"cycles", "modelled_uj", "published_uj", "ratio"}`` where ratio = modelled/published.
    """
    cc = row.cross_check
    if not cc:
        return None
    cycles = float(cc["cycles_per_mac"]) * macs
    modelled = cycles * row.pj_per_cycle * 1e-6
    published = float(cc["published_uj"])
    return {"cycles": cycles, "modelled_uj": modelled, "published_uj": published, "ratio": modelled / published}
