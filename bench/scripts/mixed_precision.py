"""Mixed precision per layer (issue 30): the kernels' instructions per MAC beside int8, and the export figures.

Usage: python bench/scripts/mixed_precision.py kernels [--cores m0 m3 m4 m7 m33] [--runs 3] [--n 256]
       python bench/scripts/mixed_precision.py sizes    [--tasks weather digits]

``kernels``: for each core the project firmware is built (PlatformIO, into --build-dir) and run in qemu-system-arm
with -icount shift=0; over the serial protocol it loads three n x n FULLY_CONNECTED models of the same shape (int8,
int4 weights with int8 activations, 16x8) and prints the median instructions per inference divided by the MACs,
each output compared byte for byte with TFLM (PyPI tflite-micro). QEMU counts instructions, not cycles: lower
bounds on cycles, comparable only with other QEMU counts. Target (issue 30): int4 on M4 <= 1.3x int8.

``sizes``: exports the task's baseline at int8 and with every FULLY_CONNECTED / CONV_2D weight in int4
(edgeprune.export.precision), and prints .tflite bytes, weight bytes and the validation metric in TFLM.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
INT4_TARGET_M4 = 1.3


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look themselves up there
    spec.loader.exec_module(mod)
    return mod


def kernel_models(n: int) -> dict[str, tuple[bytes, np.ndarray]]:
    """int8, int4-weight and 16x8 FULLY_CONNECTED of shape n x n, with inputs."""
    ipm = _load("ep_kernel_ipm", ROOT / "bench" / "scripts" / "kernel_ipm.py")
    tb = ipm._builder()
    mm = _load("ep_mixed_models", ROOT / "tests" / "runtime" / "mixed_models.py")
    rng = np.random.default_rng(30)
    return {
        "int8": (ipm.fc_model(n), rng.integers(-128, 128, (1, n), dtype=np.int8)),
        "int4": mm.fc_int4(tb, rng, n, n),
        "16x8": mm.fc_16x8(tb, rng, n, n),
    }


def kernels(args: argparse.Namespace) -> int:
    from edgeprune.bench.firmware_build import CORE_ENVS, build

    ipm = _load("ep_kernel_ipm", ROOT / "bench" / "scripts" / "kernel_ipm.py")
    models = kernel_models(args.n)
    print(f"QEMU -icount shift=0 instructions (lower bounds on cycles), median of {args.runs} runs, "
          f"{args.n}x{args.n} FULLY_CONNECTED; outputs compared byte for byte with TFLM")
    hdr = f"{'core':5} {'int8 i/MAC':>10} {'int4 i/MAC':>10} {'int4/int8':>9} {'16x8 i/MAC':>10} {'16x8/int8':>9} {'TFLM-exact':>10}"
    print(hdr)
    print("-" * len(hdr))
    failed = False
    for core in args.cores:
        elf = build(CORE_ENVS[core], build_dir=args.build_dir).elf
        rows = ipm.run_core(core, elf, models, args.runs)
        ipmac = {k: r["median"] / r["macs"] for k, r in rows.items()}
        exact = all(r["exact"] for r in rows.values())
        ratio4, ratio16 = ipmac["int4"] / ipmac["int8"], ipmac["16x8"] / ipmac["int8"]
        failed |= not exact or (core == "m4" and ratio4 > INT4_TARGET_M4)
        print(f"{core:5} {ipmac['int8']:>10.3f} {ipmac['int4']:>10.3f} {ratio4:>9.2f} {ipmac['16x8']:>10.3f} "
              f"{ratio16:>9.2f} {'yes' if exact else 'NO':>10}")
    print(f"target: int4 on M4 <= {INT4_TARGET_M4}x int8")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("kernels")
    k.add_argument("--cores", nargs="+", default=["m0", "m3", "m4", "m7", "m33"])
    k.add_argument("--runs", type=int, default=3)
    k.add_argument("--n", type=int, default=256)
    k.add_argument("--build-dir", type=Path, default=ROOT / ".pio" / "build-mixed")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return kernels(args)


if __name__ == "__main__":
    sys.exit(main())
