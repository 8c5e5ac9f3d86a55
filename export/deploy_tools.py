"""The toolchain and QEMU side of the deploy library: board flags, compiler and link flags, object cache, running
an example (or the export-time snapshot program) in ``qemu-system-arm``.

Shared by ``export.deploy`` (the library's CMake/PlatformIO files), ``export.deploy_prepare`` (the snapshot at
export) and ``export.deploy_build`` (the footprint measurement), so none of them imports another for these.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from edgeprune.bench.errors import ExportError
from edgeprune.bench.paths import project_root

#: QEMU board file (firmware/platform/boards) of each core the example runs on; its cpu/fpu flags are the build's.
CORE_BOARDS = {"m0": "qemu_microbit", "m3": "qemu_mps2_an385", "m4": "qemu_mps2_an386", "m7": "qemu_mps2_an500",
               "m33": "qemu_mps2_an505"}
#: Where flash and RAM start on the AN505 (Cortex-M33, secure aliases); the other boards use qemu.ld's 0 / 0x20000000.
_AN505_MEMORY = (("ORIGIN = 0x00000000", "ORIGIN = 0x10000000"), ("ORIGIN = 0x20000000", "ORIGIN = 0x38000000"))


def deploy_sources() -> Path:
    """``firmware/deploy``: the API, the example and the QEMU board support the library is assembled from."""
    return project_root() / "firmware" / "deploy"


def board_flags(core: str) -> list[str]:
    """``-mcpu``/``-mthumb``/float-ABI flags of ``core``, read from the QEMU platform's board file."""
    if core not in CORE_BOARDS:
        raise ExportError("deploy", detail=f"no example board for core {core!r}; use one of {sorted(CORE_BOARDS)}")
    board = json.loads((project_root() / "firmware" / "platform" / "boards" / f"{CORE_BOARDS[core]}.json")
                       .read_text(encoding="utf-8"))["build"]
    flags = [f"-mcpu={board['cpu']}", "-mthumb"]
    if board.get("float_abi", "soft") == "hard" and board.get("fpu"):
        return [*flags, "-mfloat-abi=hard", f"-mfpu={board['fpu']}"]
    return [*flags, "-mfloat-abi=soft"]


#: Compile and link flags of the example, shared by the CMake toolchain file and ``deploy_build`` (same image).
COMPILE_FLAGS = ["-O2", "-std=c99", "-ffunction-sections", "-fdata-sections", "-fno-common"]
#: ``edgeprune export --deploy-opt``: the optimisation flag of the library's CMake toolchain file and measured build.
OPT_FLAGS = {"speed": "-O2", "size": "-Os"}
LINK_FLAGS = ["-nostartfiles", "--specs=nano.specs", "-Wl,--gc-sections"]
LINK_LIBS = ["-lc", "-lm", "-lgcc", "-lnosys"]


def example_ld(core: str) -> str:
    """The example's linker script for ``core`` (``firmware/deploy/qemu/qemu.ld``; the AN505's memory map for m33)."""
    ld = (deploy_sources() / "qemu" / "qemu.ld").read_text(encoding="utf-8")
    if core == "m33":
        for old, new in _AN505_MEMORY:
            if old not in ld:
                raise ExportError("deploy", detail=f"firmware/deploy/qemu/qemu.ld lost its '{old}' line")
            ld = ld.replace(old, new)
    return ld


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


