"""Mixed precision per layer (issue 30): the kernels' instructions per MAC beside int8, and the export figures.

Usage: python bench/scripts/mixed_precision.py kernels [--cores m0 m3 m4 m7 m33] [--runs 3] [--n 256]
       python bench/scripts/mixed_precision.py convs    [--cores m0 m3 m4 m7 m33] [--runs 3]
       python bench/scripts/mixed_precision.py sizes    [--tasks weather-gru digits-cnn]
       python bench/scripts/mixed_precision.py gru16    [--task weather-gru] [--cores m0 m3 m4 m7 m33] [--runs 3]
                                                        [--windows 3] [--hidden H ...] [--no-device]
       python bench/scripts/mixed_precision.py gru16one [--task weather-gru] [--cores m3 m4 m7 m33] [--runs 3]
                                                        [--windows 3] [--hidden H ...] [--no-device]
       python bench/scripts/mixed_precision.py float1   [--task weather-gru] [--cores m0 m3 m4 m7 m33] [--runs 3]
                                                        [--windows 3] [--hidden H ...] [--layers gru1 head]
                                                        [--no-device]
       python bench/scripts/mixed_precision.py cnn16    [--task digits-cnn] [--cores m0 m3 m4 m7 m33] [--runs 3]
                                                        [--images 3]
       python bench/scripts/mixed_precision.py deploy   [--tasks digits-cnn weather-gru] [--core m4]
       python bench/scripts/mixed_precision.py bytes    [--task digits-cnn]
       python bench/scripts/mixed_precision.py qat      [--tasks weather-gru digits-cnn] [--steps 300] [--seeds 0]
                                                        [--stochastic] [--test] [--int4-scales channel tensor]

``kernels``: for each core the project firmware is built (PlatformIO, into --build-dir) and run in qemu-system-arm
with -icount shift=0; over the serial protocol it loads three n x n FULLY_CONNECTED models of the same shape (int8,
int4 weights with int8 activations, 16x8) and prints the median instructions per inference divided by the MACs,
each output compared byte for byte with TFLM (PyPI tflite-micro). QEMU counts instructions, not cycles: lower
bounds on cycles, comparable only with other QEMU counts. Target (issue 30): int4 on M4 <= 1.3x int8.

``convs``: the same for CONV_2D (16x16x32 input, 3x3, 32 filters, SAME, per-channel) and DEPTHWISE_CONV_2D
(16x16x64, 3x3) with int8 and int4 filters of the same values: instructions per MAC, model and arena bytes. The
runtime unpacks an int4 filter into the arena at load and runs the int8 kernel, so invoke costs the same. Then the
CONV_2D of that shape at 16x8 (int16 activations, int8 filter, int64 bias; ep_conv16.c, plain C) beside int8.

``sizes``: exports the task's baseline at int8 and with every FULLY_CONNECTED / CONV_2D weight in int4
(edgeprune.export.precision), and prints the .tflite bytes, the device array's bytes (``slim_tflite``: what the
deploy library stores), weight bytes and the validation metric in TFLM, post-training (no fine-tuning).

``cnn16``: the digits CNN's validation metric at float32, int8 and 16x8 (every layer at 16x8: the converter's
whole-model 16x8 through ``export_model``; CONV_2D and the pools run in ``ep_conv16.c``), in TFLM; then both exports on
the device runtime in QEMU on each core: instructions per inference and per MAC (median of --runs on the first
validation image; QEMU -icount: lower bounds on cycles), each of --images validation images' outputs compared with
TFLM's bytes.

``deploy``: the task's baseline at int8 and with int4 weights, each as the deploy library ``edgeprune export
--deploy`` writes (the model prepared at export; int4 convolution filters ship packed and are unpacked into the
arena at ``edgeprune_init``), its example linked for --core and run once in QEMU: flash (model + code), RAM (static +
stack high-water), arena, and whether its output bytes equal the .tflite + parser library's (the runtime's own init
on the device, TFLM-exact: tests/export). Byte counts depend on shapes, not on the weights' values.

``bytes``: where a model's bytes go, int8 (as the search exports it) against int4 on every weighted layer with
one scale per convolution filter (the int4 layout that scores best on digits, QAT section of BENCHMARKS.md):
weights, int32 biases, what ``slim_tflite`` drops (names, signatures, metadata, min/max, empty buffers, ...), and
of the device array (the slim model): quantisation parameters, shapes, op options, buffer alignment and vector
headers, the tables themselves. Each part measured by repacking the slim model without it. Sizes depend on shapes,
not on the weights' values (equal vectors are written once, so two equal scales can save a few bytes).

``gru16``: the weather GRU's validation metric at float32, int8 and 16x8 (every layer at 16x8: the converter's
whole-model 16x8, exported by ``export_model``), run in TFLM with the device's recurrent carry (the int16 state by
``qmath.requantize16``). Target (issue 30): 16x8 within 0.3 pp of float32. Then both quantised exports on the device
runtime in QEMU on each core (the firmware built into --build-dir, each model uploaded), each of --windows
validation windows streamed in the device's sequence mode (its own carry between steps): instructions per step and
per MAC (one window's median / steps, over one step's MACs; QEMU -icount: lower bounds on cycles) and every output
after the last step compared with TFLM's bytes. A core whose model buffer is smaller than the model says so. ``--hidden 128 128``: an untrained GRU of that shape (same
input and classes) instead of the baseline, e.g. for the M0, whose QEMU board holds at most 288 KB of model.

``gru16one``: the weather GRU with ONE layer at 16x8 beside int8 layers (gru0 alone, gru1 alone: the layer's ops
taken from the converter's 16x8 model, its state int16 between steps, QUANTIZE at its edges; ``export.precision_stitch``)
against int8 and every layer at 16x8, all with per-tensor int8 weight scales: .tflite bytes, validation in TFLM with
the device's carry and the drop vs float32 with its paired 95 % interval, then each plan on the device runtime in QEMU
as ``gru16`` (instructions per step and per MAC, every window's outputs compared with TFLM). ``--hidden 128 128
--cores m0``: the 2x128 shape that fits the M0 board.

``float1``: the weather GRU with ONE layer at float32 inside the int8 model (each of --layers alone: its ops in float
with the original float weights, DEQUANTIZE/QUANTIZE at its edges; ``export.precision_float``) against int8 and the
float32 model: .tflite bytes, weight bytes (float at 4 B), validation in TFLM with the device's carry and the drop vs
float32 with its paired 95 % interval; then int8 and each plan on the device runtime in QEMU as ``gru16one``
(instructions per step and per MAC, every window's outputs compared with TFLM). A plan larger than a core's model
buffer says so. ``--hidden 128 128``: a smaller, untrained shape for the instruction counts.

``qat``: every weighted layer of the task's baseline at int4, post-training (PTQ) against quantisation-aware
fine-tuning (QAT: fake quantisation at int4 with the straight-through estimator, distilled from the float baseline,
checkpoint kept on validation as ``compress`` does; ``--stochastic``: stochastic weight rounding while training), the
same seeds for every variant. Each model is exported and run in TFLM; the drop vs FP32 is paired on the same windows
with its 95 % bootstrap interval (``host.tasks.intervals.paired_drop``). ``--test`` scores each model once on test.
``--int4-scales channel tensor``: int4 convolution filters with one scale per channel and/or per tensor.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from edgeprune.bench.firmware_build import CORE_ENVS, build
from edgeprune.bench.inputs import quantize_input
from edgeprune.bench.link import Device
from edgeprune.bench.qemu import QemuBoard
from edgeprune.bench.tflite_info import tflite_schema
from edgeprune.bench.tflm import TflmRunner
from edgeprune.export import precision as P
from edgeprune.export.deploy import write_deploy
from edgeprune.export.deploy_build import deploy_and_measure, footprint
from edgeprune.export.pipeline import export_model
from edgeprune.export.slim import pack_aligned, slim_tflite
from edgeprune.export.verify import arena_bytes, predict_fn
from edgeprune.host.compress.config import allowed_precisions
from edgeprune.host.tasks.intervals import paired_drop
from edgeprune.host.tasks.registry import get_task

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
    ipm = _load("ep_kernel_ipm", ROOT / "bench" / "scripts" / "kernel_ipm.py")
    models = kernel_models(args.n)
    print(f"QEMU -icount shift=0 instructions (lower bounds on cycles), median of {args.runs} runs, "
          f"{args.n}x{args.n} FULLY_CONNECTED; outputs compared byte for byte with TFLM")
    hdr = f"{'core':5} {'int8 i/MAC':>10} {'int4 i/MAC':>10} {'int4/int8':>9} {'16x8 i/MAC':>10} {'16x8/int8':>9} {'TFLM-exact':>10}"
    _rule(hdr)
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


def conv_models() -> dict[str, tuple[bytes, np.ndarray]]:
    """CONV_2D and DEPTHWISE_CONV_2D with int8 and int4 filters of the same values, with inputs."""
    mm = _load("ep_mixed_models", ROOT / "tests" / "runtime" / "mixed_models.py")
    ipm = _load("ep_kernel_ipm", ROOT / "bench" / "scripts" / "kernel_ipm.py")
    tb = ipm._builder()
    out = {}
    for op, dw, shape, oc in (("conv", False, (1, 16, 16, 32), 32), ("dwconv", True, (1, 16, 16, 64), 0)):
        for bits in (8, 4):
            out[f"{op} int{bits}"] = mm.conv_int4(tb, np.random.default_rng(30), dw, True, shape, (3, 3), oc, act=1,
                                                  bits=bits)
    out["conv 16x8"] = mm.conv_16x8(tb, np.random.default_rng(30), (1, 16, 16, 32), (3, 3), 32, act=1)
    return out


def convs(args: argparse.Namespace) -> int:
    ipm = _load("ep_kernel_ipm", ROOT / "bench" / "scripts" / "kernel_ipm.py")
    models = conv_models()
    print(f"QEMU -icount shift=0 instructions (lower bounds on cycles), median of {args.runs} runs; outputs compared "
          "byte for byte with TFLM; model = .tflite bytes, arena = the runtime's arena after load")
    hdr = (f"{'core':5} {'op':7} {'int8 i/MAC':>10} {'int4 i/MAC':>10} {'int4/int8':>9} {'int8 model B':>12} "
           f"{'int4 model B':>12} {'int8 arena':>10} {'int4 arena':>10} {'TFLM-exact':>10}")
    _rule(hdr)
    failed = False
    for core in args.cores:
        elf = build(CORE_ENVS[core], build_dir=args.build_dir).elf
        rows = ipm.run_core(core, elf, models, args.runs)
        for op in ("conv", "dwconv"):
            r8, r4 = rows[f"{op} int8"], rows[f"{op} int4"]
            i8, i4 = r8["median"] / r8["macs"], r4["median"] / r4["macs"]
            exact = r8["exact"] and r4["exact"]
            failed |= not exact
            print(f"{core:5} {op:7} {i8:>10.3f} {i4:>10.3f} {i4 / i8:>9.3f} {len(models[op + ' int8'][0]):>12} "
                  f"{len(models[op + ' int4'][0]):>12} {r8['arena']:>10} {r4['arena']:>10} {'yes' if exact else 'NO':>10}")
        r8, r16 = rows["conv int8"], rows["conv 16x8"]
        i8, i16 = r8["median"] / r8["macs"], r16["median"] / r16["macs"]
        failed |= not r16["exact"]
        print(f"{core:5} {'conv':7} 16x8 (int16 activations, int64 bias): {i16:.3f} instr/MAC, {i16 / i8:.2f}x int8; "
              f"model {len(models['conv 16x8'][0])} B, arena {r16['arena']} B, "
              f"TFLM-exact {'yes' if r16['exact'] else 'NO'}")
    return 1 if failed else 0


def _layer_map(model, tflite: bytes, manifest: dict) -> dict[int, str]:
    """Weighted op index -> config layer of the exported baseline."""
    # Deferred (they load torch, 1-2 s): the kernels command needs no torch.
    from edgeprune.host.compress.surgery import named_layers
    from edgeprune.host.models import LowRankLinear, StackedRNN

    names = [o["name"] for o in manifest["outputs"]]
    if isinstance(model, StackedRNN):
        return P.layer_ops(tflite, [], P.cell_layers(model.PREFIX, len(model.layers)), names)
    counts = [(n, sum(2 if isinstance(m, LowRankLinear) else 1 for m in mods)) for n, mods in named_layers(model).items()]
    return P.layer_ops(tflite, counts)


def _rule(hdr: str) -> None:
    """A table's header line, underlined."""
    print(hdr)
    print("-" * len(hdr))


