"""Issue 19: do the MLPerf Tiny models' deploy builds fit the reference board (NUCLEO-L4R5ZI: 2 MiB flash,
640 KiB SRAM)? Flash and RAM of each deploy build beside our planned arena and TFLM's.

Usage: python bench/scripts/mlperf_deploy.py [--models ad01 kws ic vww sww] [--env qemu-m4] [--no-write]

A deploy build is the firmware with the model compiled into flash and its static buffers sized by the
runtime's own planner (``bench.firmware_build.deploy_footprint``), as it would ship. It is built for
``qemu-m4`` by default: the same ``-mcpu=cortex-m4`` runtime and kernels as the L4R5's, because ST's
PlatformIO platform (``ststm32``) cannot be installed offline here; the board port (clock, UART, DWT) is
the part that differs, a few hundred bytes either way, so the fit is reported with that caveat.
TFLM's arena is ``arena_used_bytes()`` of TFLM's C++ build on the same QEMU M4 (``bench.reference.TFLM_ARENA``;
PyPI tflite-micro's interpreter does not expose it).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import Any

from bench_common import ROOT, commit, replace_section

from edgeprune.bench.firmware_build import (
    CONSUME_INPUTS,
    ENV_LIMITS,
    STACK_RESERVE,
    deploy_footprint,
    plan_model,
)
from edgeprune.bench.reference import AD01_SHA256, MLPERF, TFLM_ARENA, ad01_path, mlperf_bytes, mlperf_path

SECTION = "MLPerf Tiny deploy builds on the reference board (issue 19)"
BOARD = "nucleo_l4r5zi"


def measure(name: str, env: str) -> dict[str, Any]:
    path = ad01_path() if name == "ad01" else mlperf_path(name)
    tflite = path.read_bytes() if name == "ad01" else mlperf_bytes(name)
    t0 = time.monotonic()
    built = deploy_footprint(path, env)
    flash_lim, ram_lim = ENV_LIMITS[BOARD]
    ram_with_stack = built.ram_bytes + STACK_RESERVE
    return {
        "model": name, "tflite_bytes": len(tflite), "sha256": AD01_SHA256 if name == "ad01" else MLPERF[name].sha256,
        "env": env, "flash": built.flash_bytes, "ram": built.ram_bytes, "ram_with_stack": ram_with_stack,
        "arena": built.plan.arena if built.plan else None,
        "arena_consume": plan_model(tflite, env, flags=CONSUME_INPUTS).arena, "tflm_arena": TFLM_ARENA[name][0], "tflm_arena_cmsis": TFLM_ARENA[name][1],
        "fits": built.flash_bytes <= flash_lim and ram_with_stack <= ram_lim, "build_s": round(time.monotonic() - t0, 1),
    }


def section(rows: list[dict[str, Any]], command: str, env: str) -> str:
    flash_lim, ram_lim = ENV_LIMITS[BOARD]
    lines = [f"## {SECTION}", "",
             f"- command: `{command}`", f"- date: {time.strftime('%Y-%m-%d %H:%M')} UTC, commit {commit()}",
             f"- board: NUCLEO-L4R5ZI, {flash_lim // 1024:,} KiB flash, {ram_lim // 1024:,} KiB SRAM. Deploy builds made for "
             f"`{env}` (same -mcpu=cortex-m4 runtime and kernels; ST's `ststm32` PlatformIO platform cannot be installed "
             "offline here, so the board port's few hundred bytes are the STM32 port's in reality)",
             f"- RAM = .data + .bss of the image (the planned arena is a static buffer in it); fit adds the linker "
             f"script's {STACK_RESERVE // 1024} KiB stack reserve",
             "- our arena: the runtime's own planner run on the host for the target (the same C code, incl. the DSP "
             "kernels' scratch); TFLM: `arena_used_bytes()` of TFLM's C++ build on the same QEMU M4 "
             "(bench/reference/README.md), reference kernels / CMSIS-NN",
             "- our arena is planned two ways: as the firmware runs it (graph inputs live for the whole invoke, "
             "because the measuring firmware runs n inferences on one input), and for an application that writes "
             "its inputs before every invoke (`EP_RT_INIT_CONSUME_INPUTS`: an input's bytes are reused after its "
             "last reader, as TFLM plans them); the ratio is the second against TFLM's reference-kernel arena", "",
             "| model | .tflite B | flash B | RAM B | RAM + stack B | fits L4R5ZI | our arena B (firmware / inputs "
             "consumed) | TFLM arena B (ref / CMSIS-NN) | ours / TFLM ref |",
             "|---|---:|---:|---:|---:|---|---:|---:|---:|"]
    for r in rows:
        ratio = f"{r['arena_consume'] / r['tflm_arena']:.3f}"
        lines.append(f"| {r['model']} | {r['tflite_bytes']:,} | {r['flash']:,} | {r['ram']:,} | {r['ram_with_stack']:,} | "
                     f"{'yes' if r['fits'] else 'NO'} | {r['arena'] or 0:,} / {r['arena_consume']:,} | {r['tflm_arena']:,} / {r['tflm_arena_cmsis']:,} | "
                     f"{ratio} |")
    fit = all(r["fits"] for r in rows)
    smaller = [r["model"] for r in rows if r["arena_consume"] <= r["tflm_arena"]]
    lines += ["", f"- **met: {'yes' if fit else 'NO'}** (every deploy build fits the board); arena no larger than "
              f"TFLM's (inputs consumed, as TFLM plans): {', '.join(smaller) or 'none'} of {len(rows)}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["ad01", "kws", "ic", "vww", "sww"],
                    choices=["ad01", "kws", "ic", "vww", "sww"])
    ap.add_argument("--env", default="qemu-m4", help="PlatformIO env to build (a Cortex-M4 one for the L4R5)")
    ap.add_argument("--no-write", action="store_true", help="print the section without writing BENCHMARKS.md")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    rows = []
    for name in args.models:
        rows.append(measure(name, args.env))
        print(f"{name}: {rows[-1]}", flush=True)
    command = "python bench/scripts/mlperf_deploy.py " + " ".join(argv if argv is not None else sys.argv[1:])
    block = section(rows, command.strip(), args.env)
    if not args.no_write:
        replace_section(ROOT / "BENCHMARKS.md", f"## {SECTION}", block)
    print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
