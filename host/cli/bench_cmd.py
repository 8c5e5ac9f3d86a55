"""``edgeprune bench``: measure a .tflite on a device, or list attached devices."""

from __future__ import annotations

import inspect
import math
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from edgeprune.bench.discovery import list_devices
from edgeprune.bench.energy import EnergyTableError
from edgeprune.bench.errors import MeasureError
from edgeprune.bench.firmware_build import BuildError, deploy_env_for, deploy_footprint
from edgeprune.bench.flash import FlashError
from edgeprune.bench.link import LinkError
from edgeprune.bench.manifest import load_manifest
from edgeprune.bench.model_bench import bench_model
from edgeprune.bench.power import PowerMeterError
from edgeprune.bench.qemu import MACHINES, TWIN_OF_BOARD
from edgeprune.bench.qemu_profile import profile
from edgeprune.bench.targets import DEFAULT_TARGET, FORMS, QEMU_CORES, TargetError, TargetSpec
from edgeprune.host.cli.friendly_errors import UserError, friendly_errors

QEMU_TARGETS = "qemu " + " ".join(f"qemu:{c}" for c in QEMU_CORES)

_ORDER = (
    ("count", "count (median)"),
    ("count_iqr", "count IQR"),
    ("count_min", "count min"),
    ("per_mac", "per MAC"),
    ("latency", "latency"),
    ("energy_model", "energy (MCU model)"),
    ("power_board", "power (on-board INA)"),
    ("energy_board_ina", "energy (INA x latency)"),
    ("energy_board_ppk2", "energy (PPK2)"),
    ("energy_host", "host energy (CodeCarbon)"),
)


def _value(fig: Any) -> str:
    if math.isnan(fig.value):
        return "absent"
    if fig.unit in ("instructions", "cycles"):
        return f"{fig.value:,.0f} {fig.unit}"
    return f"{fig.value:.4g} {fig.unit}"


def _print_devices(extra_ports: list[str]) -> None:
    devices = list_devices(extra_ports=extra_ports)
    console = Console()
    if not devices:
        console.print(f"no USB serial devices attached (emulated targets: {QEMU_TARGETS})")
        return
    table = Table(title="serial devices", caption=f"emulated targets: {QEMU_TARGETS}")
    for col in ("--device", "port", "VID:PID", "serial number", "description", "firmware", "build id", "core", "clock"):
        table.add_column(col)
    for d in devices:
        h = d.hello
        table.add_row(d.spec(), d.port, d.usb_id(), d.serial_number or "-", d.description,
                      d.kind if h is None else f"edgeprune ({h.board})",
                      "-" if h is None else h.build_id, "-" if h is None else h.core,
                      "-" if h is None else f"{h.clock_hz / 1e6:g} MHz ({h.counter})")
    console.print(table)


def _print_measurement(m: Any) -> None:
    t = m.target
    console = Console()
    title = (f"{m.model.get('path', 'model')} on {t['board'] or t['core']} ({t['core']}, build {t['build_id']})")
    table = Table(title=title, title_justify="left")
    for col in ("figure", "value", "source", "how"):
        table.add_column(col, overflow="fold")
    for key, label in _ORDER:
        fig = m.figures.get(key)
        if fig is not None:
            table.add_row(label, _value(fig), fig.source, fig.detail)
    if m.agreement is not None:
        a = m.agreement
        table.add_row("agreement with TFLM", f"{a.byte_equal_rate.value:.1%} of {a.n}", a.byte_equal_rate.source,
                      a.byte_equal_rate.detail + (f"; max |diff| {a.max_abs_diff:g}" if a.mismatches else ""))
        if a.metric is not None:
            table.add_row(a.metric.unit, f"{a.metric.value:.4g}", a.metric.source, a.metric.detail)
    console.print(table)
    s = m.stats
    console.print(f"{s.n} runs after {m.warmup} warm-up; {s.outliers} outlier(s) outside Tukey fences "
                  f"[{s.fences[0]:.0f}, {s.fences[1]:.0f}]; model {m.model['bytes']:,} bytes, "
                  f"sha256 {m.model['sha256'][:12]}. Sources are never added together.")
    # Counts move a little with input values (e.g. 389,120 vs 389,240 instructions for one GRU): say
    # why `search`, which times a real test window, can print a slightly different figure.
    console.print("Inputs: seeded random values; `search` times a real test window, so its count for the same "
                  "model can differ by a few hundred instructions.")


def _print_deploy(model: str, manifest_path: str | None, m: Any) -> None:
    """Flash and RAM of the deploy build (the model compiled in, as it ships), like ``search`` reports them."""
    t, console = m.target, Console()
    twin = TWIN_OF_BOARD.get(t["board"]) if t["counter"] == "icount" else None  # an emulated STM32 board's image
    env = MACHINES[twin].env if twin else deploy_env_for(t["counter"], t["core"], t["board"])
    if env is None:
        console.print(f"deploy build: no PlatformIO env known for board {t['board']!r}; flash/RAM not measured")
        return
    with open(model, "rb") as fh:
        manifest = load_manifest(model, manifest_path, fh.read())
    try:
        built = deploy_footprint(model, env, manifest)
    except BuildError as exc:
        console.print(f"deploy build {env}: {exc}", markup=False)
        return
    console.print(f"deploy build {env}: flash {built.flash_bytes / 1024:.1f} KiB (.text+.data), "
                  f"RAM {built.ram_bytes / 1024:.1f} KiB (.data+.bss, arena included, stack extra) [build]",
                  markup=False)