def sizes(args: argparse.Namespace) -> int:
    """Model bytes and validation metric in TFLM: int8 vs per-layer int4 plans (whole model and device-runnable)."""
    print("Validation split, PTQ only (no quantisation-aware fine-tuning); every model run in TFLM (PyPI tflite-micro)")
    hdr = (f"{'task':12} {'plan':30} {'.tflite B':>9} {'x int8':>6} {'device B':>9} {'x int8':>6} {'weights B':>9} "
           f"{'val':>7} {'drop pp':>7} {'runs on':>7}")
    _rule(hdr)
    for name in args.tasks:
        task = get_task(name)
        model = task.baseline()
        fp = task.evaluate_model(model, "val").value
        with tempfile.TemporaryDirectory() as tmp:
            weights = "tensor" if hasattr(model, "PREFIX") and not name.startswith("digits") else "channel"
            res = export_model(model, task.calibration_inputs(512), Path(tmp) / "m", name=name, weights=weights)
            tfl, manifest = res.read_tflite(), res.manifest
        ops = _layer_map(model, tfl, manifest)
        layers = sorted(set(ops.values()))
        plans = {"int8": {}, "int4 all": {n: "int4" for n in layers},
                 "int4 where the device has it": {n: "int4" for n in layers if "int4" in allowed_precisions(n)}}
        base_bytes, base_slim = len(tfl), len(slim_tflite(tfl))
        print(f"{name:12} {'float32':30} {'':>9} {'':>6} {'':>9} {'':>6} {'':>9} {fp:>7.4f}")
        for label, plan in plans.items():
            new = P.apply_precision(tfl, {i: plan[n] for i, n in ops.items() if n in plan}) if plan else tfl
            wb = P.weight_bytes(new)
            # TFLM unpacks int4 weights into its arena: the int8 model's arena is too small for it.
            val = task.evaluate(predict_fn(new, {**manifest, "arena_bytes": arena_bytes(new)}), "val").value
            device = all(p in allowed_precisions(n) for n, p in plan.items())
            slim = len(slim_tflite(new))
            print(f"{name:12} {label:30} {len(new):>9} {base_bytes / len(new):>6.2f} {slim:>9} {base_slim / slim:>6.2f} "
                  f"{wb['int8'] + wb['int4']:>9} {val:>7.4f} {100 * (fp - val):>7.2f} {'device' if device else 'TFLM':>7}")
    return 0


