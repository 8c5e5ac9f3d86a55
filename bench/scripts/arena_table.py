"""Issue 31: the runtime's arena against TFLM's, per MLPerf Tiny model and core.

Usage: python bench/scripts/arena_table.py [--models ad01 kws ic vww sww] [--cores m0 m3 m4 m7 m33]
                                           [--device m4 ...] [--build-dir DIR] [--markdown FILE]

For every model and core:
  * our arena as planned by the runtime's own C code, built on the host for that kind of core (DSP extension,
    single-precision FPU: ``bench.firmware_build.plan_model``), two ways: inputs consumed (an application that
    writes its inputs before every invoke; TFLM plans this way) and inputs kept (the measuring firmware);
  * with ``--device``: the firmware built for the core, each model loaded in QEMU, the arena it reports after the
    load against the inputs-kept plan (the script fails if they differ);
  * the runtime record (``ep_model_t`` sized to the model, as a deploy build sizes it: tensor and op records, run
    lists), compiled for the core with arm-none-eabi-gcc and measured with nm. TFLM keeps the equivalent
    (TfLiteEvalTensor, node and registration arrays, op data, its allocator) inside its arena, so the record is
    reported beside the arena and added to it in the last column;
  * TFLM's ``arena_used_bytes()`` with reference kernels and with CMSIS-NN, measured on the same QEMU M4 (and M3)
    build (bench/reference/README.md; TFLM's C++ is not built here).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench_common import ROOT, commit

from edgeprune.bench.firmware_build import CONSUME_INPUTS, CORE_ENVS, ENV_CPU, BuildError, build, plan_model
from edgeprune.bench.link import Device, LinkError
from edgeprune.bench.qemu import QemuBoard, QemuError
from edgeprune.bench.reference import TFLM_ARENA, ad01_bytes, mlperf_bytes

log = logging.getLogger("arena_table")
MODELS = ("ad01", "kws", "ic", "vww", "sww")
CORES = ("m0", "m3", "m4", "m7", "m33")


class TableError(RuntimeError):
    """A size could not be measured, or the device's arena is not the host plan's."""


def model_bytes(name: str) -> bytes:
    """The shipped, checksum-checked model ``name``."""
    return ad01_bytes() if name == "ad01" else mlperf_bytes(name)


def record_bytes(core: str, tensors: int, ops: int, timeout_s: float = 60.0) -> int:
    """``sizeof(ep_model_t)`` on ``core`` with the tensor and op tables sized to the model (a deploy build's).

    :param core: core name (``m4``)
    :param tensors: the model's tensors (``EP_RT_MAX_TENSORS``)
    :param ops: the model's operators (``EP_RT_MAX_OPS``)
    :param timeout_s: limit per tool run
    """
    cpu = ENV_CPU[CORE_ENVS[core]]
    with tempfile.TemporaryDirectory() as tmp:
        src, obj = Path(tmp) / "rec.c", Path(tmp) / "rec.o"
        src.write_text('#include "ep_runtime.h"\nep_model_t ep_record;\n', encoding="utf-8")
        cc = subprocess.run(["arm-none-eabi-gcc", f"-mcpu={cpu}", "-mthumb", "-O2", "-fno-common",
                             f"-DEP_RT_MAX_TENSORS={tensors}", f"-DEP_RT_MAX_OPS={ops}",
                             f"-I{ROOT / 'firmware' / 'runtime'}", "-c", str(src), "-o", str(obj)],
                            capture_output=True, text=True, timeout=timeout_s, check=False)
        if cc.returncode != 0:
            raise TableError(f"compiling the record size probe failed: {cc.stderr.strip()[-300:]}")
        nm = subprocess.run(["arm-none-eabi-nm", "-S", str(obj)], capture_output=True, text=True,
                            timeout=timeout_s, check=False)
    m = re.search(r"^[0-9a-f]+ ([0-9a-f]+) [BbDdCc] ep_record$", nm.stdout, re.M)
    if m is None:
        raise TableError(f"no size for ep_record in nm's output {nm.stdout!r}")
    return int(m.group(1), 16)


def device_arenas(core: str, names: list[str], build_dir: Path) -> dict[str, int]:
    """The arena the firmware of ``core`` reports after loading each model in QEMU (models too large for the
    board's model buffer or arena are left out).

    :param core: core name
    :param names: models to load
    :param build_dir: PlatformIO build dir for this core's firmware
    """
    elf = build(CORE_ENVS[core], build_dir=build_dir / core).elf
    out: dict[str, int] = {}
    with QemuBoard(core, elf=elf) as board, Device.open(board.url, 120.0) as dev:
        hello = dev.hello()
        for name in names:
            tflite = model_bytes(name)
            if len(tflite) > hello.max_model:
                log.info("%s: %s (%d B) exceeds the firmware's model buffer, not loaded", core, name, len(tflite))
                continue
            if plan_model(tflite, CORE_ENVS[core]).arena > hello.arena:
                log.info("%s: %s needs more arena than the firmware's %d B, not loaded", core, name, hello.arena)
                continue
            out[name] = dev.load_model(tflite).arena_used
    return out


def measure(names: list[str], cores: list[str], device: list[str], build_dir: Path) -> list[dict[str, Any]]:
    """One row per (model, core): planned arenas, the device's, the record, TFLM's.

    :param names: models
    :param cores: cores to plan for
    :param device: cores whose firmware is also run in QEMU to check the plan
    :param build_dir: PlatformIO build dir root for those firmwares
    """
    on_device = {core: device_arenas(core, names, build_dir) for core in device}
    rows = []
    for name in names:
        tflite = model_bytes(name)
        for core in cores:
            env = CORE_ENVS[core]
            kept, consumed = plan_model(tflite, env), plan_model(tflite, env, flags=CONSUME_INPUTS)
            dev = on_device.get(core, {}).get(name)
            if dev is not None and dev != kept.arena:
                raise TableError(f"{name} on {core}: the device reports a {dev} B arena, the host plan {kept.arena} B")
            ref, cmsis = TFLM_ARENA[name]
            rec = record_bytes(core, kept.tensors, kept.ops)
            rows.append({"model": name, "core": core, "consumed": consumed.arena, "kept": kept.arena, "device": dev,
                         "record": rec, "tflm_ref": ref, "tflm_cmsis": cmsis})
            log.info("%s %s: consumed %d kept %d device %s record %d TFLM %d/%d", name, core, consumed.arena,
                     kept.arena, dev, rec, ref, cmsis)
    return rows


def markdown(rows: list[dict[str, Any]], command: str) -> str:
    """The table and what it compares, for BENCHMARKS.md."""
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M")
    lines = [f"- command: `{command}`", f"- date: {date} UTC, commit {commit()}",
             "- ours: the runtime's planner (its own C code built on the host for the kind of core: DSP extension, "
             "single-precision FPU); `device` = the arena the QEMU firmware reports after loading the model (inputs "
             "kept), checked equal to that plan; `-` = not loaded there",
             "- TFLM: `arena_used_bytes()` on the same QEMU M4 build (bench/reference/README.md), reference kernels / "
             "CMSIS-NN; it plans inputs consumed, so the ratio uses our inputs-consumed plan",
             "- record: `ep_model_t` sized to the model (tensor and op records, run lists; outside our arena, in "
             "TFLM's: TfLiteEvalTensor, node/registration arrays, op data, allocator)", "",
             "| model | core | ours, inputs consumed B | TFLM ref / CMSIS-NN B | ours / TFLM ref | arena <= TFLM | "
             "ours, inputs kept B (device) | record B | consumed + record B | (arena + record) / TFLM ref |",
             "|---|---|---:|---:|---:|---|---:|---:|---:|---:|"]
    for r in rows:
        dev = "-" if r["device"] is None else f"{r['device']:,}"
        total = r["consumed"] + r["record"]
        lines.append(f"| {r['model']} | {r['core']} | {r['consumed']:,} | {r['tflm_ref']:,} / {r['tflm_cmsis']:,} | "
                     f"{r['consumed'] / r['tflm_ref']:.3f} | {'yes' if r['consumed'] <= r['tflm_ref'] else 'no'} | "
                     f"{r['kept']:,} ({dev}) | {r['record']:,} | {total:,} | {total / r['tflm_ref']:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    ap.add_argument("--cores", nargs="+", default=list(CORES), choices=CORES)
    ap.add_argument("--device", nargs="*", default=["m4"], choices=CORES,
                    help="cores whose firmware loads each model in QEMU to check the plan (default m4)")
    ap.add_argument("--build-dir", type=Path, default=ROOT / ".pio" / "build-arena-table")
    ap.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        rows = measure(args.models, args.cores, args.device, args.build_dir)
    except (TableError, BuildError, LinkError, QemuError, OSError, subprocess.TimeoutExpired) as exc:
        log.error("arena_table: %s", exc)
        return 1
    text = markdown(rows, "python bench/scripts/arena_table.py " + " ".join(argv if argv is not None else sys.argv[1:]))
    sys.stdout.write(text)
    if args.markdown:
        args.markdown.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
