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

import hashlib
import logging
import re
from pathlib import Path
from typing import Any

from edgeprune.bench.errors import ExportError
from edgeprune.bench.firmware_build import elf_sizes, plan_model
from edgeprune.bench.paths import project_root
from edgeprune.export.deploy import runtime_families
from edgeprune.export.deploy_build import deploy_and_measure
from edgeprune.export.deploy_tools import CORE_BOARDS
from edgeprune.host.search.types import FLASH_BYTES, RAM_BYTES, FigureRecord

log = logging.getLogger(__name__)

IMAGE_FLASH_BYTES = "image_flash_bytes"
IMAGE_RAM_BYTES = "image_ram_bytes"


def deploy_library_figures(figures: dict[str, Any], tflite: bytes, manifest: dict | None, out_dir: Path,
                           core: str | None) -> Any:
    """Put the deploy library's measured flash/RAM into ``figures`` (``FLASH_BYTES``, ``RAM_BYTES``).

    :param figures: the candidate's ``EvalResult.figures``
    :param tflite: its model
    :param manifest: its export manifest (``sequence``)
    :param out_dir: its export folder; the library goes to ``out_dir/deploy``
    :param core: the core measured (``m0``/``m3``/``m4``/``m7``/``m33``); another core or ``None`` gets the labelled
        estimate
    :returns: the ``DeployFootprint``, or ``None`` when the figures are the estimate
    """
    why = f"no QEMU example board for core {core}" if core not in CORE_BOARDS else ""
    if not why:
        try:
            lib, fp = deploy_and_measure(tflite, out_dir / "deploy", manifest=manifest, name="model",
                                         source=str(out_dir), core=str(core))
        except ExportError as exc:
            why = exc.detail.splitlines()[0][:200] if exc.detail else str(exc)[:200]
        else:
            # Prepared: the model as the runtime's state after init (no parser, no planner on the device).
            form = "prepared model, no parser" if lib.prepared else ".tflite + parser"
            figures[FLASH_BYTES] = FigureRecord(
                fp.flash_bytes, "bytes", "build",
                f"deploy library on {core} ({form}): linked example .text+.rodata+.data = {fp.model_bytes} model + "
                f"{fp.code_bytes} code")
            figures[RAM_BYTES] = FigureRecord(
                fp.ram_bytes, "bytes", "build",
                f"deploy library on {core}: .data+.bss {fp.static_ram_bytes} (arena {fp.arena_bytes}) + stack "
                f"high-water {fp.stack_bytes} measured in QEMU")
            return fp
    log.warning("deploy library not measured (%s): flash/RAM are the model and its arena only", why)
    figures[FLASH_BYTES] = FigureRecord(len(tflite), "bytes", "build",
                                        f"estimate: model bytes only, runtime code excluded ({why})")
    figures[RAM_BYTES] = FigureRecord(float((manifest or {}).get("arena_bytes", 0)), "bytes", "build",
                                      f"estimate: TFLM arena only, runtime and stack excluded ({why})")
    return None


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


_MAP_ENTRY = re.compile(r"^ (\.[\w.$]+)?\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S+\.o)$")
_MAP_NAME = re.compile(r"^ (\.[\w.$]+)\s*$")


def object_flash(map_path: Path) -> dict[str, int]:
    """Flash bytes (``.text*``, ``.rodata*``, ``.data*`` input sections kept by the linker) per object file name,
    from a GNU ld map file."""
    out: dict[str, int] = {}
    text = map_path.read_text(encoding="utf-8", errors="replace")
    body = text.split("Linker script and memory map", 1)[-1]
    name = ""
    for line in body.splitlines():
        m = _MAP_NAME.match(line)
        if m:
            name = m.group(1)
            continue
        m = _MAP_ENTRY.match(line)
        if m is None:
            continue
        name = m.group(1) or name
        if int(m.group(2), 16) and name.startswith((".text", ".rodata", ".data")):
            obj = Path(m.group(4)).name
            out[obj] = out.get(obj, 0) + int(m.group(3), 16)
    return out


def image_estimate(tflite: bytes, manifest: dict | None, env: str, firmware_elf: Path,
                   record_bytes: int | None = None) -> tuple[int, int, str]:
    """``(flash, ram, detail)`` of the measurement firmware of ``env`` with ``tflite`` compiled in, estimated by one
    rule from the serial-loading firmware's ELF and map: its code without the kernel families the model does not
    run (runtime files whose whole body is one family, ``export.deploy.runtime_families``) plus the model's bytes;
    its static RAM without its model buffer, with the arena the runtime plans for this model instead of its own and,
    when ``record_bytes`` is given, the runtime's model record sized for this model (the deploy library's, same
    tables) instead of the firmware's. Not subtracted: the float32 family's code inside core files.

    :param tflite: the model
    :param manifest: its export manifest (the ``sequence`` block sizes a recurrent model's arena)
    :param env: PlatformIO env of the firmware (decides the DSP temporary)
    :param firmware_elf: the serial-loading firmware of that env (``firmware.map`` beside it)
    :param record_bytes: size of the runtime's ``ep_model_t`` sized for this model, if known
    """
    text, data, bss = elf_sizes(firmware_elf)
    sym = _symbol_sizes(firmware_elf, ("model_buf", "arena", "model"))
    plan = plan_model(tflite, env, (manifest or {}).get("sequence") or None)
    map_path = firmware_elf.with_name("firmware.map")
    per_object = object_flash(map_path) if map_path.is_file() else {}
    left_out = sum(per_object.get(c[:-2] + ".o", 0) for c, fam in runtime_families().items()
                   if fam is not None and fam not in plan.kernels)
    flash = text + data - left_out + len(tflite)
    ram = data + bss - sym["model_buf"] - sym["arena"] + plan.arena
    if record_bytes:
        ram += record_bytes - sym["model"]
    return flash, ram, (f"estimate: measurement firmware {firmware_elf.parent.name} ({text + data} B code, "
                        f"{left_out} B of kernel families this model does not run left out) + this model; RAM with "
                        f"its planned {plan.arena} B arena{' and runtime tables' if record_bytes else ''} (stack extra)")


def rule_fingerprint() -> str:
    """Hash of what decides the flash/RAM figures besides the exporter and the firmware (both hashed elsewhere):
    this module and the deploy library's C sources and example (``firmware/deploy``). Part of the evaluation cache
    key, so a result measured under another rule (e.g. the measurement image as the objective) is never reused."""
    h = hashlib.sha256(Path(__file__).read_bytes())
    deploy = project_root() / "firmware" / "deploy"
    for path in sorted(p for p in deploy.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(deploy)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]