def deploy(args: argparse.Namespace) -> int:
    """Deploy flash and RAM of the int8 baseline against int4 plans (prepared library, QEMU)."""
    print(f"Deploy library (edgeprune export --deploy, prepared model), example on QEMU {args.core}, -O2; "
          "flash = model + code, RAM = static + stack")
    hdr = (f"{'task':12} {'plan':34} {'.tflite B':>9} {'flash B':>8} {'model B':>8} {'code B':>7} {'x int8':>6} "
           f"{'RAM B':>7} {'arena B':>7} {'= parser lib':>12}")
    _rule(hdr)
    for name in args.tasks:
        task = get_task(name)
        model = task.baseline()
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            res = export_model(model, task.calibration_inputs(512), work / "m", name=name, weights="tensor")
            tfl, manifest = res.read_tflite(), res.manifest
            ops = _layer_map(model, tfl, manifest)
            layers = sorted(set(ops.values()))
            every = {n: "int4" for n in layers}
            plans: dict[str, tuple[dict[str, str], str]] = {"int8": ({}, "channel")}
            if any(n.startswith("conv") for n in layers):
                plans["int4 convolutions"] = ({n: "int4" for n in layers if n.startswith("conv")}, "channel")
                plans["int4 every layer"] = (every, "channel")
                plans["int4 every layer, per-tensor conv"] = (every, "tensor")
            else:
                plans["int4 every layer"] = (every, "channel")
            base_flash = 0
            for label, (plan, scales) in plans.items():
                new = (P.apply_precision(tfl, {i: plan[n] for i, n in ops.items() if n in plan}, int4_scales=scales)
                       if plan else tfl)
                lib, fp = deploy_and_measure(new, work / _slug(label), manifest=manifest, name=name, core=args.core)
                parser = write_deploy(new, work / f"{_slug(label)}-parser", manifest=manifest, name=name,
                                      core=args.core, prepared=False)
                same = footprint(parser.out_dir, args.core).output == fp.output
                base_flash = base_flash or fp.flash_bytes
                print(f"{name:12} {label:34} {len(new):>9} {fp.flash_bytes:>8} {fp.model_bytes:>8} {fp.code_bytes:>7} "
                      f"{base_flash / fp.flash_bytes:>6.2f} {fp.ram_bytes:>7} {fp.arena_bytes:>7} {str(same):>12}",
                      flush=True)
                if not lib.prepared:
                    print(f"  ({label}: not prepared, shipped with the parser)")
    return 0