def _print_profile(model: str, manifest_path: str | None, core: str, top: int) -> None:
    console = Console()
    with console.status(f"profiling on QEMU {core} (a traced session)…"):
        prof = profile(model, core, manifest_path=manifest_path)
    table = Table(title=f"where one inference's instructions go, QEMU {core} [qemu: instructions]")
    table.add_column("function")
    table.add_column("instructions", justify="right")
    table.add_column("share", justify="right")
    for fn, n in list(prof.per_function.items())[:top]:
        table.add_row(fn, f"{n:,.0f}", f"{100 * n / prof.attributed:.1f} %")
    console.print(table)
    console.print(f"attributed {prof.attributed:,.0f} of the device's {prof.device_count:,} instructions per inference "
                  "(the difference: the count's own start/stop)", markup=False)


#: The library's defaults (``bench_model``), so the CLI and a library caller measure the same way.
_DEFAULT = {name: p.default for name, p in inspect.signature(bench_model).parameters.items()}


@click.command("bench")
@click.argument("model", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--device", "device_spec", default=None,
              help=f"Target: {FORMS}. Default {DEFAULT_TARGET}; with --list, also probe this target.")
@click.option("--repeats", default=_DEFAULT["repeats"], show_default=True, type=click.IntRange(1, 10_000), help="Measured runs.")
@click.option("--warmup", default=_DEFAULT["warmup"], show_default=True, type=click.IntRange(0, 1000), help="Discarded runs first.")
@click.option("--manifest", "manifest_path", type=click.Path(exists=True, dir_okay=False),
              help="Export manifest (default: manifest.json beside the model, else read from the .tflite).")
@click.option("--agreement", default=_DEFAULT["agreement"], show_default=True, type=click.IntRange(0, 1000),
              help="Inputs whose device outputs are compared with the TFLM oracle.")
@click.option("--energy-board", default=None, help="Energy-table row for the MCU model (default: the core's).")
@click.option("--host-energy", "host_energy_runs", default=_DEFAULT["host_energy_runs"], type=click.IntRange(0), show_default=True,
              help="Also measure host energy with CodeCarbon over N TFLite inferences.")
@click.option("--ppk2", "ppk2_port", default=None, help="Serial port of a Nordic PPK2 (GPIO-windowed energy).")
@click.option("--ppk2-channel", default=_DEFAULT["ppk2_channel"], show_default=True, type=click.IntRange(0, 7),
              help="PPK2 logic input wired to the firmware's inference GPIO.")
@click.option("--ppk2-mv", default=_DEFAULT["ppk2_mv"], show_default=True, type=click.IntRange(800, 5000), help="PPK2 supply, mV.")
@click.option("--timeout", "timeout_s", default=_DEFAULT["timeout_s"], show_default=True, help="Per-request reply timeout, s.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Also write the measurement as JSON.")
@click.option("--list", "list_only", is_flag=True, help="List attached devices (USB identity + firmware HELLO).")
@click.option("--no-deploy-build", is_flag=True, help="Skip the deploy build that gives flash/RAM (cached per model).")
@click.option("--profile", "profile_top", default=0, type=click.IntRange(0, 1000), show_default=True,
              help="QEMU only: also print the N functions that cost the most instructions per inference.")
@friendly_errors
def command(model: str | None, device_spec: str | None, repeats: int, warmup: int, manifest_path: str | None,
            agreement: int, energy_board: str | None, host_energy_runs: int, ppk2_port: str | None,
            ppk2_channel: int, ppk2_mv: int, timeout_s: float, json_out: str | None, list_only: bool,
            no_deploy_build: bool, profile_top: int) -> None:
    """Measure an int8 .tflite on a device; every number is printed with its source.

    Counts under QEMU are instructions (a lower bound on cycles) and latency is then an estimate
    at a reference board's clock; on a board they are DWT cycles at the reported clock.

    \b
    Example:
      edgeprune bench model.tflite --device qemu:m4 --repeats 20
      edgeprune bench model.tflite --device /dev/ttyACM0 --manifest manifest.json
      edgeprune bench model.tflite --device serial:066DFF515150898367034443
      edgeprune bench model.tflite --device qemu:m7 --profile 15
      edgeprune bench --list
    """
    if list_only:
        _print_devices([] if device_spec is None else [device_spec])
        return
    device_spec = device_spec or DEFAULT_TARGET
    if model is None:
        raise UserError("give a MODEL.tflite to measure, or --list to list devices")
    try:
        target = TargetSpec.parse(device_spec)
    except TargetError as exc:
        raise UserError(f"TargetError: {exc}") from exc
    if profile_top and target.kind != "qemu":
        raise UserError(f"--profile traces QEMU's execution; use a qemu:<core> device, not {device_spec!r}")
    try:
        result = bench_model(model, device_spec, manifest_path=manifest_path, repeats=repeats, warmup=warmup,
                             agreement=agreement, energy_board=energy_board, host_energy_runs=host_energy_runs,
                             ppk2_port=ppk2_port, ppk2_channel=ppk2_channel, ppk2_mv=ppk2_mv,
                             timeout_s=timeout_s, json_out=json_out)
    except (LinkError, MeasureError, PowerMeterError, EnergyTableError, TargetError, FlashError) as exc:
        raise UserError(f"{type(exc).__name__}: {exc}") from exc
    _print_measurement(result)
    if profile_top:
        _print_profile(model, manifest_path, target.core, profile_top)
    if not no_deploy_build:
        _print_deploy(model, manifest_path, result)
