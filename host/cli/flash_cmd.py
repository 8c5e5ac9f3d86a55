"""``edgeprune flash``: upload firmware to a board and verify the build id it then reports."""

from __future__ import annotations

import inspect

import click

from edgeprune.bench.firmware_build import pio_envs
from edgeprune.bench.flash import FlashError, flash
from edgeprune.bench.targets import FORMS, TargetSpec
from edgeprune.host.cli.friendly_errors import UserError, friendly_errors

#: The library's defaults (``bench.flash.flash``).
_DEFAULT = {name: p.default for name, p in inspect.signature(flash).parameters.items()}


@click.command("flash")
@click.option("--env", "env", default=None,
              help="PlatformIO env from platformio.ini (e.g. nucleo_l4r5zi), or qemu:<core> to launch the ELF.")
@click.option("--port", "--device", "port", default=None,
              help=f"The board: {FORMS} (required unless the target is QEMU).")
@click.option("--model-dir", type=click.Path(exists=True, file_okay=False),
              help="Export directory: deploy build with its model_data.c compiled in.")
@click.option("--expect-build-id", default=None, help="Build id the board must report (default: that of the build).")
@click.option("--timeout", "timeout_s", default=_DEFAULT["timeout_s"], show_default=True, help="Limit for one upload, s.")
@click.option("--retries", default=_DEFAULT["retries"], show_default=True, type=click.IntRange(0, 10), help="Extra upload attempts.")
@friendly_errors
def command(env: str | None, port: str | None, model_dir: str | None, expect_build_id: str | None, timeout_s: float,
            retries: int) -> None:
    """Flash firmware with `pio run -t upload`, then check the board's HELLO reports the new build.

    An upload that leaves the old firmware running is reported as an error, not as success.

    \b
    Example:
      edgeprune flash --env nucleo_l4r5zi --port /dev/ttyACM0
      edgeprune flash --env nucleo_l4r5zi --port /dev/ttyACM0 --model-dir runs/best/export
      edgeprune flash --env nucleo_l4r5zi --device serial:066DFF515150898367034443
      edgeprune flash --device qemu:m4
    """
    if env is not None and not (env == "qemu" or env.startswith("qemu:")):
        known = pio_envs()
        if env not in known:
            raise UserError(f"--env {env}: no such PlatformIO env in platformio.ini; pick one of "
                            f"{', '.join(e for e in known if not e.startswith('qemu'))} (or --device qemu:<core>)")
    if env is None:
        spec = TargetSpec.parse(port) if port is not None else None
        if spec is None or not spec.is_qemu:
            raise UserError("--env is required for a board (e.g. --env nucleo_l4r5zi); see platformio.ini")
        env = str(spec)
    if port is None and not (env == "qemu" or env.startswith("qemu:")):
        raise UserError("--port is required for a board (e.g. --port /dev/ttyACM0); list ports with "
                        "`edgeprune bench --list`")
    try:
        res = flash(env, port or "", timeout_s=timeout_s, retries=retries, expect_build_id=expect_build_id,
                    model_dir=model_dir)
    except FlashError as exc:
        if exc.log_tail:
            click.echo(exc.log_tail, err=True)
        raise UserError(str(exc)) from exc
    if res.board is not None:
        # QEMU "flashing" only proves the ELF boots; nothing persists once the command exits.
        res.board.close()
    click.echo(f"flashed {res.env} on {res.port}: build {res.build_id} verified by HELLO "
               f"({res.attempts} attempt(s), {res.duration_s:.1f} s)")
