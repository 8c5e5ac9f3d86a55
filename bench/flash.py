"""Flashing a board and proving the new firmware is what runs.

A real board is flashed with ``pio run -e <env> -t upload --upload-port <port>`` (bounded time,
bounded retries). An upload that exits 0 is not trusted on its own: the board is then asked for its
HELLO, and its build id must equal the one expected. A failed flash that left the old firmware
running is therefore caught and reported (``FlashError(stage="verify")``), not mistaken for success.

Under QEMU there is nothing to write: "flashing" is launching the ELF (see ``bench/qemu.py``);
:func:`flash_qemu` does that and runs the same verification.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeprune.bench.firmware_build import BuildError, build, build_lock, env_build_dir
from edgeprune.bench.paths import project_root
from edgeprune.bench.qemu import QemuBoard
from edgeprune.bench.targets import LINK_ERRORS, Target, TargetError, TargetSpec

log = logging.getLogger(__name__)

STAGES = ("upload", "connect", "verify")


class FlashError(RuntimeError):
    """Flashing failed at ``stage`` (``upload``, ``connect`` or ``verify``); the message says what to do."""

    def __init__(self, stage: str, message: str, *, attempts: int = 0, log_tail: str = "") -> None:
        if stage not in STAGES:
            raise ValueError(f"unknown flash stage {stage!r}")
        self.stage = stage
        self.attempts = attempts
        self.log_tail = log_tail
        super().__init__(f"flash failed at {stage}: {message}")


@dataclass(frozen=True)
class FlashResult:
    """Outcome of a verified flash.

    :param env: PlatformIO environment (or ``qemu:<core>``)
    :param port: serial port / URL the board answered on
    :param build_id: build id the board reported (equal to the expected one)
    :param attempts: upload attempts made (1 = first try)
    :param duration_s: wall-clock seconds including verification
    :param hello: the board's HELLO reply
    :param log_tail: last lines of the uploader's output
    :param board: for QEMU, the running ``QemuBoard`` (the caller closes it)
    """

    env: str
    port: str
    build_id: str
    attempts: int
    duration_s: float
    hello: Any
    log_tail: str = ""
    board: Any = field(default=None, compare=False)


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def verify_build(port: str, expect_build_id: str | None, *, timeout_s: float = 5.0,
                 connect_attempts: int = 5, settle_s: float = 0.5) -> Any:
    """Open ``port`` (a serial target spec), read HELLO and check its build id; returns the HELLO.

    A board re-enumerates after an upload, so opening is retried ``connect_attempts`` times
    ``settle_s`` apart. Raises ``FlashError("connect")`` if it never answers and
    ``FlashError("verify")`` if it runs a different build.
    """
    last: BaseException | None = None
    for attempt in range(1, connect_attempts + 1):
        try:
            with Target(port, link_timeout_s=timeout_s) as target:
                hello = target.hello
            break
        except LINK_ERRORS as exc:
            last = exc
            log.info("HELLO on %s failed (attempt %d/%d): %s", port, attempt, connect_attempts, exc)
            time.sleep(settle_s)
    else:
        raise FlashError("connect", f"no HELLO from {port} after flashing ({last}); check the port and reset the board")
    got = str(hello.build_id)
    if expect_build_id is not None and got != expect_build_id:
        raise FlashError(
            "verify",
            f"board on {port} runs build {got!r}, expected {expect_build_id!r}: the upload did not take "
            "(old firmware still running); re-run flash or check the upload log",
        )
    return hello


def _pio() -> str:
    exe = shutil.which("pio") or shutil.which("platformio")
    if exe is None:
        venv_pio = Path(sys.executable).with_name("pio")
        if venv_pio.exists():
            return str(venv_pio)
        raise FlashError("upload", "PlatformIO ('pio') not found; install platformio or activate the venv")
    return exe


def flash(env: str, port: str, *, timeout_s: float = 180.0, retries: int = 2,
          expect_build_id: str | None = None, project_dir: str | Path | None = None,
          model_dir: str | Path | None = None, hello_timeout_s: float = 5.0) -> FlashResult:
    """Upload firmware env ``env`` to the board on ``port`` and verify its build id.

    :param env: PlatformIO environment in ``platformio.ini`` (e.g. ``nucleo_l4r5zi``); ``qemu:<core>``
        goes to :func:`flash_qemu`
    :param port: the board's target spec (``/dev/ttyACM0``, ``serial:<USB serial number>``, ``socket://``);
        ``qemu[:core]`` goes to :func:`flash_qemu`
    :param timeout_s: limit for one ``pio`` upload
    :param retries: extra upload attempts after a failed one (upload error, timeout, or wrong build)
    :param expect_build_id: build id the board must report afterwards (``None``: build ``env`` first
        with ``bench.firmware_build.build`` and expect the id of that build)
    :param project_dir: folder holding ``platformio.ini`` (default: the project root)
    :param model_dir: export directory whose ``model_data.c/.h`` is compiled into a deploy build
        (``EP_BAKED_MODEL_DIR``, as ``bench.firmware_build.build`` does)
    :param hello_timeout_s: protocol timeout for the verification HELLO
    """
    if env == "qemu" or env.startswith("qemu:"):
        try:
            core = TargetSpec.parse(env).core
        except TargetError as exc:
            raise FlashError("connect", str(exc)) from exc
        return flash_qemu(core, expect_build_id=expect_build_id, hello_timeout_s=hello_timeout_s)
    if retries < 0:
        raise ValueError("retries must be >= 0")
    # Fail before a minutes-long build when the board is not even there.
    try:
        spec = TargetSpec.parse(port)
        if spec.is_qemu:
            return flash_qemu(spec.core, expect_build_id=expect_build_id, hello_timeout_s=hello_timeout_s)
        dev_path = spec.resolve_port()
    except TargetError as exc:
        raise FlashError("connect", str(exc)) from exc
    if "://" not in dev_path and not os.path.exists(dev_path):
        raise FlashError("connect", f"serial port {dev_path} does not exist; plug the board in or pick another "
                         "port (`edgeprune bench --list`)")
    cwd = Path(project_dir) if project_dir is not None else project_root()
    if not (cwd / "platformio.ini").exists():
        raise FlashError("upload", f"no platformio.ini in {cwd}; pass project_dir")
    child_env = dict(os.environ)
    if model_dir is not None:
        # Same variables as bench.firmware_build.build, so the upload uses that deploy build.
        mdir = Path(model_dir).resolve()
        if not (mdir / "model_data.c").exists():
            raise FlashError("upload", f"{mdir} holds no model_data.c; export the model first")
        child_env["EP_BAKED_MODEL_DIR"] = str(mdir)
        child_env["PLATFORMIO_BUILD_DIR"] = str(cwd / ".pio" / "build-baked" / mdir.name)
    if expect_build_id is None:
        expect_build_id = _built_id(env, model_dir, timeout_s)
    cmd = [_pio(), "run", "-e", env, "-t", "upload", "--upload-port", dev_path]
    t0 = time.monotonic()
    failure: FlashError | None = None
    for attempt in range(1, retries + 2):
        log.info("flashing %s on %s (attempt %d/%d)", env, port, attempt, retries + 1)
        try:
            # The upload builds first: the same folder lock as bench.firmware_build.build.
            with build_lock(env_build_dir(env, child_env.get("PLATFORMIO_BUILD_DIR")), timeout_s):
                proc = subprocess.run(cmd, cwd=cwd, env=child_env, capture_output=True, text=True, timeout=timeout_s,
                                      check=False)
        except subprocess.TimeoutExpired as exc:
            out = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            failure = FlashError("upload", f"'pio run -t upload' took over {timeout_s:g} s; is the board in "
                                 "bootloader/connected?", attempts=attempt, log_tail=_tail(out))
            continue
        output = proc.stdout + proc.stderr
        if proc.returncode != 0:
            failure = FlashError("upload", f"'pio run -e {env} -t upload' exited {proc.returncode}: "
                                 f"{_tail(output, 1)}", attempts=attempt, log_tail=_tail(output))
            continue
        try:
            hello = verify_build(dev_path, expect_build_id, timeout_s=hello_timeout_s)
        except FlashError as exc:
            exc.attempts = attempt
            exc.log_tail = _tail(output)
            failure = exc
            continue
        return FlashResult(env, dev_path, str(hello.build_id), attempt, time.monotonic() - t0, hello, _tail(output))
    assert failure is not None
    raise failure


def _built_id(env: str, model_dir: str | Path | None, timeout_s: float) -> str | None:
    """Build ``env`` (as the upload will) and return the build id HELLO must then report."""
    try:
        result = build(env, baked_model_dir=model_dir, timeout_s=timeout_s)
    except BuildError as exc:
        raise FlashError("upload", f"firmware build failed before upload: {exc}") from exc
    if not result.build_id:
        log.warning("build of %s wrote no build_id.txt; the flash is verified by HELLO only", env)
    return result.build_id or None


def flash_qemu(core: str, *, expect_build_id: str | None = None, hello_timeout_s: float = 5.0,
               elf: str | Path | None = None) -> FlashResult:
    """"Flash" under QEMU: launch the firmware ELF for ``core`` and verify its HELLO.

    The returned result holds the running board in ``board``; close it when done.
    """
    t0 = time.monotonic()
    board = QemuBoard(core) if elf is None else QemuBoard(core, elf=elf)
    board.start()
    try:
        hello = verify_build(board.url, expect_build_id, timeout_s=hello_timeout_s)
    except FlashError:
        board.close()
        raise
    return FlashResult(f"qemu:{core}", board.url, str(hello.build_id), 1, time.monotonic() - t0, hello, board=board)
