"""MLPerf Tiny anomaly-detection model (AD01) on every QEMU core: instructions per inference and per MAC.

Usage: python bench/scripts/mlperf_ad01.py [--model PATH] [--cores m0 m3 m4 m7 m33] [--repeats 3]

Each core runs the unmodified int8 model (QUANTIZE, 10 x FULLY_CONNECTED, DEQUANTIZE; 264,192 MACs)
in the project firmware under QEMU with -icount. QEMU counts instructions, not cycles: every Cortex-M
instruction takes at least one cycle, so these are LOWER BOUNDS on cycles. The published whole-model
results (cycles/MAC from latency x clock / MACs) are printed beside them for scale; they come from
other runtimes (TFLM + CMSIS-NN, X-CUBE-AI, ...) on real silicon.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from edgeprune.bench.energy import cross_check, load_table
from edgeprune.bench.errors import MeasureError
from edgeprune.bench.firmware_build import build
from edgeprune.bench.link import LinkError
from edgeprune.bench.model_bench import bench_model
from edgeprune.bench.qemu import MACHINES, QemuError
from edgeprune.bench.reference import ad01_path

AD01_DEFAULT = ad01_path()  # shipped in bench/reference/, SHA-256 checked
MACS = 264_192

# bench/reference/README.md (MLPerf Tiny v0.5-v1.3 result files; cycles on silicon).
PUBLISHED = [
    ("m4", "NUCLEO-L4R5ZI @120", "TFLM + CMSIS-NN (reference)", 10.05, 4.57, 416),
    ("m4", "NUCLEO-L4R5ZI @120", "microTVM + CMSIS-NN", 8.6, 3.91, 443),
    ("m4", "NUCLEO-L4R5ZI @120", "X-CUBE-AI 9.0", 5.26, 2.39, 203),
    ("m4", "NUCLEO-L4R5ZI @120", "Plumerai", 4.05, 1.84, None),
    ("m0", "NUCLEO-G0B1RE @64 (M0+)", "Bosch HALE", 40.9, 9.9, None),
    ("m7", "NUCLEO-H7A3ZI-Q @280", "X-CUBE-AI 9.0", 1.23, 1.30, 166),
    ("m33", "nRF5340 @128", "microTVM + CMSIS-NN", 6.27, 3.04, None),
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=AD01_DEFAULT)
    ap.add_argument("--cores", nargs="+", default=["m0", "m3", "m4", "m7", "m33"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--agreement", type=int, default=2, help="random inputs checked against the TFLM oracle")
    ap.add_argument("--build-dir", type=Path, default=None,
                    help="build the firmware here (PlatformIO build dir) instead of using .pio/build")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    if not args.model.is_file():
        print(f"error: model {args.model} not found", file=sys.stderr)
        return 2
    print(f"MLPerf Tiny AD01 ({args.model.name}, {args.model.stat().st_size:,} bytes, {MACS:,} MACs/inference)")
    print("QEMU -icount counts INSTRUCTIONS: a lower bound on cycles on real silicon (loads, multiplies and taken")
    print("branches take more than one cycle on Cortex-M3/M4/M7/M33; M0 multiplies may too).\n")
    head = (f"{'core':5} {'QEMU machine':13} {'instructions/inference':>23} {'instr/MAC':>10} "
            f"{'IQR':>6} {'TFLM agreement':>15} {'model energy (lower bound)':>28} {'wall s':>7}  firmware build")
    print(head)
    print("-" * len(head))
    failed = 0
    for core in args.cores:
        t0 = time.monotonic()
        try:
            elf = None
            if args.build_dir is not None:
                elf = build(core, build_dir=args.build_dir).elf
            m = bench_model(args.model, f"qemu:{core}", repeats=args.repeats, warmup=1, agreement=args.agreement,
                            timeout_s=120.0, elf=elf)
        except (LinkError, MeasureError, QemuError, OSError, RuntimeError) as exc:  # BuildError is a RuntimeError
            lines = str(exc).strip().splitlines()
            why = lines[0] if len(lines) < 3 else f"{lines[0]} ... {lines[-3].strip()}"
            print(f"{core:5} {MACHINES[core].machine:13} FAILED: {type(exc).__name__}: {why}")
            failed += 1
            continue
        count = m.figures["count"]
        agree = m.agreement.byte_equal_rate.value if m.agreement else float("nan")
        n_agree = m.agreement.n if m.agreement else 0
        energy = m.figures["energy_model"]
        e_txt = (f"{energy.value:.0f} uJ @{energy.extra.get('row', '?')}" if energy.known else "no cited row")
        print(f"{core:5} {MACHINES[core].machine:13} {count.value:>23,.0f} {count.value / MACS:>10.2f} "
              f"{m.stats.iqr:>6.0f} {agree:>9.0%} of {n_agree:<2} {e_txt:>28} {time.monotonic() - t0:>7.1f}  "
              f"{m.target['build_id']}")
    print("\nPublished whole-model results (cycles/MAC = latency x clock / 264,192; real silicon, other runtimes):")
    print(f"{'core':5} {'board @MHz':24} {'runtime':30} {'latency ms':>10} {'cycles/MAC':>10} {'uJ/inf':>7}")
    for core, board, runtime, ms, cpm, uj in PUBLISHED:
        print(f"{core:5} {board:24} {runtime:30} {ms:>10.2f} {cpm:>10.2f} {uj if uj is not None else '-':>7}")

    print("\nEnergy-model cross-check (model = published cycles x cited energy per cycle, vs published uJ):")
    for row in load_table().rows.values():
        cc = cross_check(row, MACS)
        if cc is not None:
            print(f"  {row.mcu}: {row.pj_per_cycle:.0f} pJ/cycle ({row.source.split(':')[0]}) -> "
                  f"{cc['modelled_uj']:.0f} uJ modelled vs {cc['published_uj']:.0f} uJ published "
                  f"(ratio {cc['ratio']:.2f})")
    print("\nInstructions are a lower bound on cycles: compare the ratio, not the absolute numbers.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
