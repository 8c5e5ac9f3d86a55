"""``export_model``: the whole PyTorch → ONNX → TFLite → TFLM → C path, written atomically.

Everything is produced in a temporary directory next to ``out_dir`` and renamed into place only after
TFLM has loaded, checked and run the model, so a failed export leaves no directory that looks complete.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeprune.bench import carray
from edgeprune.bench.atomic import sweep_stale_tmp
from edgeprune.bench.errors import ExportError
from edgeprune.bench.inputs import split_float
from edgeprune.bench.manifest import write_manifest
from edgeprune.bench.tflite_info import bind_names, read_model
from edgeprune.export import fine_input as fine
from edgeprune.export import manifest_build, precision_float, to_onnx, to_tflite, verify
from edgeprune.export import precision as mixed
from edgeprune.export import precision_stitch as stitch
from edgeprune.export.graph import (
    apply_input_norm,
    center_outputs,
    check_calibration,
    fold_input_norm,
    input_norm,
    prepare,
    representative_samples,
    torch_outputs,
)

if TYPE_CHECKING:
    from torch import nn

log = logging.getLogger(__name__)

# Samples compared between onnxruntime/TF and PyTorch, and windows run through TFLM for the int8 figure.
PARITY_SAMPLES = 16
TFLM_PARITY_WINDOWS = 32


@dataclass
class ExportResult:
    """What an export produced and measured.

    Parameters
    ----------
    out_dir:
        Directory holding ``model.tflite``, ``model.onnx``, ``model_data.c/.h``, ``manifest.json``.
    manifest:
        The manifest as written.
    timings:
        Seconds per stage: ``prepare`` (calibration samples), ``import`` (TensorFlow/onnx2tf, first
        export in a process only), ``onnx``, ``onnxruntime-parity``, ``onnx2tf``, ``tflite``, ``tflm``, ``carray``.
    """

    out_dir: Path
    manifest: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def tflite_path(self) -> Path:
        return self.out_dir / "model.tflite"

    @property
    def tflite_bytes(self) -> int:
        return int(self.manifest["sizes"]["tflite_bytes"])

    @property
    def weight_bytes(self) -> int:
        return int(self.manifest["weight_bytes"])

    @property
    def arena_bytes(self) -> int:
        return int(self.manifest["arena_bytes"])

    def read_tflite(self) -> bytes:
        return self.tflite_path.read_bytes()


def _tflm_parity(model: nn.Module, tflite: bytes, man: dict[str, Any], calibration: np.ndarray) -> dict[str, Any]:
    """The user's float model vs TFLM (normalise → quantise → loop → dequantise) on calibration inputs."""
    import torch

    n = min(len(calibration), TFLM_PARITY_WINDOWS)
    idx = np.linspace(0, len(calibration) - 1, num=n).round().astype(int)
    batch = np.asarray(calibration[idx], dtype=np.float32)
    got = verify.predict_fn(tflite, man)(batch)
    with torch.no_grad():
        ref = model(torch.from_numpy(batch)).numpy()
    return {
        "tflm_samples": int(n),
        "tflm_max_abs_diff": float(np.max(np.abs(got - ref))),
        "tflm_mean_abs_diff": float(np.mean(np.abs(got - ref))),
        "tflm_argmax_agreement": float(np.mean(got.argmax(axis=1) == ref.argmax(axis=1))),
        "float_output_range": [float(ref.min()), float(ref.max())],
    }


