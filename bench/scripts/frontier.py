"""Issue 31: the runtime against the fastest published engines, per model and per op.

Usage: python bench/scripts/frontier.py [--cores m4 m33] [--models kws ic vww ad01] [--build-dir DIR]
                                        [--markdown FILE] [--no-profile]

For every MLPerf Tiny model (KWS, IC, VWW from bench/reference; AD01) and core:
  * the firmware's own QEMU instruction count per inference (-icount shift=0; label `qemu`), on a random input,
    output compared byte for byte with TFLM's (tflite-micro);
  * the target: instructions <= the fastest published cycles on that core's reference board (NUCLEO-L4R5ZI M4 @
    120 MHz / NUCLEO-U575ZI-Q M33 @ 160 MHz, MLPerf Tiny closed division; bench/reference/README.md);
  * on M4 (and M3), the cycle model (bench/cycle_model.py; label `model`): QEMU's executed-block trace priced
    with the Cortex-M4 TRM timing table, instruction fetch from flash at 5 wait states (120 MHz) behind a 1 KB
    instruction cache, data at zero wait states; beside the published silicon cycles;
  * a per-op table: instructions, instructions/MAC and model cycles per layer (TFLM + CMSIS-NN has whole-model
    counts only on the same QEMU; they are quoted per model).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as S

from edgeprune.bench.firmware_build import CORE_ENVS, build
from edgeprune.bench.qemu_profile import op_profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runtime_matrix import TFLM_QEMU, Bench, _tflm, ad01_path, run_core  # noqa: E402

from edgeprune.bench.reference import MLPERF, mlperf_bytes  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
LARGE_FLAGS = "-DEP_MODEL_MAX=409600 -DEP_ARENA_BYTES=163840"
# Fastest published closed-division latencies (ms) and the board clock (MHz): cycles = ms x MHz x 1000
# (bench/reference/README.md, issue 31; results files mlcommons/tiny_results_v1.1-v1.3).
PUBLISHED_MS = {
    "m4": (120, {"ad01": (4.052, "Plumerai v1.1"), "kws": (43.19, "X-CUBE-AI 9.0 v1.2"),
                 "ic": (165.1, "X-CUBE-AI 9.0 v1.2"), "vww": (88.93, "X-CUBE-AI 9.0 v1.2")}),
    "m33": (160, {"ad01": (3.209, "X-CUBE-AI 10.2 v1.3"), "kws": (29.00, "X-CUBE-AI 10.2 v1.3"),
                  "ic": (104.3, "Plumerai v1.1"), "vww": (59.27, "X-CUBE-AI 10.2 v1.3")}),
}
PUBLISHED = {core: {m: (round(ms * mhz * 1000), who) for m, (ms, who) in models.items()}
             for core, (mhz, models) in PUBLISHED_MS.items()}
MODELLED = ("m3", "m4")


def model_bytes(name: str) -> bytes:
    if name == "ad01":
        path = ad01_path()
        if path is None:
            raise SystemExit("AD01 not found in the repository")
        return path.read_bytes()
    return mlperf_bytes(name)


def bench_of(name: str, rng: np.random.Generator) -> Bench:
    tfl = model_bytes(name)
    if name == "ad01":
        x = rng.normal(0, 3, (1, 640)).astype(np.float32)
    else:
        x = rng.integers(-128, 128, MLPERF[name].input_shape, dtype=np.int8)
    return Bench(name, tfl, x.tobytes(), _tflm(tfl, [x]))


def layers(tflite: bytes) -> list[dict]:
    """Op type, output shape and MACs per op in execution order (CONV/DEPTHWISE/FC MACs; others 0)."""
    names = {v: k for k, v in vars(S.BuiltinOperator).items() if not k.startswith("_") and isinstance(v, int)}
    m = S.ModelT.InitFromObj(S.Model.GetRootAsModel(bytearray(tflite), 0))
    sg = m.subgraphs[0]
    out = []
    for op in sg.operators:
        code = m.operatorCodes[op.opcodeIndex]
        kind = names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "?")
        ys = [int(d) for d in sg.tensors[op.outputs[0]].shape]
        macs = 0
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            ws = [int(d) for d in sg.tensors[op.inputs[1]].shape]
            per_out = int(np.prod(ws[1:])) if kind != "DEPTHWISE_CONV_2D" else ws[1] * ws[2]
            macs = int(np.prod(ys)) * per_out
        out.append({"kind": kind, "shape": "x".join(map(str, ys[1:])), "macs": macs})
    return out


def build_elf(core: str, build_dir: Path) -> Path:
    saved = os.environ.get("PLATFORMIO_BUILD_FLAGS")
    os.environ["PLATFORMIO_BUILD_FLAGS"] = LARGE_FLAGS
    try:
        return build(CORE_ENVS[core], build_dir=build_dir / core).elf
    finally:
        os.environ.pop("PLATFORMIO_BUILD_FLAGS", None)
        if saved is not None:
            os.environ["PLATFORMIO_BUILD_FLAGS"] = saved


def op_table(name: str, tflite: bytes, prof) -> list[str]:
    info = layers(tflite)
    lines = [f"#### {name.upper()} on {prof.core.upper()}, per op", "",
             "| # | op | output | MACs | instructions (qemu) | instr/MAC | cycles (model) | cycles/MAC (model) |",
             "|---:|---|---|---:|---:|---:|---:|---:|"]
    for row in prof.ops:
        k = row["op"]
        lay = info[k] if k < len(info) else {"kind": "?", "shape": "?", "macs": 0}
        macs = lay["macs"]
        ipm = f"{row['instructions'] / macs:.2f}" if macs else "-"
        cyc = f"{row['cycles']:,.0f}" if prof.estimate is not None else "-"
        cpm = f"{row['cycles'] / macs:.2f}" if macs and prof.estimate is not None else "-"
        lines.append(f"| {k} | {lay['kind']} | {lay['shape']} | {macs:,} | {row['instructions']:,.0f} | {ipm} | "
                     f"{cyc} | {cpm} |")
    return lines + [""]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cores", nargs="+", default=["m4", "m33"])
    ap.add_argument("--models", nargs="+", default=["kws", "ic", "vww", "ad01"])
    ap.add_argument("--build-dir", type=Path, default=ROOT / ".pio" / "build-frontier")
    ap.add_argument("--markdown", type=Path, default=None)
    ap.add_argument("--no-profile", action="store_true", help="skip the traced per-op / cycle-model runs")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    rng = np.random.default_rng(31)
    benches = [bench_of(n, rng) for n in args.models]
    summary = ["| model | core | MACs | instructions (qemu) | instr/MAC | TFLM + CMSIS-NN (qemu) | fastest published "
               "cycles (silicon) | instr <= published | cycles (model) | model / published | TFLM-exact |",
               "|---|---|---:|---:|---:|---:|---:|---|---:|---:|---|"]
    targets, tables, bad = [], [], []
    for core in args.cores:
        elf = build_elf(core, args.build_dir)
        rows = run_core(core, elf, benches, 3)
        for b in benches:
            r = rows[b.name]
            if r["count"] is None:
                summary.append(f"| {b.name} | {core} | - | does not load | | | | | | | |")
                continue
            pub, who = PUBLISHED.get(core, {}).get(b.name, (None, ""))
            tf = TFLM_QEMU.get((b.name, core))
            est = None
            if core in MODELLED and not args.no_profile:
                with_manifest = args.build_dir / f"{b.name}.tflite"
                with_manifest.write_bytes(b.tflite)
                prof = op_profile(with_manifest, core, runs=1, elf=elf)
                est = prof.estimate
                tables += op_table(b.name, b.tflite, prof)
            met = pub is not None and r["count"] <= pub
            cyc = f"{est.total:,.0f}" if est else "-"
            ratio = f"{est.total / pub:.2f}" if est and pub else "-"
            summary.append(f"| {b.name.upper()} | {core.upper()} | {r['macs']:,} | {r['count']:,} | "
                           f"{r['count'] / r['macs']:.2f} | {f'{tf[1]:,}' if tf else '-'} | "
                           f"{f'{pub:,} ({who})' if pub else '-'} | {'yes' if met else 'no'} | {cyc} | "
                           f"{ratio} | {'yes' if r['exact'] else 'NO'} |")
            if pub:
                targets.append(f"- {b.name.upper()} on {core.upper()}: {r['count']:,} instructions vs {pub:,} "
                               f"published cycles -> {'MET' if met else 'NOT MET'} (stretch 0.8x = {0.8 * pub:,.0f}: "
                               f"{'MET' if r['count'] <= 0.8 * pub else 'NOT MET'})")
            if est:
                targets.append(f"  cycle model ({core.upper()} @ {est.clock_mhz:g} MHz, {est.flash_ws} flash wait "
                               f"states): {est.cycles:,} cycles at zero wait + {est.fetch_stall:,} fetch stall = "
                               f"{est.total:,} (CPI {est.cpi:.2f}, {est.ms:.2f} ms)")
            if not r["exact"]:
                bad.append((core, b.name))
    commit = subprocess.run(["git", "log", "-1", "--format=%h"], cwd=ROOT, capture_output=True, text=True, timeout=30,
                            check=False).stdout.strip()
    head = [f"Command: `python bench/scripts/frontier.py {' '.join(argv if argv is not None else sys.argv[1:])}` — "
            f"{dt.date.today().isoformat()}, commit {commit}; instructions: QEMU -icount shift=0 (qemu), median of 3; "
            "cycles: bench/cycle_model.py (model), never a measurement.", ""]
    text = "\n".join(head + summary + ["", "Targets:"] + targets + [""] + tables)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    if bad:
        print(f"NOT TFLM-exact: {bad}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
