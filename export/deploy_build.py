"""Build and run a deploy library's example: the flash and RAM a user pays for the model, measured.

``footprint(lib_dir, core)`` compiles the library and ``examples/qemu`` with arm-none-eabi-gcc and exactly the
flags of the example's CMake toolchain file (``deploy.COMPILE_FLAGS``/``LINK_FLAGS``, the board's cpu flags), links
the example, reads flash (``.text``+``.rodata``+``.data``: code + model) and static RAM (``.data``+``.bss``: arena,
the runtime's model record, the example's buffers) from its ELF, then runs it in QEMU and reads the stack
high-water mark the board support measures (painted stack). Every candidate is measured the same way, so a
figure never depends on what was built before; objects are cached by the hash of their inputs (sources,
headers, flags), which changes only how long a build takes.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edgeprune.bench.atomic import LockTimeout, folder_lock
from edgeprune.bench.errors import ExportError
from edgeprune.bench.firmware_build import elf_sizes
from edgeprune.bench.paths import project_root
from edgeprune.export.deploy import COMPILE_FLAGS, LINK_FLAGS, LINK_LIBS, board_flags, write_deploy

#: QEMU machine arguments of each core the example runs on (bench.qemu.MACHINES holds the same machines).
QEMU_MACHINES = {
    "m0": ["-machine", "microbit", "-global", "nrf51-soc.flash-size=0x80000", "-global", "nrf51-soc.sram-size=0x80000"],
    "m3": ["-machine", "mps2-an385"],
    "m4": ["-machine", "mps2-an386"],
    "m7": ["-machine", "mps2-an500"],
    "m33": ["-machine", "mps2-an505"],
}
_OUTPUT_RE = re.compile(r"^output ([0-9a-f]*)$", re.M)
_STATUS_RE = re.compile(r"^status (\d+)$", re.M)
_STACK_RE = re.compile(r"^stack (\d+)$", re.M)


@dataclass(frozen=True)
class DeployFootprint:
    """Flash and RAM of a deploy library, from its linked example and one run of it.

    :param core: the core it was built for and run on
    :param elf: the example's ELF
    :param flash_bytes: ``.text``+``.rodata``+``.data`` of the example ELF (library code + model + the example's
        own few hundred bytes of startup and main)
    :param model_bytes: of which the model (``edgeprune_model_*``: the prepared state and weights, or the
        ``.tflite``)
    :param code_bytes: flash − model (runtime, API, example, libc/libgcc helpers)
    :param static_ram_bytes: ``.data``+``.bss`` (arena + runtime model record + the example's input/output buffers)
    :param arena_bytes: of which the arena
    :param stack_bytes: stack high-water mark of init + one invoke + output, measured in QEMU
    :param ram_bytes: static RAM + stack
    :param output: the example's output bytes
    :param record_bytes: of the static RAM, the runtime's model record (``ep_model_t``, tables sized for the model)
    """

    core: str
    elf: Path
    flash_bytes: int
    model_bytes: int
    code_bytes: int
    static_ram_bytes: int
    arena_bytes: int
    stack_bytes: int
    ram_bytes: int
    output: bytes
    record_bytes: int = 0

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["elf"] = str(self.elf)
        d["output"] = self.output.hex()
        return d


def _run(cmd: list[str], timeout_s: float, what: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ExportError("deploy", detail=f"{what} took longer than {timeout_s:g} s") from exc
    except OSError as exc:
        raise ExportError("deploy", detail=f"cannot run {cmd[0]} ({what}): {exc}") from exc


def _gcc() -> str:
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        raise ExportError("deploy", detail="arm-none-eabi-gcc not found: apt-get install gcc-arm-none-eabi "
                                           "libnewlib-arm-none-eabi")
    return gcc


def _object(gcc: str, src: Path, includes: list[Path], flags: list[str], cache: Path, timeout_s: float) -> Path:
    """``src`` compiled with ``flags``, from the cache when the same inputs were compiled before."""
    # The key is what the compiler reads, not where it lies: flags, the source, and every header below the source's
    # folder and the include folders (a library's API source includes runtime/*.h, whose config changes per model),
    # so two libraries with the same runtime and config share their objects.
    h = hashlib.sha256("\0".join(flags).encode())
    h.update(src.read_bytes())
    for inc in [src.parent, *includes]:
        for header in sorted(inc.rglob("*.h")):
            h.update(str(header.relative_to(inc)).encode())
            h.update(header.read_bytes())
    obj = cache / f"{src.stem}-{h.hexdigest()[:20]}.o"
    if obj.is_file():
        return obj
    tmp = obj.with_name(f"{obj.name}.{os.getpid()}.tmp")
    proc = _run([gcc, *flags, *(f"-I{i}" for i in includes), "-c", str(src), "-o", str(tmp)], timeout_s,
                f"compiling {src.name}")
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise ExportError("deploy", detail=f"compiling {src.name} failed: {proc.stderr.strip()[-400:]}")
    os.replace(tmp, obj)
    return obj


def build_example(lib_dir: str | Path, core: str = "m4", *, cache_dir: Path | None = None,
                  timeout_s: float = 300.0, optimize: str = "-O2") -> Path:
    """Compile the library and its example for ``core`` and link ``examples/qemu/build-<core>/example.elf``.

    :param lib_dir: a folder written by ``export.deploy.write_deploy``
    :param core: ``m0``, ``m3``, ``m4``, ``m7`` or ``m33``
    :param cache_dir: object cache (default ``.pio/deploy-obj`` in the project)
    :param timeout_s: limit per compiler run
    :param optimize: the optimisation flag (the toolchain file's ``-O2``; ``-Os`` shows what a size build costs)
    """
    lib = Path(lib_dir).resolve()
    example = lib / "examples" / "qemu"
    if not (lib / "include" / "edgeprune_model.h").is_file() or not example.is_dir():
        raise ExportError("deploy", detail=f"{lib} is not a deploy library (edgeprune export --deploy writes one)")
    gcc = _gcc()
    cache = cache_dir or project_root() / ".pio" / "deploy-obj"
    cache.mkdir(parents=True, exist_ok=True)
    cpu = board_flags(core)
    flags = [*cpu, optimize, *(f for f in COMPILE_FLAGS if not f.startswith("-O"))]
    includes = [lib / "include"]
    sources = [*sorted((lib / "src").glob("*.c")), *sorted((lib / "src" / "runtime").glob("*.c")),
               *sorted((example / "src").glob("*.c"))]
    objects = [_object(gcc, s, includes, flags, cache, timeout_s) for s in sources]
    out = example / (f"build-{core}" if optimize == "-O2" else f"build-{core}{optimize}")
    out.mkdir(exist_ok=True)
    elf = out / "example.elf"
    proc = _run([gcc, *cpu, *LINK_FLAGS, f"-T{example / 'qemu.ld'}", *map(str, objects), *LINK_LIBS,
                 "-o", str(elf)], timeout_s, "linking the example")
    if proc.returncode != 0:
        raise ExportError("deploy", detail=f"linking the example failed: {proc.stderr.strip()[-400:]}")
    return elf


@dataclass(frozen=True)
class ExampleRun:
    """What the example printed in QEMU.

    :param status: main's return value (0: every call returned EDGEPRUNE_OK)
    :param output: the output bytes it printed (empty when it failed)
    :param stack_bytes: stack high-water mark
    :param text: everything it printed
    """

    status: int
    output: bytes
    stack_bytes: int
    text: str


def run_example(elf: str | Path, core: str = "m4", *, timeout_s: float = 120.0) -> ExampleRun:
    """Run an example ELF in ``qemu-system-arm`` with semihosting and parse what it prints.

    :param elf: from :func:`build_example` (or the CMake / PlatformIO builds of the same example)
    :param core: the core it was built for
    :param timeout_s: limit for the whole run
    """
    qemu = shutil.which("qemu-system-arm")
    if qemu is None:
        raise ExportError("deploy", detail="qemu-system-arm not found: apt-get install qemu-system-arm")
    proc = _run([qemu, *QEMU_MACHINES[core], "-nographic", "-monitor", "none", "-serial", "null",
                 "-semihosting-config", "enable=on,target=native", "-kernel", str(elf)], timeout_s,
                f"running {elf} in QEMU")
    text = proc.stdout + proc.stderr
    status, stack = _STATUS_RE.search(text), _STACK_RE.search(text)
    if status is None or stack is None:
        raise ExportError("deploy", detail=f"the example did not finish in QEMU (exit {proc.returncode}): "
                                           f"{text.strip()[-300:]!r}")
    out = _OUTPUT_RE.search(text)
    return ExampleRun(int(status.group(1)), bytes.fromhex(out.group(1)) if out else b"", int(stack.group(1)), text)


def _model_flash(elf: Path) -> int:
    """Flash of the model: every ``edgeprune_model_*`` object (a prepared library's images and weights, or the
    ``.tflite`` array)."""
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    with open(elf, "rb") as fh:
        symtab = ELFFile(fh).get_section_by_name(".symtab")
        if not isinstance(symtab, SymbolTableSection):
            return 0
        return sum(int(s["st_size"]) for s in symtab.iter_symbols()
                   if s.name.startswith("edgeprune_model_") and s["st_info"]["type"] == "STT_OBJECT")


def _symbol_size(elf: Path, name: str) -> int:
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    with open(elf, "rb") as fh:
        symtab = ELFFile(fh).get_section_by_name(".symtab")
        if not isinstance(symtab, SymbolTableSection):
            return 0
        return sum(int(sym["st_size"]) for sym in symtab.get_symbol_by_name(name) or [])


def footprint(lib_dir: str | Path, core: str = "m4", *, cache_dir: Path | None = None,
              timeout_s: float = 300.0, optimize: str = "-O2") -> DeployFootprint:
    """Flash and RAM of the deploy library at ``lib_dir`` on ``core``: build the example, run it once.

    :param lib_dir: a folder written by ``export.deploy.write_deploy``
    :param core: ``m0``, ``m3``, ``m4``, ``m7`` or ``m33``
    :param cache_dir: object cache (default ``.pio/deploy-obj``)
    :param timeout_s: limit per compiler run and for the QEMU run
    :param optimize: as in :func:`build_example`
    """
    elf = build_example(lib_dir, core, cache_dir=cache_dir, timeout_s=timeout_s, optimize=optimize)
    run = run_example(elf, core, timeout_s=timeout_s)
    if run.status != 0:
        raise ExportError("deploy", detail=f"the example's calls failed on {core}: {run.text.strip()[-200:]!r}")
    text, data, bss = elf_sizes(elf)
    model = _model_flash(elf)
    arena = _symbol_size(elf, "arena")
    return DeployFootprint(core, elf, text + data, model, text + data - model, data + bss, arena, run.stack_bytes,
                           data + bss + run.stack_bytes, run.output, _symbol_size(elf, "model"))


def deploy_and_measure(tflite: bytes, out_dir: str | Path, *, manifest: dict | None = None, name: str = "model",
                       source: str = "", core: str = "m4") -> tuple[Any, DeployFootprint]:
    """Write the deploy library of ``tflite`` to ``out_dir`` and measure it (``edgeprune export --deploy``).

    Parameters as :func:`export.deploy.write_deploy`; returns ``(DeployLibrary, DeployFootprint)``. The example's
    build output stays inside ``out_dir/examples/qemu/build-<core>``.
    """
    # Two searches measuring the same config share its folder in the artifacts cache: one at a time, or the
    # second replaces the library while the first compiles it.
    try:
        with folder_lock(out_dir, DEPLOY_LOCK_S):
            lib = write_deploy(tflite, out_dir, manifest=manifest, name=name, source=source, core=core)
            return lib, footprint(lib.out_dir, core)
    except LockTimeout as exc:
        raise ExportError("deploy", detail=str(exc)) from None


#: Longest wait for another process writing and measuring the same deploy library, s.
DEPLOY_LOCK_S = 900.0
