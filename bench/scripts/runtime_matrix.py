"""Runtime micro-benchmark matrix (issue 13): instructions per inference and per MAC on every QEMU core.

Usage: python bench/scripts/runtime_matrix.py [--cores m0 m3 m4 m7 m33] [--runs 3] [--build-dir DIR]
                                              [--no-op-by-op] [--markdown FILE]

Models (random weights; GRUs and MLPs go through the real exporter, edgeprune.export.export_model):
  * streaming GRUs, 4 features, T = 30 steps, 5 classes: one layer of hidden 16/32/64/128/256, and the
    weather baseline's 2 x 256 (597,253 parameters);
  * MLP policies 4-64-64-2 (the CartPole DQN), 4-32-32-2, 4-16-16-2;
  * one int8 FULLY_CONNECTED 256 x 256 (+bias), MLPerf Tiny AD01 (from the repository, see `ad01_path`);
  * MLPerf Tiny KWS (DS-CNN: CONV_2D, DEPTHWISE_CONV_2D, AVERAGE_POOL_2D, FC, SOFTMAX), IC (ResNet-8) and VWW
    (MobileNetV1 0.25) from bench/reference (SHA-256 checked), each on a random and an all-zero int8 input; IC and
    VWW exceed the default firmware's 64 KB model buffer / 32 KB arena, so they run in a third build of each core
    with larger buffers (LARGE_FLAGS, same runtime code; M0's 512 KB RAM holds IC only);
  * overhead probes: a chain of 1-element int8 ops (instructions per op) and a 1-element recurrent cell
    in sequence mode (instructions per step).
For each core the firmware is built twice (PlatformIO, into --build-dir): the default (fused GRU step) and
the op-by-op reference (-DEP_RT_DEFAULT_FLAGS=1). Every output is compared byte for byte with TFLM
(bench.tflm.TflmRunner: the same sequence loop). QEMU -icount shift=0 counts instructions, a lower bound
on cycles; TFLM figures beside ours are the same QEMU's counts (TFLM_QEMU below, copied from the team's
shared benchmark notes).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tflite_micro.python.tflite_micro import runtime

from edgeprune.bench.firmware_build import CORE_ENVS, build
from edgeprune.bench.link import Device, DeviceError
from edgeprune.bench.qemu import QemuBoard
from edgeprune.bench.tflm import TflmRunner
from edgeprune.export.pipeline import export_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kernel_ipm import _builder, fc_model  # noqa: E402  (sibling script: same FC model, same builder)

from edgeprune.bench.reference import MLPERF, TFLM_SAME_QEMU, mlperf_bytes, tflm_same_qemu  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
STEPS = 30
FEATURES = 4
CLASSES = 5
GRUS = {"gru16": [16], "gru32": [32], "gru64": [64], "gru128": [128], "gru256": [256], "gru2x256": [256, 256]}
MLPS = {"mlp4-64-64-2": [4, 64, 64, 2], "mlp4-32-32-2": [4, 32, 32, 2], "mlp4-16-16-2": [4, 16, 16, 2]}
# TFLM (tflite-micro 90b983c2) reference kernels / + CMSIS-NN (4ab83cc3), arm-none-eabi-gcc 12.2 -O2, same
# qemu-system-arm 7.2 -icount shift=0, instructions per Invoke() (team benchmark notes, measured there).
# FC 256x256 there has a fused ReLU; ours has none (the ReLU is a clamp in the same requantisation pass).
TFLM_QEMU = {
    ("ad01", "m4"): (2_044_240, 674_840), ("ad01", "m7"): (1_968_880, 603_160), ("ad01", "m3"): (2_144_440, 1_148_080),
    ("fc256", "m4"): (409_200, 138_120), ("fc256", "m7"): (408_680, 138_120), ("fc256", "m3"): (409_160, 230_800),
}
# KWS/IC/VWW: TFLM's own cortex_m_generic flags, same QEMU (bench/reference/README.md; one copy, in
# edgeprune.bench.reference).
TFLM_QEMU.update({(r.model, r.core): (tflm_same_qemu(r.core, r.model, "reference") or 0, r.instructions)
                  for r in TFLM_SAME_QEMU if r.model in MLPERF and r.kernels == "cmsis-nn"})
LARGE_FLAGS = "-DEP_MODEL_MAX=409600 -DEP_ARENA_BYTES=163840"  # mps2 boards: 4 MB RAM
LARGE_FLAGS_M0 = "-DEP_MODEL_MAX=131072 -DEP_ARENA_BYTES=65536"  # the M0 board's 512 KB RAM: IC only
LARGE_MODELS = ("ic", "ic-zero", "vww", "vww-zero")
OP_CHAIN = 64  # ops in the per-op probe
TICK: dict[str, float] = {}  # per core: instructions per SysTick tick (counts are whole ticks)


def ad01_path() -> Path | None:
    """AD01 as the repository holds it (a tracked .tflite), else the path the runtime tests use."""
    try:
        files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, timeout=30,
                               check=True).stdout.split()
    except (OSError, subprocess.SubprocessError):
        files = []
    tracked = [ROOT / f for f in files if "ad01" in f.lower() and f.endswith(".tflite")]
    for p in [*tracked, ROOT / "bench" / "reference" / "mlperf_tiny_ad01_int8.tflite"]:
        if p.is_file():
            return p
    return None


@dataclass
class Bench:
    """One benchmark model.

    :param name: row label
    :param tflite: the flatbuffer
    :param x: input bytes for one inference (the whole stream in sequence mode)
    :param ref: TFLM's bytes for the checked output
    :param out_index: which output ``ref`` is
    :param sequence: manifest ``sequence`` block, or None for single-step models
    """

    name: str
    tflite: bytes
    x: bytes
    ref: bytes
    out_index: int = 0
    sequence: dict | None = None
    extra_inputs: dict[int, bytes] = field(default_factory=dict)


def _export(name: str, model, calib: np.ndarray, cache: Path) -> tuple[bytes, dict]:
    out = cache / name
    if not (out / "model.tflite").is_file():
        export_model(model, calib, out)
    return (out / "model.tflite").read_bytes(), json.loads((out / "manifest.json").read_text())


def exported_models(cache: Path, rng: np.random.Generator) -> list[Bench]:
    # Deferred (torch, 1-2 s): frontier.py imports this module's helpers and needs no torch.
    import torch

    from edgeprune.host.models.gru import StackedGRU
    from edgeprune.host.models.mlp import MLP

    torch.set_num_threads(1)
    benches = []
    for k, (name, hidden) in enumerate(GRUS.items()):
        torch.manual_seed(k)
        calib = np.random.default_rng(k).normal(0, 1, (64, STEPS, FEATURES)).astype(np.float32)
        tflite, man = _export(name, StackedGRU(FEATURES, hidden, CLASSES, seq_len=STEPS).eval(), calib, cache)
        seq = man["sequence"]
        x = rng.integers(-128, 128, (seq["steps"], *man["inputs"][seq["stream_input"]]["shape"][1:]), dtype=np.int8)
        benches.append(Bench(name, tflite, x.tobytes(), TflmRunner(tflite, man).run(x).tobytes(), seq["output"], seq))
    for k, (name, sizes) in enumerate(MLPS.items()):
        torch.manual_seed(100 + k)
        calib = np.random.default_rng(100 + k).normal(0, 1, (256, sizes[0])).astype(np.float32)
        tflite, man = _export(name, MLP(sizes).eval(), calib, cache)
        x = rng.integers(-128, 128, tuple(man["inputs"][0]["shape"]), dtype=np.int8)
        benches.append(Bench(name, tflite, x.tobytes(), TflmRunner(tflite, man).run(x).tobytes()))
    return benches


def _tflm(tflite: bytes, inputs: list[np.ndarray]) -> bytes:
    it = runtime.Interpreter.from_bytes(tflite, arena_size=1 << 20)
    for i, v in enumerate(inputs):
        it.set_input(v, i)
    it.invoke()
    return np.array(it.get_output(0)).tobytes()


def builder_models(rng: np.random.Generator) -> list[Bench]:
    tb = _builder()
    op = tb.S.BuiltinOperator
    fc = fc_model()
    xf = rng.integers(-128, 128, (1, 256), dtype=np.int8)
    out = [Bench("fc256", fc, xf.tobytes(), _tflm(fc, [xf]))]
    # Per-op probe: n chained 1-element int8 requantisations; (count(64) - count(0 ops beyond one)) / 63.
    for n in (1, OP_CHAIN):
        g = tb.Graph()
        prev = g.tensor([1, 1], tb.INT8, 0.05, 0)
        g.inputs = [prev]
        for k in range(n):
            nxt = g.tensor([1, 1], tb.INT8, 0.05 + 0.001 * (k % 2), 0)
            g.op(op.QUANTIZE, [prev], [nxt])
            prev = nxt
        g.outputs = [prev]
        buf = g.build()
        v = np.array([[17]], np.int8)
        out.append(Bench(f"probe-ops{n}", buf, v.tobytes(), _tflm(buf, [v])))
    # Per-step probe: x, h -> h' = ADD(x, h) in sequence mode, 1 and 101 steps.
    g = tb.Graph()
    xs, hs = g.tensor([1, 1], tb.INT8, 0.05, 0), g.tensor([1, 1], tb.INT8, 0.1, 0)
    ho = g.tensor([1, 1], tb.INT8, 0.11, 1)
    g.inputs, g.outputs = [xs, hs], [ho]
    g.op(op.ADD, [xs, hs], [ho])
    cell = g.build()
    for steps in (1, 101):
        seq = {"steps": steps, "stream_input": 0, "recurrent": [[0, 1]]}
        out.append(Bench(f"probe-steps{steps}", cell, bytes(steps), b"", 0, seq))
    return out


def ad01_models(rng: np.random.Generator) -> list[Bench]:
    path = ad01_path()
    if path is None:
        logging.warning("AD01 not found in the repository; its rows are skipped")
        return []
    tfl = path.read_bytes()
    xr = rng.normal(0, 3, (1, 640)).astype(np.float32)
    xz = np.zeros((1, 640), np.float32)
    return [Bench("ad01", tfl, xr.tobytes(), _tflm(tfl, [xr])), Bench("ad01-zero", tfl, xz.tobytes(), _tflm(tfl, [xz]))]


def mlperf_conv_models(rng: np.random.Generator) -> list[Bench]:
    out = []
    for name in ("kws", "ic", "vww", "sww"):
        tfl, shape = mlperf_bytes(name), MLPERF[name].input_shape
        xr = rng.integers(-128, 128, shape, dtype=np.int8)
        xz = np.zeros(shape, np.int8)
        out += [Bench(name, tfl, xr.tobytes(), _tflm(tfl, [xr])), Bench(f"{name}-zero", tfl, xz.tobytes(), _tflm(tfl, [xz]))]
    return out


def run_core(core: str, elf: Path, benches: list[Bench], runs: int) -> dict[str, dict]:
    rows: dict[str, dict] = {}
    with QemuBoard(core, elf=elf) as board, Device.open(board.url, 60.0) as dev:
        TICK[core] = float(dev.hello().counter_scale)  # instructions per counter tick: the resolution
        for b in benches:
            try:
                load = dev.load_model(b.tflite)
            except DeviceError as exc:  # e.g. the model is larger than the board's model buffer
                logging.warning("%s on %s: %s", b.name, core, exc)
                rows[b.name] = {"count": None, "macs": 0, "exact": True, "arena": 0, "why": str(exc)}
                continue
            seq = b.sequence or {"steps": 1, "stream_input": 0, "recurrent": []}
            dev.set_sequence(seq["steps"], seq["stream_input"], seq["recurrent"])
            dev.set_input(seq["stream_input"], b.x)
            res = dev.infer(runs, timeout_s=300.0)
            exact = not b.ref or res.outputs[b.out_index] == b.ref
            macs = load.macs * seq["steps"]  # the load reply counts one step
            rows[b.name] = {"count": res.median, "macs": macs, "exact": exact, "arena": load.arena_used}
    return rows


def _fmt(v: float | None, spec: str = ",.0f") -> str:
    return "-" if v is None else format(v, spec)


def report(results: dict[str, dict[str, dict]], ops: dict[str, dict[str, dict]], cores: list[str]) -> list[str]:
    lines = ["| model | core | MACs | instr/inference | instr/MAC | op-by-op instr | TFLM ref | TFLM+CMSIS-NN | "
             "vs CMSIS-NN | TFLM-exact |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    names = list(dict.fromkeys(n for rows in results.values() for n in rows if not n.startswith("probe")))
    for name in names:
        for core in cores:
            r = results[core].get(name)
            if r is None:  # not run on this core (does not fit its RAM)
                continue
            o = ops.get(core, {}).get(name)
            if r["count"] is None:
                lines.append(f"| {name} | {core} | - | does not load: {r['why'][:60]} | | | | | | |")
                continue
            tf = TFLM_QEMU.get((name, core))
            ratio = f"{tf[1] / r['count']:.2f}x" if tf else "-"
            exact = r["exact"] and (o is None or o["exact"])
            lines.append(f"| {name} | {core} | {r['macs']:,} | {r['count']:,} | "
                         f"{_fmt(r['count'] / r['macs'] if r['macs'] else None, '.3f')} | "
                         f"{_fmt(o['count'] if o else None)} | {_fmt(tf[0] if tf else None)} | "
                         f"{_fmt(tf[1] if tf else None)} | {ratio} | {'yes' if exact else 'NO'} |")
    lines += ["", "| core | instr per op (1-element int8 op, incl. dispatch) | instr per sequence step (1-element cell) |",
              "|---|---:|---:|"]
    for core in cores:
        r = results[core]
        per_op = (r[f"probe-ops{OP_CHAIN}"]["count"] - r["probe-ops1"]["count"]) / (OP_CHAIN - 1)
        per_step = (r["probe-steps101"]["count"] - r["probe-steps1"]["count"]) / 100
        lines.append(f"| {core} | {per_op:.1f} | {per_step:.1f} |")
    return lines


def targets(results: dict[str, dict[str, dict]]) -> list[str]:
    def get(name: str, core: str) -> dict | None:
        r = results.get(core, {}).get(name)
        return r if r and r["count"] is not None else None

    out = []
    w = get("gru2x256", "m4")
    if w:
        v = w["count"] / w["macs"]
        out.append(f"- weather-sized GRU 2x256 on M4 <= 1.7 instr/MAC: {v:.3f} -> {'MET' if v <= 1.7 else 'NOT MET'}")
    h = get("gru32", "m4")
    if h:
        v = h["count"] / h["macs"]
        out.append(f"- hidden-32 GRU (M4) <= 2.5 instr/MAC: {v:.3f} -> {'MET' if v <= 2.5 else 'NOT MET'}")
    # AD01 (issue 13): 1.6x on M4/M7, 1.3x on M3; KWS, IC, VWW, SWW (issue 19): 1.2x on M4/M7, 1.1x on M3.
    conv_need = (1.2, 1.2, 1.1)
    for model, needs in (("ad01", (1.6, 1.6, 1.3)), ("kws", conv_need), ("ic", conv_need), ("vww", conv_need),
                         ("sww", conv_need)):
        for core, need in zip(("m4", "m7", "m3"), needs, strict=True):
            a = get(model, core)
            if a and (model, core) in TFLM_QEMU:
                v = TFLM_QEMU[(model, core)][1] / a["count"]
                out.append(f"- {model.upper()} on {core.upper()} >= {need}x fewer than TFLM+CMSIS-NN: {v:.2f}x -> "
                           f"{'MET' if v >= need else 'NOT MET'}")
    for core in results:
        for model in ("ad01", "kws", "ic", "vww", "sww"):
            a, z = get(model, core), get(f"{model}-zero", core)
            if a and z:
                tick = TICK.get(core, 0.0)
                same = abs(a["count"] - z["count"]) <= tick
                out.append(f"- {model.upper()} count independent of the input on {core.upper()}: random {a['count']:,} vs zero "
                           f"{z['count']:,} (counter resolution {tick:g} instr) -> {'MET' if same else 'NOT MET'}")
    c = get("mlp4-64-64-2", "m0")
    if c:
        out.append(f"- CartPole policy 4-64-64-2 on M0 <= 25,000 instr/action: {c['count']:,} -> "
                   f"{'MET' if c['count'] <= 25_000 else 'NOT MET'}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cores", nargs="+", default=["m0", "m3", "m4", "m7", "m33"])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--build-dir", type=Path, default=ROOT / ".pio" / "build-matrix")
    ap.add_argument("--no-op-by-op", action="store_true", help="skip the op-by-op firmware column")
    ap.add_argument("--markdown", type=Path, default=None, help="also write the tables here")
    ap.add_argument("--models", nargs="+", default=None, help="only these rows (names as printed)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    rng = np.random.default_rng(13)
    benches = exported_models(args.build_dir / "models", rng) + builder_models(rng) + ad01_models(rng)
    benches += mlperf_conv_models(rng)
    if args.models:
        benches = [b for b in benches if b.name in args.models or b.name.startswith("probe")]
    results: dict[str, dict[str, dict]] = {}
    ops: dict[str, dict[str, dict]] = {}
    def build_with(core: str, sub: str, flags: str) -> Path:
        saved = os.environ.get("PLATFORMIO_BUILD_FLAGS")
        os.environ["PLATFORMIO_BUILD_FLAGS"] = flags
        try:
            return build(CORE_ENVS[core], build_dir=args.build_dir / sub).elf
        finally:
            os.environ.pop("PLATFORMIO_BUILD_FLAGS", None)
            if saved is not None:
                os.environ["PLATFORMIO_BUILD_FLAGS"] = saved

    small = [b for b in benches if b.name not in LARGE_MODELS]
    large = [b for b in benches if b.name in LARGE_MODELS]
    for core in args.cores:
        results[core] = run_core(core, build(CORE_ENVS[core], build_dir=args.build_dir / "fused").elf, small, args.runs)
        if large:
            fits = [b for b in large if core != "m0" or not b.name.startswith("vww")]
            flags = LARGE_FLAGS_M0 if core == "m0" else LARGE_FLAGS
            results[core].update(run_core(core, build_with(core, "large", flags), fits, args.runs))
        if not args.no_op_by_op:
            elf = build_with(core, "op-by-op", "-DEP_RT_DEFAULT_FLAGS=1")  # EP_RT_INIT_NO_FUSE
            grus = [b for b in benches if b.name.startswith("gru")]
            ops[core] = run_core(core, elf, grus, args.runs)
    commit = subprocess.run(["git", "log", "-1", "--format=%h", "--", "firmware"], cwd=ROOT, capture_output=True,
                            text=True, timeout=30, check=False).stdout.strip()
    head = [f"Command: `python bench/scripts/runtime_matrix.py {' '.join(argv if argv is not None else sys.argv[1:])}`"
            f" — {dt.date.today().isoformat()}, firmware at commit {commit}, QEMU -icount shift=0 (instructions), median of "
            f"{args.runs} runs.", ""]
    lines = head + report(results, ops, args.cores) + ["", "Targets:"] + targets(results)
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    bad = [(c, n) for c, rows in [*results.items(), *ops.items()] for n, r in rows.items() if not r["exact"]]
    if bad:
        print(f"NOT TFLM-exact: {bad}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