def _parts(tflite: bytes) -> dict[str, int]:
    """Bytes of ``tflite`` by what they hold (see ``bytes`` in the module docstring)."""
    schema = tflite_schema()
    slim = slim_tflite(tflite)
    base = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(bytearray(slim), 0))
    tensors = base.subgraphs[0].tensors
    wb = P.weight_bytes(tflite)

    def without(edit) -> int:
        model = copy.deepcopy(base)
        edit(model)
        return len(slim) - len(pack_aligned(schema, model))

    def no_data(m) -> None:
        for b in m.buffers:
            b.data = None

    def no_quant(m) -> None:
        for t in m.subgraphs[0].tensors:
            t.quantization = None

    def no_shapes(m) -> None:
        for t in m.subgraphs[0].tensors:
            t.shape = None

    def no_options(m) -> None:
        for op in m.subgraphs[0].operators:
            op.builtinOptions, op.builtinOptionsType = None, 0

    data = without(no_data)
    parts = {"weights": wb["int8"] + wb["int4"], "int32 biases": wb["bias"],
             "dropped by slim_tflite": len(tflite) - len(slim),
             "alignment + buffer headers": data - wb["int8"] - wb["int4"] - wb["bias"],
             "quantisation parameters": without(no_quant), "shapes": without(no_shapes),
             "op options": without(no_options)}
    parts["tables, vectors, op codes, root"] = len(tflite) - sum(parts.values())
    parts["(tensors, a count)"] = len(tensors)
    parts["device array (slim)"], parts[".tflite"] = len(slim), len(tflite)
    return parts


def model_bytes(args: argparse.Namespace) -> int:
    """Where the bytes of the int8 and the all-int4 model of the task's shape go (device array = slim model)."""
    # Deferred (it loads torch, 1-2 s): the kernels command needs no torch.
    from edgeprune.host.compress.surgery import named_layers

    task = get_task(args.task)
    model = task.baseline().eval()
    plan = {n: "int4" for n in named_layers(model)}
    with tempfile.TemporaryDirectory() as tmp:
        calib = task.calibration_inputs(512)
        i8 = export_model(model, calib, Path(tmp) / "i8", name=args.task, weights="tensor").read_tflite()
        i4 = export_model(model, calib, Path(tmp) / "i4", name=args.task, weights="tensor", precision=plan,
                          int4_scales="tensor").read_tflite()
    a, b = _parts(i8), _parts(i4)
    print(f"{args.task}: int8 (per-tensor FC weights, per-channel convolution filters, as the search exports it) vs "
          "int4 on every weighted layer (one scale per filter)")
    print(f"{'part':34} {'int8 B':>8} {'int4 B':>8}")
    for k in a:
        print(f"{k:34} {a[k]:>8} {b[k]:>8}")
    for k in (".tflite", "device array (slim)"):
        print(f"{k}: {a[k] / b[k]:.3f}x fewer bytes at int4 (target 1.8x)")
    return 0


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in label)


def _device_windows(core: str, elf: Path, models: dict[str, tuple[bytes, dict, np.ndarray]],
                    runs: int) -> dict[str, dict | None]:
    """Per model (flatbuffer, manifest, quantised windows): load it, stream each window in the device's sequence
    mode (its own recurrent carry), time the first (median of ``runs``, QEMU instructions per window) and compare
    every window's outputs with TFLM's bytes. None for a model larger than the firmware's model buffer."""
    rows: dict[str, dict | None] = {}
    with QemuBoard(core, elf=elf) as board, Device.open(board.url, 60.0) as dev:
        max_model = dev.hello().max_model
        for name, (tflite, man, xs) in models.items():
            if len(tflite) > max_model:
                rows[name] = None
                continue
            seq = man["sequence"]
            runner = TflmRunner.oracle(tflite, man)
            load = dev.load_model(tflite)  # MACs of one step (single-step mode at load)
            dev.set_sequence(seq["steps"], seq["stream_input"], [tuple(p) for p in seq["recurrent"]])
            median, exact = None, True
            for x in xs:
                dev.set_input(seq["stream_input"], x.tobytes())
                res = dev.infer(runs if median is None else 1)
                median = res.median if median is None else median
                exact &= list(res.outputs) == [o.tobytes() for o in runner.run_all(x)]
            dev.set_sequence(1, 0, [])
            rows[name] = {"median": median / seq["steps"], "macs": load.macs, "exact": exact, "windows": len(xs)}
    return rows


