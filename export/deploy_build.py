"""Build and run a deploy library's example: the flash and RAM a user pays for the model, measured.

``footprint(lib_dir, core)`` compiles the library and ``examples/qemu`` with arm-none-eabi-gcc and exactly the
flags of the example's CMake toolchain file (``deploy_tools.COMPILE_FLAGS``/``LINK_FLAGS``, the board's cpu flags), links
the example, reads flash (``.text``+``.rodata``+``.data``: code + model) and static RAM (``.data``+``.bss``: arena,
the runtime's model record, the example's buffers) from its ELF, then runs it in QEMU and reads the stack
high-water mark the board support measures (painted stack). Every candidate is measured the same way, so a
figure never depends on what was built before; objects are cached by the hash of their inputs (sources,
headers, flags), which changes only how long a build takes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edgeprune.bench.atomic import LockTimeout, folder_lock
from edgeprune.bench.errors import ExportError
from edgeprune.bench.firmware_build import elf_sizes
from edgeprune.bench.paths import project_root
from edgeprune.export.deploy import write_deploy
from edgeprune.export.deploy_tools import (
    COMPILE_FLAGS,
    LINK_FLAGS,
    LINK_LIBS,
    OPT_FLAGS,
    arm_gcc,
    board_flags,
    compile_object,
    run_example,
    run_tool,
)


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
    gcc = arm_gcc()
    cache = cache_dir or project_root() / ".pio" / "deploy-obj"
    cache.mkdir(parents=True, exist_ok=True)
    cpu = board_flags(core)
    flags = [*cpu, optimize, *(f for f in COMPILE_FLAGS if not f.startswith("-O"))]
    includes = [lib / "include"]
    sources = [*sorted((lib / "src").glob("*.c")), *sorted((lib / "src" / "runtime").glob("*.c")),
               *sorted((example / "src").glob("*.c"))]
    objects = [compile_object(gcc, s, includes, flags, cache, timeout_s) for s in sources]
    out = example / (f"build-{core}" if optimize == "-O2" else f"build-{core}{optimize}")
    out.mkdir(exist_ok=True)
    elf = out / "example.elf"
    proc = run_tool([gcc, *cpu, *LINK_FLAGS, f"-T{example / 'qemu.ld'}", *map(str, objects), *LINK_LIBS,
                 "-o", str(elf)], timeout_s, "linking the example")
    if proc.returncode != 0:
        raise ExportError("deploy", detail=f"linking the example failed: {proc.stderr.strip()[-400:]}")
    return elf


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
                       source: str = "", core: str = "m4", opt: str = "speed") -> tuple[Any, DeployFootprint]:
    """Write the deploy library of ``tflite`` to ``out_dir`` and measure it (``edgeprune export --deploy``).

    Parameters as :func:`export.deploy.write_deploy`; returns ``(DeployLibrary, DeployFootprint)``. The example's
    build output stays inside ``out_dir/examples/qemu/build-<core>``.
    """
    # Two searches measuring the same config share its folder in the artifacts cache: one at a time, or the
    # second replaces the library while the first compiles it.
    try:
        with folder_lock(out_dir, DEPLOY_LOCK_S):
            lib = write_deploy(tflite, out_dir, manifest=manifest, name=name, source=source, core=core, opt=opt)
            return lib, footprint(lib.out_dir, core, optimize=OPT_FLAGS[opt])
    except LockTimeout as exc:
        raise ExportError("deploy", detail=str(exc)) from None


#: Longest wait for another process writing and measuring the same deploy library, s.
DEPLOY_LOCK_S = 900.0