def _replace_dir(tmp: Path, out_dir: Path) -> None:
    """Move ``tmp`` to ``out_dir``; an existing ``out_dir`` is swapped out first and then deleted."""
    # mkdtemp makes the folder 0700; the published export gets the mode any mkdir would (the umask).
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(tmp, 0o777 & ~mask)
    old = None
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
        os.rename(out_dir, old / out_dir.name)
    try:
        os.rename(tmp, out_dir)
    except OSError:
        if old is not None:  # put the previous export back rather than lose it
            os.rename(old / out_dir.name, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def export_model(
    model: nn.Module,
    calibration: np.ndarray,
    out_dir: str | os.PathLike[str],
    *,
    quantize: str = "int8",
    name: str = "model",
    source: str | None = None,
    normalize_inputs: bool = True,
    center_q: bool = True,
    fine_input: int = 0,
    weights: str = "channel",
    precision: Mapping[str, str] | None = None,
    int4_scales: str = "channel",
) -> ExportResult:
    """Export a canonical model (``StackedGRU``/``StackedLSTM``, ``MLP`` or ``ConvNet``) to a TFLM-verified .tflite and C array.

    ``calibration``: float model inputs from the task's training data, ``[N, T, F]`` (GRU) or
    ``[N, obs]`` (MLP). ``quantize``: ``"int8"`` (full-integer, int8 I/O) or ``"float32"``.
    ``source`` is recorded in the manifest and C comment (defaults to the model's class and sizes).
    ``normalize_inputs``: fold a per-feature standardisation (from ``calibration``) into the first
    layer and record it as the manifest's ``input_norm``; callers feed ``(x − mean)/std`` (``predict_fn``
    and ``quantize_input`` do). It gives every input feature a fair share of the one int8 input scale.
    ``center_q`` (MLP only): export ``Q − mean_a Q`` so int8 resolves the action gaps (manifest
    ``output_centered``); the greedy action is unchanged, the Q-values' common offset is dropped.
    ``fine_input`` (MLP only, ``0`` = off, e.g. ``16``): the input becomes ``[q(z), q((z − q(z))·f)]``
    (twice the features) and layer 0 ``[W, W/f]``, so int8 resolves inputs ``f`` times finer
    (manifest ``input_norm.fine``; ``quantize_input`` builds the pair). Needs ``normalize_inputs``.
    ``weights`` (int8 only): ``"channel"`` (per-row FULLY_CONNECTED scales) or ``"tensor"`` (one scale per
    matrix: 12 B less per output row of every layer; manifest ``weight_scales``).
    ``precision`` (int8 only): config layer → ``"int8"``/``"int4"``/``"16x8"``/``"float32"`` (issue 30): the int8
    model rewritten by ``export.precision`` (manifest ``precision``; ``weight_bytes`` counts int4 weights at half a
    byte); a ``"float32"`` layer is left in float by the converter's selective quantisation
    (``export.precision_float``: its original float weights, counted at 4 B, DEQUANTIZE/QUANTIZE around it). A GRU/LSTM
    with every layer (``head`` included) at ``"16x8"`` is the converter's whole-model 16x8 instead: int16 I/O and
    state (zero points 0), carried between steps by ``qmath.requantize16``; a 16x8 cell or convolution beside int8
    or int4 layers is taken from that conversion (``export.precision_stitch``: its state int16, the stream input
    int8).
    ``int4_scales``: ``"channel"`` or ``"tensor"``, the scale layout of int4 convolution filters
    (``precision.apply_precision``; manifest ``int4_scales`` when ``"tensor"``).
    Raises ``ExportError(stage, op, detail)``; on error ``out_dir`` is left as it was.
    """
    if quantize not in ("int8", "float32"):
        raise ExportError("tflite", detail=f"quantize must be 'int8' or 'float32', got {quantize!r}")
    if weights not in to_tflite.WEIGHT_LAYOUTS:
        raise ExportError("tflite", detail=f"weights must be one of {to_tflite.WEIGHT_LAYOUTS}, got {weights!r}")
    narrowed = {k: v for k, v in (precision or {}).items() if v != "int8"}
    if narrowed and quantize != "int8":
        raise ExportError("tflite", detail="per-layer precision needs quantize='int8'")
    # A recurrent model with every layer at 16x8 is the converter's own whole-model 16x8 (int16 I/O and state);
    # anything else narrowed is the int8 model rewritten per layer.
    whole16 = bool(narrowed) and mixed.whole_16x8(model, narrowed)
    stitched = stitch.stitched_layers(model, narrowed)
    if stitched and "float32" in narrowed.values():
        raise ExportError("tflite", detail="a float32 layer beside a 16x8 cell or convolution is not exported (the 16x8 "
                                           "region is stitched into the plain int8 model)")
    out_dir = Path(out_dir).resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = timings.get(stage, 0.0) + now - clock
        clock = now

    graph = prepare(model)
    calibration = check_calibration(graph, calibration)
    centered = center_q and graph.kind == "mlp"
    if centered:
        model = center_outputs(model)
    # A conv's zero padding is not an affine map of the input: folding a standardisation into the first
    # conv would change the border pixels, so images are exported as the task scales them.
    norm: dict[str, Any] | None = input_norm(calibration) if normalize_inputs and graph.kind != "cnn" else None
    folded = fold_input_norm(model, norm)
    z = apply_input_norm(calibration, norm)
    if fine_input:
        if norm is None:
            raise ExportError("onnx", detail="fine_input needs normalize_inputs=True (the pair is built on z)")
        folded = fine.split_first_layer(folded, fine_input)
        z = split_float(z, *fine.input_grid(z), fine_input)
        norm = {**norm, "fine": int(fine_input)}
    graph = prepare(folded)
    src = source or f"{type(model).__name__} inputs={[s.shape for s in graph.inputs]} outputs={[s.shape for s in graph.outputs]}"
    samples = representative_samples(graph, z)
    step = max(1, len(samples) // PARITY_SAMPLES)
    parity_samples = samples[::step][:PARITY_SAMPLES]
    lap("prepare")
    to_tflite.warm_up()
    lap("import")
    # The writer's pid in the name: a kill -9 mid-export leaves this folder, and the next export sweeps it.
    sweep_stale_tmp(out_dir.parent, f".{out_dir.name}.tmp-")
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-{os.getpid()}-", dir=out_dir.parent))
    try:
        onnx_bytes = to_onnx.export_onnx(graph)
        lap("onnx")
        onnx_diff = to_onnx.check_parity(graph, onnx_bytes, parity_samples)
        lap("onnxruntime-parity")
        keras_model = to_tflite.onnx_to_keras(graph, onnx_bytes, str(tmp / "work"))
        func = to_tflite.signature_function(graph, keras_model)
        tf_diff = to_tflite.check_tf_parity(graph, func, parity_samples)
        lap("onnx2tf")
        floats = sorted(n for n, p in narrowed.items() if p == "float32")
        ops: dict[int, str] | None = None
        if floats and not whole16:  # the converter's selective quantisation; other layers' ops found by weight name
            tflite, calibrated = precision_float.convert_with_float_layers(graph, func, keras_model, samples, model,
                                                                           floats, weights)
            ops = precision_float.weighted_layer_ops(model, calibrated, tflite, graph.output_names)
        else:
            tflite = to_tflite.convert_tflite(graph, func, keras_model, samples, "16x8" if whole16 else quantize,
                                              weights)
        lap("tflite")
        rewrite = {n: p for n, p in narrowed.items() if p != "float32" and n not in stitched}
        if rewrite and not whole16:  # int4 weights and 16x8 FULLY_CONNECTEDs, op by op
            ops = ops if ops is not None else mixed.model_layer_ops(model, tflite, graph.output_names)
            tflite = mixed.apply_precision(tflite, {i: rewrite[n] for i, n in ops.items() if n in rewrite}, int4_scales)
        if stitched:  # 16x8 cells/convolutions beside int8/int4 ones: their ops from the converter's 16x8 model
            regions = stitch.layer_regions(model, tflite, graph.output_names)
            sixteen = to_tflite.convert_tflite(graph, func, keras_model, samples, "16x8", weights)
            pos_in, pos_out = mixed.io_positions(tflite, graph.input_names, graph.output_names)
            pairs = [(pos_out[graph.output_names.index(o)], pos_in[graph.input_names.index(i)])
                     for o, i in graph.recurrent]
            tflite = stitch.stitch_16x8(tflite, sixteen, {n: regions[n] for n in sorted(stitched)}, pairs)
            lap("tflite")
        info = read_model(tflite)
        verify.check_model(info, quantize, io_dtype="int16" if whole16 else "mixed" if stitched else "int8",
                           float_layers=bool(floats))
        bind_names(
            info,
            [(t.name, list(t.shape)) for t in graph.inputs],
            [(t.name, list(t.shape)) for t in graph.outputs],
        )
        arena = verify.arena_bytes(tflite)
        parity = {"onnx_max_abs_diff": onnx_diff, "tf_max_abs_diff": tf_diff, "parity_samples": len(parity_samples)}
        man = manifest_build.build(
            name=name, graph=graph, info=info, quantize=quantize, tflite=tflite, onnx_bytes=onnx_bytes,
            arena=arena, parity=parity, source=src, norm=norm,
        )
        if whole16:  # the converter's 16x8 mode: int16 activations and I/O, int8 weights
            man["quantize"] = "16x8"
        man["output_centered"] = centered
        man["weight_scales"] = weights if quantize == "int8" else None
        if narrowed:
            man["precision"] = dict(sorted(narrowed.items()))
            if int4_scales != "channel":
                man["int4_scales"] = int4_scales
            # int4 weights at half a byte; a float32 layer's weights and biases at 4 B
            man["weight_bytes"] += info.weight_bytes("int4") + info.weight_bytes("float32")
            man["sizes"]["weight_bytes"] = man["weight_bytes"]
            man["sizes"]["bias_bytes"] += info.weight_bytes("int64")  # a 16x8 FULLY_CONNECTED's bias
        verify.smoke_invoke(tflite, man)
        parity.update(_tflm_parity(model, tflite, man, calibration))
        lap("tflm")
        try:
            c_text, h_text = carray.c_source(tflite, f"{name}: {src}")
        except (ValueError, UnicodeError) as exc:
            raise ExportError("carray", detail="could not render the C array", cause=exc) from exc
        shutil.rmtree(tmp / "work", ignore_errors=True)
        (tmp / "model.tflite").write_bytes(tflite)
        (tmp / "model.onnx").write_bytes(onnx_bytes)
        (tmp / "model_data.c").write_text(c_text)
        (tmp / "model_data.h").write_text(h_text)
        write_manifest(tmp / "manifest.json", man)
        _replace_dir(tmp, out_dir)
        lap("carray")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("exported %s: %d B tflite, %d B weights, arena %d B", name, len(tflite), man["weight_bytes"], arena)
    return ExportResult(out_dir, man, timings)


def reference_outputs(model: nn.Module, sample: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Float outputs of the exported form of ``model`` for one named input dict (for tests and tools)."""
    return torch_outputs(prepare(model), sample)
