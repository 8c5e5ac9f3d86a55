"""``edgeprune doctor``."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from edgeprune.bench.targets import FORMS
from edgeprune.host.doctor import run_doctor


@click.command("doctor")
@click.option("--path", "search_path", default=None, help="Look tools up on this PATH instead of $PATH.")
@click.option("--device", default=None, help=f"Also open this target and check its HELLO: {FORMS}.")
def command(search_path: str | None, device: str | None) -> None:
    """Report the toolchain, attached serial devices and the fallbacks a search would use.

    Exits 1 with the exact fix when something required is missing.

    \b
    Example:
      edgeprune doctor
      edgeprune doctor --device qemu:m4
    """
    report = run_doctor(search_path, device)
    console = Console()
    table = Table(title="edgeprune doctor", show_lines=False)
    for col in ("", "check", "found", "fix"):
        table.add_column(col)
    for c in report.checks:
        mark = "[green]ok[/]" if c.ok else ("[red]MISSING[/]" if c.required else "[yellow]optional[/]")
        table.add_row(mark, c.name, c.detail, "" if c.ok else c.fix)
    console.print(table)
    if report.ports:
        ports = Table(title="serial devices")
        for col in ("--device", "port", "VID:PID", "serial number", "description"):
            ports.add_column(col)
        for p in report.ports:
            ports.add_row(p.spec(), p.port, p.usb_id(), p.serial_number or "-", p.description)
        console.print(ports)
    else:
        console.print("serial devices: none attached")
    for k, v in report.fallbacks.items():
        console.print(f"[bold]{k}[/]: {v}")
    if not report.ok:
        for c in report.checks:
            if c.required and not c.ok:
                click.echo(f"error: {c.name}: {c.detail}. Fix: {c.fix}", err=True)
        raise SystemExit(1)