def _gru16_device(args: argparse.Namespace, exports: dict[str, tuple[bytes, dict]], windows: np.ndarray) -> bool:
    """The int8 and 16x8 models of one GRU shape on the device runtime on each core, each validation window streamed
    in sequence mode: instructions per step and per MAC, every window's outputs byte-identical to TFLM's."""
    models = {k: (tfl, man, quantize_input(windows, man)) for k, (tfl, man) in exports.items()}
    steps = exports["16x8"][1]["sequence"]["steps"]
    print(f"QEMU -icount shift=0 instructions per step (lower bounds on cycles): median of {args.runs} runs of one "
          f"{steps}-step window in the device's sequence mode (its own recurrent carry: int8 table / int16 "
          f"requantise) / {steps}; .tflite int8 {len(exports['int8'][0]):,} B, 16x8 {len(exports['16x8'][0]):,} B; "
          f"every output after the last step of {len(windows)} validation windows compared with TFLM byte for byte")
    hdr = (f"{'core':5} {'MACs/step':>10} {'int8 instr':>11} {'int8 i/MAC':>10} {'16x8 instr':>11} "
           f"{'16x8 i/MAC':>10} {'16x8/int8':>9} {'TFLM-exact':>10}")
    _rule(hdr)
    ok = True
    for core in args.cores:
        elf = build(CORE_ENVS[core], build_dir=args.build_dir).elf
        rows = _device_windows(core, elf, models, args.runs)
        r8, r16 = rows["int8"], rows["16x8"]
        if r8 is None or r16 is None:
            print(f"{core:5} does not fit: the firmware's model buffer is smaller than the model")
            continue
        i8, i16 = r8["median"] / r8["macs"], r16["median"] / r16["macs"]
        exact = r8["exact"] and r16["exact"]
        ok &= exact
        print(f"{core:5} {r16['macs']:>10,} {r8['median']:>11,.0f} {i8:>10.3f} {r16['median']:>11,.0f} {i16:>10.3f} "
              f"{i16 / i8:>9.2f} {'yes' if exact else 'NO':>10}")
    return ok


