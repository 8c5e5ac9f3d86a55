"""Instructions per MAC of the runtime's int8 FULLY_CONNECTED kernel on every QEMU core.

Usage: python bench/scripts/kernel_ipm.py [--cores m0 m3 m4 m7 m33] [--runs 5] [--build-dir DIR]

For each core the project firmware is built (PlatformIO, into --build-dir so the normal build is left
alone) and run in qemu-system-arm with -icount shift=0; over the serial protocol it loads
  * a 256x256 int8 FULLY_CONNECTED (65,536 MACs), and
  * MLPerf Tiny's AD01 (QUANTIZE, 10 x FULLY_CONNECTED, DEQUANTIZE; 264,192 MACs),
checks the device's outputs byte for byte against TFLM, and prints the median instruction count per
inference divided by the MACs. QEMU counts instructions, not cycles: the figures are LOWER BOUNDS on
cycles. Published whole-model cycles/MAC for AD01 (other runtimes, real silicon) are printed beside them.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import sys
from pathlib import Path

import numpy as np
from tflite_micro.python.tflite_micro import runtime

from edgeprune.bench.firmware_build import CORE_ENVS, build
from edgeprune.bench.link import Device
from edgeprune.bench.qemu import QemuBoard
from edgeprune.bench.reference import ad01_path
from edgeprune.bench.tflm import ORACLE_ARENA_DEFAULT

ROOT = Path(__file__).resolve().parents[2]
AD01 = ad01_path()  # shipped in bench/reference/, SHA-256 checked
AD01_MACS = 264_192
# bench/reference/README.md (MLPerf Tiny result files, cycles on silicon): best published cycles/MAC per core for AD01, with the runtime.
PUBLISHED = {
    "m0": "9.9 (M0+, Bosch HALE)",
    "m3": "-",
    "m4": "4.57 (TFLM+CMSIS-NN) / 1.84 (Plumerai)",
    "m7": "1.30 (X-CUBE-AI 9.0)",
    "m33": "3.04 (microTVM+CMSIS-NN)",
}
TARGET = {"m0": 4.0, "m4": 1.5}


def _builder():
    """The test suite's flatbuffer builder, loaded by path (it imports only flatbuffers and numpy)."""
    path = ROOT / "tests" / "runtime" / "tflbuild.py"
    spec = importlib.util.spec_from_file_location("ep_tflbuild", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look themselves up there
    spec.loader.exec_module(mod)
    return mod


def fc_model(n: int = 256, seed: int = 0) -> bytes:
    tb = _builder()
    rng = np.random.default_rng(seed)
    g = tb.Graph()
    x = g.tensor([1, n], tb.INT8, 0.05, -3)
    w = g.tensor([n, n], tb.INT8, 0.004, 0, data=rng.integers(-127, 128, (n, n), dtype=np.int8))
    b = g.tensor([n], tb.INT32, 0.0002, 0, data=rng.integers(-5000, 5000, n, dtype=np.int32))
    y = g.tensor([1, n], tb.INT8, 0.2, 4)
    g.inputs, g.outputs = [x], [y]
    g.op(tb.S.BuiltinOperator.FULLY_CONNECTED, [x, w, b], [y])
    return g.build()


def tflm_output(tflite: bytes, x: np.ndarray) -> bytes:
    it = runtime.Interpreter.from_bytes(tflite, arena_size=ORACLE_ARENA_DEFAULT)
    it.set_input(x, 0)
    it.invoke()
    return np.array(it.get_output(0)).tobytes()


def run_core(core: str, elf: Path, models: dict[str, tuple[bytes, np.ndarray]], runs: int) -> dict[str, dict]:
    rows: dict[str, dict] = {}
    with QemuBoard(core, elf=elf) as board, Device.open(board.url, 30.0) as dev:
        hello = dev.hello()
        for name, (tflite, x) in models.items():
            load = dev.load_model(tflite)
            dev.set_sequence(1, 0, [])
            dev.set_input(0, x.tobytes())
            res = dev.infer(runs)
            exact = res.outputs[0] == tflm_output(tflite, x)
            rows[name] = {"median": res.median, "min": res.min, "macs": load.macs, "arena": load.arena_used,
                          "exact": exact, "unit": hello.unit, "scale": hello.counter_scale}
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cores", nargs="+", default=["m0", "m3", "m4", "m7", "m33"])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--build-dir", type=Path, default=ROOT / ".pio" / "build-ipm")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    rng = np.random.default_rng(1)
    models = {"fc256": (fc_model(), rng.integers(-128, 128, (1, 256), dtype=np.int8))}
    if AD01.is_file():
        models["ad01"] = (AD01.read_bytes(), rng.normal(0, 3, (1, 640)).astype(np.float32))
    else:
        print(f"warning: {AD01} missing; AD01 row skipped", file=sys.stderr)

    print("QEMU -icount shift=0: instruction counts (a lower bound on cycles), median of "
          f"{args.runs} runs; outputs compared byte for byte with TFLM")
    hdr = f"{'core':5} {'model':6} {'MACs':>8} {'instr/inf':>10} {'instr/MAC':>9} {'target':>6} {'TFLM-exact':>10}  published cycles/MAC (AD01)"
    print(hdr)
    print("-" * len(hdr))
    failed = False
    for core in args.cores:
        elf = build(CORE_ENVS[core], build_dir=args.build_dir).elf
        rows = run_core(core, elf, models, args.runs)
        for name, r in rows.items():
            ipm = r["median"] / r["macs"]
            tgt = TARGET.get(core) if name == "fc256" else None
            ok = r["exact"] and (tgt is None or ipm <= tgt)
            failed |= not ok
            print(f"{core:5} {name:6} {r['macs']:>8} {r['median']:>10} {ipm:>9.3f} {tgt or '-':>6} "
                  f"{'yes' if r['exact'] else 'NO':>10}  {PUBLISHED.get(core, '-') if name == 'ad01' else ''}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
