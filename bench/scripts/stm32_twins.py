"""The STM32 board images on QEMU's emulation of their SoCs, beside qemu:m4 (issue 26): boot-to-HELLO time, the
emulator and its version, what HELLO reports, and instructions per inference of AD01 and weather GRUs.

Usage: python bench/scripts/stm32_twins.py [--repeats 5] [--boots 3] [--cache DIR] [--write]

Targets: qemu:m4 (mps2-an386, the system QEMU), qemu:b-l475e-iot01a (the B-L475E-IOT01A image, QEMU >= 9) and
qemu:netduinoplus2 (the NUCLEO-F411RE image on an emulated STM32F405, the system QEMU). Counts are QEMU -icount
instructions (a lower bound on cycles), measured with `edgeprune bench`'s library function; a model larger than a
board's load buffer is measured from the deploy build of that board's image (model in flash), and one larger than
its flash is reported as not fitting. Models: MLPerf Tiny AD01 (bench/reference), a hidden-32 streaming GRU (random
weights, 4 features x 30 steps, loaded over the UART) and the weather-gru baseline (2 x 256, `edgeprune export --task
weather-gru`). --write puts the table in BENCHMARKS.md ("STM32 boards on QEMU (issue 26)").
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from bench_common import ROOT, commit, replace_section

from edgeprune.bench.firmware_build import BuildError
from edgeprune.bench.model_bench import bench_model
from edgeprune.bench.qemu import MACHINES, QemuBoard, default_elf, qemu_binary
from edgeprune.bench.reference import ad01_path
from edgeprune.export.pipeline import export_model

TARGETS = ("m4", "b-l475e-iot01a", "netduinoplus2")
SECTION = "## STM32 boards on QEMU (issue 26)"


def boots(core: str, n: int) -> dict:
    """Median wall time from launching QEMU to the firmware's HELLO, over ``n`` boots, and what HELLO says."""
    elf = default_elf(core)
    times, hello, qemu = [], None, qemu_binary(MACHINES[core])
    for _ in range(n):
        with QemuBoard(core, elf=elf, serial="tcp") as board:
            times.append(board.boot_s)
            hello = board.hello
    assert hello is not None, "no boot: n must be at least 1"
    return {"boot_s": statistics.median(times), "qemu": f"{Path(qemu.path).name} {qemu.version_text}",
            "qemu_path": qemu.path, "machine": MACHINES[core].machine, "board": hello.board,
            "clock_hz": hello.clock_hz, "counter": hello.counter, "resolution": hello.counter_scale}


def gru32(cache: Path) -> Path:
    """A hidden-32 streaming GRU (4 features, 30 steps, 5 classes; random weights) through the real exporter."""
    out = cache / "gru32"
    if not (out / "model.tflite").is_file():
        # Deferred (torch, 1-2 s): boots and --from-json need no model, and a cached export none either.
        import torch

        from edgeprune.host.models.gru import StackedGRU

        torch.manual_seed(1)
        calib = np.random.default_rng(1).normal(0, 1, (64, 30, 4)).astype(np.float32)
        export_model(StackedGRU(4, [32], 5, seq_len=30).eval(), calib, out)
    return out / "model.tflite"


def weather_gru(cache: Path) -> Path:
    """The weather-gru baseline, exported by the CLI (trains it first when not cached)."""
    out = cache / "weather-gru"
    if not (out / "model.tflite").is_file():
        subprocess.run([str(Path(sys.executable).with_name("edgeprune")), "export", "--task", "weather-gru",
                        "--out", str(out)], check=True, timeout=3600)
    return out / "model.tflite"


def measure_one(model: Path, core: str, repeats: int) -> dict:
    try:
        m = bench_model(model, f"qemu:{core}", repeats=repeats, warmup=1, agreement=2, timeout_s=300.0)
    except BuildError as exc:
        if exc.stage == "limits":
            return {"error": str(exc).splitlines()[0]}
        raise
    assert m.agreement is not None
    return {"count": m.figures["count"].value, "min": m.figures["count_min"].value,
            "resolution": m.target["resolution"], "agreement": m.agreement.byte_equal_rate.value,
            "agreement_n": m.agreement.n, "via": "deploy build (model in flash)" if m.model.get("deploy_build")
            else "LOAD over the link"}


def table(result: dict) -> str:
    lines = ["| target | QEMU machine (emulator) | HELLO board, clock, counter | boot to HELLO |",
             "|---|---|---|---:|"]
    for core, b in result["boots"].items():
        lines.append(f"| `qemu:{core}` | {b['machine']} ({b['qemu']}) | {b['board']}, {b['clock_hz'] / 1e6:g} MHz, "
                     f"{b['counter']} ({b['resolution']:g} instructions per tick) | {b['boot_s']:.2f} s |")
    lines += ["", "| model | " + " | ".join(f"`qemu:{c}`" for c in TARGETS) + " |",
              "|---|" + "---:|" * len(TARGETS)]
    for name, per in result["models"].items():
        cells = []
        for core in TARGETS:
            r = per[core]
            if "error" in r:
                cells.append(f"does not fit ({r['error'].split(': ', 1)[-1][:60]})")
            else:
                cells.append(f"{r['count']:,.0f} ({r['via'].split(' (')[0]}; TFLM-exact {r['agreement']:.0%} of "
                             f"{r['agreement_n']})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--boots", type=int, default=3)
    ap.add_argument("--cache", type=Path, default=ROOT / ".pio" / "stm32-twins-models")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    ap.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    ap.add_argument("--from-json", type=Path, default=None, help="render (and --write) a --json file, measure nothing")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if args.from_json is not None:
        saved = json.loads(args.from_json.read_text())
        return report(saved, args, saved.get("commit", "?"), saved.get("started", "?"))
    args.cache.mkdir(parents=True, exist_ok=True)
    models = {"MLPerf Tiny AD01": ad01_path, "GRU hidden 32 x 30 steps": lambda: gru32(args.cache),
              "weather-gru baseline (2 x 256, 30 steps)": lambda: weather_gru(args.cache)}
    result: dict = {"commit": commit(), "started": started, "boots": {c: boots(c, args.boots) for c in TARGETS},
                    "models": {}}
    for name, model_path in models.items():
        path = model_path()
        result["models"][name] = {c: measure_one(path, c, args.repeats) for c in TARGETS}
        print(name, json.dumps(result["models"][name]), flush=True)  # noqa: T201 - a benchmark script prints
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return report(result, args, result["commit"], started)


def report(result: dict, args: argparse.Namespace, at: str, started: str) -> int:
    """Print the table and, with ``--write``, put it in BENCHMARKS.md."""
    text = table(result)
    print(text)  # noqa: T201
    if args.write:
        block = (f"{SECTION}\n\n`python bench/scripts/stm32_twins.py --write` at {at}, {started}. Instructions "
                 f"per inference under QEMU -icount shift=0 (median of {args.repeats} runs; a lower bound on cycles; "
                 f"each target's resolution is its instructions per SysTick tick). Every output byte-equal to TFLM "
                 f"on 2 seeded random inputs. The STM32 twins run the board images (firmware/port/stm32.c, bare "
                 f"build) on QEMU's model of their SoC; nothing here ran on silicon.\n\n{text}\n")
        replace_section(ROOT / "BENCHMARKS.md", SECTION, block)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
