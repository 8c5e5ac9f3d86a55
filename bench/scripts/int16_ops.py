"""int16 DEPTHWISE_CONV_2D and SOFTMAX in the device runtime (issue 30): instructions per MAC / per element beside int8.

Usage: python bench/scripts/int16_ops.py [--cores m0 m3 m4 m7 m33] [--runs 3] [--build-dir DIR]

For each core the project firmware is built (PlatformIO, into --build-dir) and run in qemu-system-arm with
-icount shift=0; over the serial protocol it loads
  * DEPTHWISE_CONV_2D 16x16x64, 3x3, SAME, per-channel filter, ReLU, at int8 (int32 bias) and at 16x8 (int16
    activations, int8 filter, int64 bias; firmware/runtime/ep_dwconv16.c), from the same generators as the tests;
  * SOFTMAX over 8 rows of 128 at int8 (ep_softmax.c) and int16 (ep_softmax16.c),
and prints the median instructions per inference divided by the MACs (depthwise) or the 1,024 elements (SOFTMAX; the
invoke's fixed cost is included), model and arena bytes, and whether every output equals TFLM's (PyPI tflite-micro)
byte for byte. QEMU counts instructions, not cycles: lower bounds on cycles, comparable only with other QEMU counts.
The M0 board's arena is 64 KB and the int16 16x16x64 input and output take 64 KB: there both precisions run
16x16x32 (the row says so).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import sys
from pathlib import Path

import numpy as np

from edgeprune.bench.firmware_build import CORE_ENVS, build

ROOT = Path(__file__).resolve().parents[2]
SOFTMAX_SHAPE = (8, 128)


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def _test_models():
    """tests/runtime as a package (its model builders import each other relatively): tflbuild, mixed_models,
    models16."""
    pkg = ROOT / "tests" / "runtime"
    spec = importlib.util.spec_from_file_location("ep_rt_tests", pkg / "__init__.py",
                                                  submodule_search_locations=[str(pkg)])
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["ep_rt_tests"] = mod
    spec.loader.exec_module(mod)
    return (importlib.import_module("ep_rt_tests.tflbuild"), importlib.import_module("ep_rt_tests.mixed_models"),
            importlib.import_module("ep_rt_tests.models16"))


def models(channels: int) -> dict[str, tuple[bytes, np.ndarray]]:
    """The depthwise convolutions (16x16xchannels) and SOFTMAX models at both precisions, with inputs."""
    tb, mm, m16 = _test_models()
    shape = (1, 16, 16, channels)
    rng = np.random.default_rng(30)
    g = tb.Graph()
    x8 = g.tensor(list(SOFTMAX_SHAPE), tb.INT8, 0.05, 3)
    y8 = g.tensor(list(SOFTMAX_SHAPE), tb.INT8, 1.0 / 256, -128)
    g.inputs, g.outputs = [x8], [y8]
    g.op(tb.S.BuiltinOperator.SOFTMAX, [x8], [y8], beta=1.0)
    return {
        "dw int8": mm.conv_int4(tb, np.random.default_rng(30), True, True, shape, (3, 3), 0, act=1, bits=8),
        "dw 16x8": m16.dwconv_16x8(tb, np.random.default_rng(30), shape, (3, 3), act=1),
        "softmax int8": (g.build(), rng.integers(-128, 128, SOFTMAX_SHAPE, dtype=np.int8)),
        "softmax int16": (m16.softmax_16(tb, SOFTMAX_SHAPE, 3e-4),
                          rng.integers(-32768, 32768, SOFTMAX_SHAPE).astype(np.int16)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cores", nargs="+", default=["m0", "m3", "m4", "m7", "m33"])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--build-dir", type=Path, default=ROOT / ".pio" / "build-mixed")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    ipm = _load("ep_kernel_ipm", ROOT / "bench" / "scripts" / "kernel_ipm.py")
    elements = SOFTMAX_SHAPE[0] * SOFTMAX_SHAPE[1]
    print(f"QEMU -icount shift=0 instructions (lower bounds on cycles), median of {args.runs} runs; every output "
          "compared byte for byte with TFLM. DEPTHWISE_CONV_2D 3x3 SAME per-channel ReLU; SOFTMAX "
          f"{SOFTMAX_SHAPE[0]} x {SOFTMAX_SHAPE[1]}, per element with the invoke's fixed cost; model = .tflite bytes, "
          "arena = the runtime's arena after load")
    hdr = (f"{'core':5} {'dw shape':9} {'int8 i/MAC':>10} {'16x8 i/MAC':>10} {'16x8/int8':>9} {'model B 8/16':>13} "
           f"{'arena B 8/16':>13} {'sm8 i/el':>8} {'sm16 i/el':>9} {'TFLM-exact':>10}")
    print(hdr)
    print("-" * len(hdr))
    failed = False
    for core in args.cores:
        channels = 32 if core == "m0" else 64
        ms = models(channels)
        elf = build(CORE_ENVS[core], build_dir=args.build_dir).elf
        rows = ipm.run_core(core, elf, ms, args.runs)
        r8, r16 = rows["dw int8"], rows["dw 16x8"]
        i8, i16 = r8["median"] / r8["macs"], r16["median"] / r16["macs"]
        s8, s16 = rows["softmax int8"]["median"] / elements, rows["softmax int16"]["median"] / elements
        exact = all(r["exact"] for r in rows.values())
        failed |= not exact
        model_b = f"{len(ms['dw int8'][0])}/{len(ms['dw 16x8'][0])}"
        arena_b = f"{r8['arena']}/{r16['arena']}"
        print(f"{core:5} {f'16x16x{channels}':9} {i8:>10.3f} {i16:>10.3f} {i16 / i8:>9.2f} {model_b:>13} {arena_b:>13} "
              f"{s8:>8.1f} {s16:>9.1f} {'yes' if exact else 'NO':>10}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