def _export_plans(args: argparse.Namespace, task, model, plans: dict[str, dict[str, str]]) -> dict[str, tuple[bytes, dict]]:
    """Each plan (label -> per-layer precision) exported by ``export_model`` with per-tensor int8 weight scales (as the
    search exports): label -> (flatbuffer, manifest)."""
    calib = task.calibration_inputs(512)
    exports: dict[str, tuple[bytes, dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, plan in plans.items():
            res = export_model(model, calib, Path(tmp) / _slug(label), name=args.task, weights="tensor",
                               precision=plan or None)
            exports[label] = (res.read_tflite(), res.manifest)
    return exports


def _gru_model(args: argparse.Namespace, task):
    """The task's baseline GRU, or with ``--hidden`` an untrained GRU of that shape (same input and classes)."""
    model = task.baseline()
    if args.hidden:
        # Same family and input, another shape (untrained: instruction counts do not depend on the weights):
        # a model that fits a core whose model buffer the task's does not. Deferred: torch loads in 1-2 s.
        import torch

        from edgeprune.host.models.gru import StackedGRU

        torch.manual_seed(0)
        model = StackedGRU(model.input_size, list(args.hidden), model.num_outputs, seq_len=model.seq_len).eval()
    return model


def gru16(args: argparse.Namespace) -> int:
    """Validation of the weather GRU at float32, int8 and 16x8 (every layer 16x8: the converter's whole-model 16x8
    through ``export_model``), all in TFLM with the device's carry; then both on the device runtime in QEMU."""
    task = get_task(args.task)
    model = _gru_model(args, task)
    sizes = [layer.hidden_size for layer in model.layers]
    calib = task.calibration_inputs(512)
    every16 = {**{f"gru{i}": "16x8" for i in range(len(sizes))}, "head": "16x8"}
    exports: dict[str, tuple[bytes, dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, opts in (("int8", {"weights": "tensor"}), ("16x8", {"precision": every16})):
            res = export_model(model, calib, Path(tmp) / label, name=args.task, **opts)
            exports[label] = (res.read_tflite(), res.manifest)
    if not args.hidden:
        fp = task.evaluate_model(model, "val").value
        int8, v16 = (task.evaluate(predict_fn(*exports[k]), "val").value for k in ("int8", "16x8"))
        loss = 100 * (fp - v16)
        print(f"{args.task} {sizes}: validation float32 {fp:.4f}; int8 {int8:.4f} ({100 * (int8 - fp):+.2f} pp); "
              f"16x8 {v16:.4f} ({-loss:+.2f} pp; int16 state carried by qmath.requantize16, as the device does); "
              f"target (16x8 loses at most 0.3 pp): {'met' if loss <= 0.3 else 'NOT met'}; "
              f"|difference| <= 0.3 pp: {'yes' if abs(loss) <= 0.3 else 'no'}")
    else:
        print(f"{args.task} family, hidden {sizes} (untrained, for instruction counts only)")
    if args.no_device:
        return 0
    windows = task.agreement_inputs(args.windows, "val")
    return 0 if _gru16_device(args, exports, windows) else 1


def gru16one(args: argparse.Namespace) -> int:
    """One GRU layer at 16x8 beside int8 ones (``export.precision_stitch``) against int8 and every layer at 16x8: the
    validation metric in TFLM with the device's carry (int16 for a 16x8 layer's state), model bytes, then every plan
    on the device runtime in QEMU on each core (instructions per step and per MAC, outputs TFLM-exact)."""
    task = get_task(args.task)
    model = _gru_model(args, task)
    sizes = [layer.hidden_size for layer in model.layers]
    names = [f"gru{i}" for i in range(len(sizes))]
    plans: dict[str, dict[str, str]] = {"int8": {}}
    plans.update({f"{n} 16x8": {n: "16x8"} for n in names})
    plans["all 16x8"] = {**{n: "16x8" for n in names}, "head": "16x8"}
    exports = _export_plans(args, task, model, plans)
    print(f"{args.task} {sizes}{' (untrained, for instruction counts only)' if args.hidden else ''}; every export "
          "with per-tensor int8 weight scales (as the search exports); a 16x8 layer's state int16 between steps")
    def cols(tfl: bytes, man: dict) -> str:
        io = ",".join(f"{e['name']}:{e['dtype'][3:]}" for e in man["inputs"] if e["name"] != "x_t")
        return f"{len(exports['int8'][0]) / len(tfl):>7.3f} {io:>28}"

    _plan_table(args, task, model, exports, 10, f"{'x int8':>7} {'I/O types':>28}", cols)
    if args.no_device:
        return 0
    return 0 if _plans_on_device(args, exports, task.agreement_inputs(args.windows, "val"), 10) else 1


def _plan_table(args: argparse.Namespace, task, model, exports: dict[str, tuple[bytes, dict]], width: int,
                head: str, cols) -> None:
    """One row per plan: .tflite bytes, the plan's own columns (``cols(flatbuffer, manifest)`` under ``head``) and,
    for the baseline (no ``--hidden``), validation in TFLM with the device's carry and its paired drop vs float32."""
    fp = None if args.hidden else task.evaluate_model(model, "val")
    _rule(f"{'plan':{width}} {'.tflite B':>10} {head} {'val':>7} {'drop vs FP32 pp [95 %]':>24}")
    for label, (tfl, man) in exports.items():
        val = drop = ""
        if fp is not None:
            cand = task.evaluate(predict_fn(tfl, man), "val")
            val, drop = f"{cand.value:.4f}", _drop(task, cand, fp)
        print(f"{label:{width}} {len(tfl):>10,} {cols(tfl, man)} {val:>7} {drop:>24}")
    if fp is not None:
        print(f"float32 validation {fp.value:.4f}")


def _plans_on_device(args: argparse.Namespace, exports: dict[str, tuple[bytes, dict]], windows: np.ndarray,
                     width: int) -> bool:
    """Every plan (``int8`` first) on the device runtime in QEMU on each core: instructions per step and per MAC beside
    int8, every window's outputs compared with TFLM's bytes; a plan larger than the model buffer says so."""
    models = {k: (tfl, man, quantize_input(windows, man)) for k, (tfl, man) in exports.items()}
    steps = exports["int8"][1]["sequence"]["steps"]
    print(f"QEMU -icount shift=0 instructions per step (lower bounds on cycles): median of {args.runs} runs of one "
          f"{steps}-step window in the device's sequence mode / {steps}, per MAC of one step; every output after the "
          f"last step of {len(windows)} validation windows compared with TFLM byte for byte")
    hdr = (f"{'core':5} {'plan':{width}} {'MACs/step':>10} {'instr/step':>11} {'instr/MAC':>10} {'x int8':>7} "
           f"{'TFLM-exact':>10}")
    _rule(hdr)
    ok = True
    for core in args.cores:
        elf = build(CORE_ENVS[core], build_dir=args.build_dir).elf
        rows = _device_windows(core, elf, models, args.runs)
        base = rows["int8"]
        for label, r in rows.items():
            if r is None:
                print(f"{core:5} {label:{width}} does not fit: the firmware's model buffer is smaller than the model")
                continue
            ipm = r["median"] / r["macs"]
            rel = f"{ipm / (base['median'] / base['macs']):.2f}" if base else ""
            ok &= r["exact"]
            print(f"{core:5} {label:{width}} {r['macs']:>10,} {r['median']:>11,.0f} {ipm:>10.3f} {rel:>7} "
                  f"{'yes' if r['exact'] else 'NO':>10}")
    return ok


def float1(args: argparse.Namespace) -> int:
    """One GRU layer at float32 inside the int8 model (``export.precision_float``) against int8 and float32: bytes,
    validation in TFLM with the device's carry, then every plan on the device runtime in QEMU on each core."""
    task = get_task(args.task)
    model = _gru_model(args, task)
    sizes = [layer.hidden_size for layer in model.layers]
    plans: dict[str, dict[str, str]] = {"int8": {}}
    plans.update({f"{n} float32": {n: "float32"} for n in args.layers})
    exports = _export_plans(args, task, model, plans)
    print(f"{args.task} {sizes}{' (untrained, for instruction counts only)' if args.hidden else ''}; every export "
          "with per-tensor int8 weight scales (as the search exports); a float32 layer keeps its float weights")
    _plan_table(args, task, model, exports, 14, f"{'weight B':>10}", lambda tfl, man: f"{man['weight_bytes']:>10,}")
    if args.no_device:
        return 0
    return 0 if _plans_on_device(args, exports, task.agreement_inputs(args.windows, "val"), 14) else 1


def _drop(task, cand, ref) -> str:
    iv = paired_drop(cand.samples, ref.samples, cand.metric, task.higher_is_better)
    return f"{iv.value:+6.2f} [{iv.lo:+6.2f}, {iv.hi:+6.2f}]"


def cnn16(args: argparse.Namespace) -> int:
    """The digits CNN at float32, int8 and 16x8 (every layer 16x8) in TFLM, then int8 and 16x8 on each core."""
    ipm = _load("ep_kernel_ipm", ROOT / "bench" / "scripts" / "kernel_ipm.py")
    task = get_task(args.task)
    model = task.baseline()
    layers = [f"conv{i}" for i in range(len(model.layers))] + ["head"]
    calib = task.calibration_inputs(512)
    exports: dict[str, tuple[bytes, dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, opts in (("int8", {}), ("16x8", {"precision": dict.fromkeys(layers, "16x8")})):
            res = export_model(model, calib, Path(tmp) / label, name=args.task, **opts)
            exports[label] = (res.read_tflite(), res.manifest)
    fp = task.evaluate_model(model, "val").value
    int8, v16 = (task.evaluate(predict_fn(*exports[k]), "val").value for k in ("int8", "16x8"))
    print(f"{args.task} channels {model.channels}: validation float32 {fp:.4f}; int8 {int8:.4f} "
          f"({100 * (int8 - fp):+.2f} pp); 16x8 {v16:.4f} ({100 * (v16 - fp):+.2f} pp); .tflite int8 "
          f"{len(exports['int8'][0]):,} B, 16x8 {len(exports['16x8'][0]):,} B")
    images = task.agreement_inputs(args.images, "val")
    print(f"QEMU -icount shift=0 instructions per inference (lower bounds on cycles), median of {args.runs} runs on "
          f"the first validation image; {len(images)} validation images' outputs compared with TFLM byte for byte")
    hdr = f"{'core':5} {'MACs':>9} {'int8 instr':>11} {'int8 i/MAC':>10} {'16x8 instr':>11} {'16x8 i/MAC':>10} {'16x8/int8':>9} {'TFLM-exact':>10}"
    _rule(hdr)
    ok = True
    for core in args.cores:
        elf = build(CORE_ENVS[core], build_dir=args.build_dir).elf
        exact = True
        rows: dict[str, dict] = {}
        for i, img in enumerate(images):
            models = {k: (tfl, quantize_input(img[None], man)) for k, (tfl, man) in exports.items()}
            got = ipm.run_core(core, elf, models, args.runs if i == 0 else 1)
            rows = rows or got
            exact &= all(r["exact"] for r in got.values())
        r8, r16 = rows["int8"], rows["16x8"]
        i8, i16 = r8["median"] / r8["macs"], r16["median"] / r16["macs"]
        ok &= exact
        print(f"{core:5} {r16['macs']:>9,} {r8['median']:>11,.0f} {i8:>10.3f} {r16['median']:>11,.0f} {i16:>10.3f} "
              f"{i16 / i8:>9.2f} {'yes' if exact else 'NO':>10}")
    return 0 if ok else 1


def _qat_row(task, label: str, model, calib, export: dict, fp: dict, cols: tuple[str, str, str]) -> None:
    """Export ``model`` with ``export`` (``export_model`` options), score it in TFLM on each split of ``fp``, print
    one row (.tflite bytes and the device array's, ``slim_tflite``)."""
    with tempfile.TemporaryDirectory() as tmp:
        res = export_model(model, calib, Path(tmp) / "m", name=task.name, **export)
        tfl, man = res.read_tflite(), res.manifest
    predict = predict_fn(tfl, {**man, "arena_bytes": arena_bytes(tfl)})
    cells = []
    for sp, ref in fp.items():
        q = task.evaluate(predict, sp)
        cells.append(f"{q.value:>8.4f} {_drop(task, q, ref):>26}")
    seed, steps, secs = cols
    print(f"{task.name:12} {label:40} {seed:>4} {steps:>5} {secs:>6} {len(tfl):>9} {len(slim_tflite(tfl)):>8} "
          + " ".join(cells), flush=True)


def _qat_task(args: argparse.Namespace, name: str, splits: list[str]) -> None:
    # Deferred (they load torch, 1-2 s): the kernels and convs commands need no torch.
    from edgeprune.host.compress.finetuning import finetune
    from edgeprune.host.compress.surgery import named_layers

    task = get_task(name)
    base = task.baseline().eval()
    plan = {n: "int4" for n in named_layers(base)}
    layout = "tensor" if getattr(base, "PREFIX", None) in ("gru", "lstm") else "channel"
    calib = task.calibration_inputs(512)
    fp = {sp: task.evaluate_model(base, sp) for sp in splits}
    print(f"{name:12} {'float32':40} {'':>4} {'':>5} {'':>6} {'':>9} {'':>8} "
          + " ".join(f"{fp[sp].value:>8.4f} {'':>26}" for sp in splits), flush=True)
    for weights in ("channel", "tensor"):
        _qat_row(task, f"int8 PTQ ({weights})", base, calib, {"weights": weights}, fp, ("", "", ""))
    convs = any(n.startswith("conv") for n in plan)
    scales = args.int4_scales if convs else ["channel"]  # without convolutions the layouts are the same model
    for s4 in scales:
        export = {"weights": layout, "precision": plan, "int4_scales": s4}
        tag = f" (conv {s4})" if convs else ""
        _qat_row(task, f"int4 PTQ{tag}", base, calib, export, fp, ("", "", ""))
    sign = 1.0 if task.higher_is_better else -1.0

    def validate(m) -> float:
        return sign * float(task.evaluate_model(m, "val").value)

    for s4 in scales:
        export = {"weights": layout, "precision": plan, "int4_scales": s4}
        tag = f" conv {s4}" if convs else ""
        for seed in args.seeds:
            for stochastic in ([False, True] if args.stochastic else [False]):
                model = copy.deepcopy(base)
                started = time.perf_counter()
                ft = finetune(model, task, args.steps, copy.deepcopy(base), qat=True, precision=plan, weights=layout,
                              int4_scales=s4, stochastic=stochastic, seed=seed, lr=args.lr, validate=validate,
                              patience=args.patience)
                secs = f"{time.perf_counter() - started:.0f}"
                label = f"int4 QAT{tag}{' SR' if stochastic else ''} (kept {ft.best_step})"
                _qat_row(task, label, model.eval(), calib, export, fp, (str(seed), str(len(ft.losses)), secs))


def qat(args: argparse.Namespace) -> int:
    """int4 everywhere: PTQ vs QAT (same seeds), exported and scored in TFLM, drops paired against FP32."""
    # Deferred (1-2 s): the kernels and convs commands need no torch.
    import torch

    torch.set_num_threads(1)
    splits = ["val", "test"] if args.test else ["val"]
    print("int4 weights on every weighted layer; drop vs FP32 in pp, paired on the same windows, 95 % bootstrap "
          "interval; every quantised model run in TFLM (PyPI tflite-micro)")
    hdr = f"{'task':12} {'model':40} {'seed':>4} {'steps':>5} {'s':>6} {'.tflite B':>9} {'device B':>8} " + " ".join(
        f"{sp + ' acc':>8} {sp + ' drop pp [95 %]':>26}" for sp in splits)
    _rule(hdr)
    for name in args.tasks:
        _qat_task(args, name, splits)
    return 0


def _gru_parser(sub, name: str, cores: list[str]) -> argparse.ArgumentParser:
    """The options the weather-GRU subcommands share (gru16, gru16one, float1)."""
    p = sub.add_parser(name)
    p.add_argument("--task", default="weather-gru")
    p.add_argument("--cores", nargs="+", default=cores)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--windows", type=int, default=3, help="validation windows whose every step is checked on the device")
    p.add_argument("--hidden", type=int, nargs="+", help="an untrained GRU of these hidden sizes instead of the baseline")
    p.add_argument("--no-device", action="store_true", help="TFLM validation only")
    p.add_argument("--build-dir", type=Path, default=ROOT / ".pio" / "build-mixed")
    return p


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("kernels")
    k.add_argument("--cores", nargs="+", default=["m0", "m3", "m4", "m7", "m33"])
    k.add_argument("--runs", type=int, default=3)
    k.add_argument("--n", type=int, default=256)
    k.add_argument("--build-dir", type=Path, default=ROOT / ".pio" / "build-mixed")
    c = sub.add_parser("convs")
    c.add_argument("--cores", nargs="+", default=["m0", "m3", "m4", "m7", "m33"])
    c.add_argument("--runs", type=int, default=3)
    c.add_argument("--build-dir", type=Path, default=ROOT / ".pio" / "build-mixed")
    z = sub.add_parser("sizes")
    z.add_argument("--tasks", nargs="+", default=["weather-gru", "digits-cnn"])
    _gru_parser(sub, "gru16", ["m0", "m3", "m4", "m7", "m33"])
    _gru_parser(sub, "gru16one", ["m3", "m4", "m7", "m33"])
    f = _gru_parser(sub, "float1", ["m0", "m3", "m4", "m7", "m33"])
    f.add_argument("--layers", nargs="+", default=["gru1", "head"], help="layers put at float32, one plan each")
    n = sub.add_parser("cnn16")
    n.add_argument("--task", default="digits-cnn")
    n.add_argument("--cores", nargs="+", default=["m0", "m3", "m4", "m7", "m33"])
    n.add_argument("--runs", type=int, default=3)
    n.add_argument("--images", type=int, default=3, help="validation images whose outputs are checked on the device")
    n.add_argument("--build-dir", type=Path, default=ROOT / ".pio" / "build-mixed")
    d = sub.add_parser("deploy")
    d.add_argument("--tasks", nargs="+", default=["digits-cnn", "weather-gru"])
    d.add_argument("--core", default="m4")
    y = sub.add_parser("bytes")
    y.add_argument("--task", default="digits-cnn")
    q = sub.add_parser("qat")
    q.add_argument("--tasks", nargs="+", default=["weather-gru", "digits-cnn"])
    q.add_argument("--steps", type=int, default=300)
    q.add_argument("--seeds", type=int, nargs="+", default=[0])
    q.add_argument("--lr", type=float, default=1e-3)
    q.add_argument("--stochastic", action="store_true", help="also run each seed with stochastic rounding")
    q.add_argument("--patience", type=int, default=4, help="validations without improvement before stopping")
    q.add_argument("--int4-scales", nargs="+", default=["channel"], choices=["channel", "tensor"],
                   help="scale layouts of int4 convolution filters to run")
    q.add_argument("--test", action="store_true", help="score each model once on the test split too")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return {"kernels": kernels, "convs": convs, "sizes": sizes, "gru16": gru16, "gru16one": gru16one, "float1": float1,
            "cnn16": cnn16,
            "qat": qat,
            "deploy": deploy, "bytes": model_bytes}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