def run_tool(cmd: list[str], timeout_s: float, what: str) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` (output captured, exit status not checked); a timeout or a missing tool is an ``ExportError``.

    :param cmd: the command line
    :param timeout_s: limit for the run
    :param what: what it does, for the error message
    """
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ExportError("deploy", detail=f"{what} took longer than {timeout_s:g} s") from exc
    except OSError as exc:
        raise ExportError("deploy", detail=f"cannot run {cmd[0]} ({what}): {exc}") from exc


def arm_gcc() -> str:
    """Path of ``arm-none-eabi-gcc`` (an ``ExportError`` saying how to install it when missing)."""
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        raise ExportError("deploy", detail="arm-none-eabi-gcc not found: apt-get install gcc-arm-none-eabi "
                                           "libnewlib-arm-none-eabi")
    return gcc


_COMMENT = re.compile(rb"/\*.*?\*/|//[^\n]*", re.DOTALL)
_INCLUDE = re.compile(rb'^[ \t]*#[ \t]*include[ \t]*([<"])([^>"]+)[>"]', re.MULTILINE)


def _included_headers(src: Path, includes: list[Path]) -> list[tuple[str, Path]]:
    """Every project header ``src`` includes, directly or not, as ``(spelling, file)`` in first-seen order.

    A quoted include is looked up beside the including file, then in ``includes``; an angle one in ``includes``
    only (not found there: a toolchain header, fixed by the compiler's version). Includes under ``#if`` are counted
    too, which can only make the key stricter.
    """
    seen: dict[Path, str] = {}
    order: list[tuple[str, Path]] = []
    stack = [src]
    while stack:
        current = stack.pop()
        for quote, spelling in _INCLUDE.findall(current.read_bytes()):
            name = spelling.decode()
            dirs = ([current.parent] if quote == b'"' else []) + list(includes)
            found = next((d / name for d in dirs if (d / name).is_file()), None)
            if found is None:
                continue
            found = found.resolve()
            if found not in seen:
                seen[found] = name
                order.append((name, found))
                stack.append(found)
    return order


def compile_object(gcc: str, src: Path, includes: list[Path], flags: list[str], cache: Path, timeout_s: float) -> Path:
    """``src`` compiled with ``flags``, from the cache when the same inputs were compiled before.

    :param gcc: the compiler (``arm_gcc()``)
    :param src: the C (or assembly) source
    :param includes: ``-I`` folders
    :param flags: compiler flags
    :param cache: object cache folder
    :param timeout_s: limit for the compiler run
    """
    # The key is what the compiler reads, not where it lies: flags, the source and the headers it includes, found
    # as the preprocessor finds them. Hashing every header of the folders instead made each candidate's model header
    # part of every runtime object's key, so a search recompiled the whole runtime twice per candidate.
    h = hashlib.sha256("\0".join(flags).encode())
    h.update(src.read_bytes())
    for name, header in _included_headers(src, includes):
        h.update(name.encode() + b"\0")
        # A generated config header's comments name the model's sizes; they do not change the object.
        h.update(_COMMENT.sub(b" ", header.read_bytes()))
    obj = cache / f"{src.stem}-{h.hexdigest()[:20]}.o"
    if obj.is_file():
        return obj
    tmp = obj.with_name(f"{obj.name}.{os.getpid()}.tmp")
    proc = run_tool([gcc, *flags, *(f"-I{i}" for i in includes), "-c", str(src), "-o", str(tmp)], timeout_s,
                f"compiling {src.name}")
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise ExportError("deploy", detail=f"compiling {src.name} failed: {proc.stderr.strip()[-400:]}")
    os.replace(tmp, obj)
    return obj


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
    proc = run_tool([qemu, *QEMU_MACHINES[core], "-nographic", "-monitor", "none", "-serial", "null",
                 "-semihosting-config", "enable=on,target=native", "-kernel", str(elf)], timeout_s,
                f"running {elf} in QEMU")
    text = proc.stdout + proc.stderr
    status, stack = _STATUS_RE.search(text), _STACK_RE.search(text)
    if status is None or stack is None:
        raise ExportError("deploy", detail=f"the example did not finish in QEMU (exit {proc.returncode}): "
                                           f"{text.strip()[-300:]!r}")
    out = _OUTPUT_RE.search(text)
    return ExampleRun(int(status.group(1)), bytes.fromhex(out.group(1)) if out else b"", int(stack.group(1)), text)
