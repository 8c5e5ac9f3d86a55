"""Flash and RAM of a candidate: what the user pays (the deploy library), and the measurement image beside it.

One rule per figure, the same for every candidate whatever the process measured before (issue 32):

* ``flash_bytes`` / ``ram_bytes`` (the objective and the front): the candidate's deploy library
  (``edgeprune export --deploy``), built and linked as its example application and run once in QEMU
  (``export.deploy_build.footprint``): flash = the linked example's ``.text``+``.rodata``+``.data`` (runtime for the
  model's kernels + API + model + the example's few hundred bytes), RAM = ``.data``+``.bss`` (arena, the runtime's
  model record, the example's buffers) + the stack high-water mark. Source ``build``.
* ``image_flash_bytes`` / ``image_ram_bytes``: the measurement firmware with the model compiled in. With
  ``deploy_build="auto"|"always"`` a real PlatformIO deploy build per candidate (source ``build``); otherwise an
  estimate by one rule from the serial-loading firmware's own ELF (its code and static RAM, its model buffer and
  arena replaced by this model's bytes and planned arena), labelled ``estimate``; its error against real builds is
  measured by ``bench/scripts/deploy_footprint.py``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from edgeprune.host.search.types import FLASH_BYTES, RAM_BYTES, FigureRecord

log = logging.getLogger(__name__)

IMAGE_FLASH_BYTES = "image_flash_bytes"
IMAGE_RAM_BYTES = "image_ram_bytes"


def deploy_library_figures(figures: dict[str, Any], tflite: bytes, manifest: dict | None, out_dir: Path,
                           core: str | None) -> None:
    """Put the deploy library's measured flash/RAM into ``figures`` (``FLASH_BYTES``, ``RAM_BYTES``).

    :param figures: the candidate's ``EvalResult.figures``
    :param tflite: its model
    :param manifest: its export manifest (``sequence``)
    :param out_dir: its export folder; the library goes to ``out_dir/deploy``
    :param core: the core measured (``m0``/``m3``/``m4``/``m7``); another core or ``None`` gets the labelled estimate
    """
    from edgeprune.export.deploy import CORE_BOARDS
    from edgeprune.export.deploy_build import deploy_and_measure
    from edgeprune.export.errors import ExportError

    why = f"no QEMU example board for core {core}" if core not in CORE_BOARDS else ""
    if not why:
        try:
            _, fp = deploy_and_measure(tflite, out_dir / "deploy", manifest=manifest, name="model",
                                       source=str(out_dir), core=str(core))
        except ExportError as exc:
            why = exc.detail.splitlines()[0][:200] if exc.detail else str(exc)[:200]
        else:
            figures[FLASH_BYTES] = FigureRecord(
                fp.flash_bytes, "bytes", "build",
                f"deploy library on {core}: linked example .text+.rodata+.data = {fp.model_bytes} model + "
                f"{fp.code_bytes} code")
            figures[RAM_BYTES] = FigureRecord(
                fp.ram_bytes, "bytes", "build",
                f"deploy library on {core}: .data+.bss {fp.static_ram_bytes} (arena {fp.arena_bytes}) + stack "
                f"high-water {fp.stack_bytes} measured in QEMU")
            return
    log.warning("deploy library not measured (%s): flash/RAM are the model and its arena only", why)
    figures[FLASH_BYTES] = FigureRecord(len(tflite), "bytes", "build",
                                        f"estimate: model bytes only, runtime code excluded ({why})")
    figures[RAM_BYTES] = FigureRecord(float((manifest or {}).get("arena_bytes", 0)), "bytes", "build",
                                      f"estimate: TFLM arena only, runtime and stack excluded ({why})")


def _symbol_sizes(elf: Path, names: tuple[str, ...]) -> dict[str, int]:
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    out = dict.fromkeys(names, 0)
    with open(elf, "rb") as fh:
        symtab = ELFFile(fh).get_section_by_name(".symtab")
        if isinstance(symtab, SymbolTableSection):
            for name in names:
                out[name] = sum(int(s["st_size"]) for s in symtab.get_symbol_by_name(name) or [])
    return out


def image_estimate(tflite: bytes, manifest: dict | None, env: str, firmware_elf: Path) -> tuple[int, int, str]:
    """``(flash, ram, detail)`` of the measurement firmware of ``env`` with ``tflite`` compiled in, estimated by one
    rule from the serial-loading firmware's ELF: its code and static RAM, with its model buffer removed, the model's
    bytes added to flash and its RX arena replaced by the arena the runtime plans for this model.

    Real deploy builds also leave out kernel families the model does not run and size the runtime's tables for it,
    so the estimate is high by those (measured: ``bench/scripts/deploy_footprint.py``).

    :param tflite: the model
    :param manifest: its export manifest (the ``sequence`` block sizes a recurrent model's arena)
    :param env: PlatformIO env of the firmware (decides the DSP temporary)
    :param firmware_elf: the serial-loading firmware of that env
    """
    from edgeprune.bench.firmware_build import elf_sizes, plan_model

    text, data, bss = elf_sizes(firmware_elf)
    sym = _symbol_sizes(firmware_elf, ("model_buf", "arena"))
    plan = plan_model(tflite, env, (manifest or {}).get("sequence") or None)
    flash = text + data + len(tflite)
    ram = data + bss - sym["model_buf"] - sym["arena"] + plan.arena
    return flash, ram, (f"estimate: measurement firmware {firmware_elf.parent.name} ({text + data} B code, all kernels) "
                        f"+ this model; RAM with its planned {plan.arena} B arena (stack extra)")
