"""The MCU energy model against hand calculations, and the table's integrity."""

from __future__ import annotations

import json
import math

import pytest

from edgeprune.bench.energy import (
    EnergyTableError,
    cross_check,
    load_table,
    model_energy,
    model_energy_for,
)
from edgeprune.bench.figures import Figure, SourceMismatch, add


def test_every_row_is_cited_and_positive() -> None:
    table = load_table()
    assert {"stm32l4r5", "nrf52840", "stm32g0b1", "stm32h7a3"} <= set(table.rows)
    for row in table.rows.values():
        assert row.source.strip() and row.basis in ("datasheet", "benchmark-derived")
        assert row.current_ua_per_mhz > 0 and row.voltage_v > 0


def test_model_energy_hand_calculation_cycles() -> None:
    row = load_table().row(board="nucleo_l4r5zi")
    # 1,000,000 cycles x 110 uA/MHz x 3.3 V = 1e6 x 363 pJ = 363 uJ
    fig = model_energy(1_000_000, "dwt", row)
    assert fig == Figure(pytest.approx(363.0), "uJ", "model", fig.detail)
    assert fig.source == "model" and "lower bound" not in fig.detail


def test_model_energy_from_qemu_instructions_is_a_lower_bound() -> None:
    row = load_table().row(core="m4")
    assert row.id == "stm32l4r5"
    fig = model_energy(250_000, "icount", row)
    assert fig.value == pytest.approx(250_000 * 110 * 3.3 * 1e-6)
    assert "lower bound" in fig.detail and "instructions" in fig.detail


def test_nrf52840_row_hand_calculation() -> None:
    row = load_table().row(board="nrf52840")
    # 64e6 cycles (one second at 64 MHz) x 52 uA/MHz x 3.0 V = 3.328 mA x 3 V x 1 s = 9984 uJ
    assert model_energy(64e6, "dwt", row).value == pytest.approx(3.328e-3 * 3.0 * 1e6)


def test_cross_check_against_mlperf_reference_submission() -> None:
    row = load_table().row(board="stm32l4r5")
    cc = cross_check(row)
    assert cc is not None
    # 4.57 cycles/MAC x 264,192 MACs = 1,207,357 cycles; x 363 pJ = 438.3 uJ vs 416 uJ published
    assert cc["cycles"] == pytest.approx(4.57 * 264_192)
    assert cc["modelled_uj"] == pytest.approx(4.57 * 264_192 * 363e-6)
    assert 0.8 < cc["ratio"] < 1.25


def test_unknown_core_gives_an_absent_model_figure() -> None:
    fig = model_energy_for(1000, "icount", core="m3")
    assert fig.source == "model" and math.isnan(fig.value) and not fig.known
    with pytest.raises(EnergyTableError):
        load_table().row(board="no-such-board")


def test_bad_table_is_refused(tmp_path) -> None:
    bad = {"rows": [{"id": "x", "board": "x", "mcu": "x", "core": "m4", "clock_hz": 1, "current_ua_per_mhz": 1,
                     "voltage_v": 1, "basis": "datasheet", "source": "  ", "checked_here": False}]}
    p = tmp_path / "t.json"
    p.write_text(json.dumps(bad))
    with pytest.raises(EnergyTableError, match="cited source"):
        load_table(p)


def test_figures_of_different_sources_do_not_add() -> None:
    a = Figure(1.0, "uJ", "model")
    b = Figure(2.0, "uJ", "board")
    with pytest.raises(SourceMismatch):
        add(a, b)
    with pytest.raises(SourceMismatch):
        add(a, Figure(1.0, "mJ", "model"))
    assert add(a, Figure(2.0, "uJ", "model")).value == 3.0
    with pytest.raises(ValueError):
        Figure(1.0, "uJ", "guess")  # type: ignore[arg-type]
