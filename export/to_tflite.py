"""Stages 2–3: ONNX → TensorFlow (onnx2tf, in-process) → TFLite (full-integer int8 or float32).

TensorFlow is imported once per process, on first use, through ``tensorflow()``; its C++ and Python
log chatter is turned down at that moment. onnx2tf is called with the in-memory ONNX graph, without
onnxsim (it shells out three times and the graph is already folded by the exporter), without op-name
regeneration (names are ours already) and without saving anything: it returns a Keras model, from
which a concrete function with named inputs is frozen and converted (no SavedModel round trip).
Inputs keep the user's names and outputs are ``Identity_k`` in the user's order; ``bind_names`` maps
them so the manifest names tensors correctly however the converter orders them.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from edgeprune.bench.errors import ExportError
from edgeprune.export.graph import ExportGraph, torch_outputs

log = logging.getLogger(__name__)

# Keras float graph vs PyTorch: float32 kernels with other summation orders and fused activations.
TF_PARITY_ATOL = 1e-3

_TF: Any = None


def tensorflow() -> Any:
    """The ``tensorflow`` module, imported once per process with its logging quietened."""
    global _TF
    if _TF is None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import tensorflow as tf

        tf.get_logger().setLevel(logging.ERROR)
        with contextlib.suppress(ImportError):
            from absl import logging as absl_logging

            absl_logging.set_verbosity(absl_logging.ERROR)
        _TF = tf
    return _TF


def warm_up() -> None:
    """Import TensorFlow and onnx2tf now (seconds, once per process) so stage timings exclude it."""
    tensorflow()
    import onnx2tf  # noqa: F401


def onnx_to_keras(graph: ExportGraph, onnx_bytes: bytes, work_dir: str) -> Any:
    """Convert the ONNX graph with onnx2tf and return its Keras model (inputs/outputs in ONNX order)."""
    import onnx

    tensorflow()
    import onnx2tf

    proto = onnx.load_from_string(onnx_bytes)
    # onnx2tf reports progress with print(); keep it out of our output (errors surface as exceptions).
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink):
            model = onnx2tf.convert(
                onnx_graph=proto,
                output_folder_path=os.path.join(work_dir, "onnx2tf"),
                not_use_onnxsim=True,
                not_use_opname_auto_generate=True,
                disable_model_save=True,
                non_verbose=True,
                verbosity="error",
            )
    except (Exception, SystemExit) as exc:  # onnx2tf calls sys.exit(1) on some unsupported graphs
        tail = sink.getvalue().strip().splitlines()[-1:] or [""]
        raise ExportError("onnx2tf", detail=f"onnx2tf could not convert the graph {tail[0][:200]}", cause=exc) from exc
    if model is None:
        raise ExportError("onnx2tf", detail="onnx2tf returned no model")
    got = [tuple(int(d) for d in t.shape) for t in model.inputs]
    want = [spec.shape for spec in graph.inputs]
    if got != want:
        raise ExportError("onnx2tf", detail=f"onnx2tf changed the input layout: {want} became {got}")
    return model


def signature_function(graph: ExportGraph, keras_model: Any) -> Any:
    """A concrete function with the user's input names, returning the outputs in the user's order.

    After freezing, TF names the k-th output ``Identity_k``; ``tflite_info.bind_names`` maps them back.
    """
    tf = tensorflow()
    specs = [tf.TensorSpec(spec.shape, tf.float32, name=spec.name) for spec in graph.inputs]
    names = graph.output_names

    @tf.function(input_signature=specs)
    def serve(*args: Any) -> tuple[Any, ...]:
        outs = keras_model(list(args))
        outs = outs if isinstance(outs, list | tuple) else [outs]
        if len(outs) != len(names):
            raise ExportError("onnx2tf", detail=f"TF graph has {len(outs)} outputs, expected {len(names)}")
        return tuple(outs)

    return serve.get_concrete_function()


def check_tf_parity(
    graph: ExportGraph, func: Any, samples: list[dict[str, np.ndarray]], atol: float = TF_PARITY_ATOL
) -> float:
    """Compare the float TF function with PyTorch; a transposed layout or swapped output fails here."""
    tf = tensorflow()
    worst = 0.0
    for sample in samples:
        ref = torch_outputs(graph, sample)
        got = func(*[tf.constant(sample[name]) for name in graph.input_names])
        for name, r, g in zip(graph.output_names, ref, got, strict=True):
            diff = float(np.max(np.abs(np.asarray(g) - r)))
            if not diff <= atol:
                raise ExportError(
                    "onnx2tf", op=name, detail=f"TF graph differs from PyTorch by {diff:.3g} > {atol:g} on {name!r}"
                )
            worst = max(worst, diff)
    return worst


#: int8 weight-scale layouts of FULLY_CONNECTED: one scale per output row, or one per tensor.
WEIGHT_LAYOUTS = ("channel", "tensor")


def convert_tflite(
    graph: ExportGraph, func: Any, keras_model: Any, samples: list[dict[str, np.ndarray]], quantize: str = "int8",
    weights: str = "channel", calibrate_only: bool = False,
) -> bytes:
    """TFLiteConverter on the concrete function: full-integer int8 (int8 I/O), 16x8 (int16 activations and I/O, int8
    weights) or plain float32.

    int8 and 16x8 use per-tensor activation scales calibrated on ``samples`` (fed by input name) and, for
    FULLY_CONNECTED weights, ``weights="channel"`` (the converter's default: a float scale and an int64
    zero point per output row, 12 B each in the flatbuffer) or ``"tensor"`` (one of each per matrix).
    ``calibrate_only`` (int8): the float model with the calibrated ranges recorded, not yet quantised (the input of
    ``tensorflow.lite.python.convert.mlir_quantize``; ``export.precision_float`` quantises it selectively).
    """
    if weights not in WEIGHT_LAYOUTS:
        raise ExportError("tflite", detail=f"weights must be one of {WEIGHT_LAYOUTS}, got {weights!r}")
    tf = tensorflow()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([func], keras_model)
    # Convert the frozen function directly: the default first writes and re-reads a SavedModel of the
    # whole Keras model, which took >60 % of the time here and adds nothing for a static graph.
    converter.experimental_lower_to_saved_model = False
    if quantize == "int8":

        def representative() -> Iterator[list[np.ndarray]]:
            for sample in samples:
                yield [sample[name] for name in graph.input_names]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
        # The converter's documented switch for dense layers (TF >= 2.16); conv layers are untouched.
        converter._experimental_disable_per_channel_quantization_for_dense_layers = weights == "tensor"
        converter._experimental_calibrate_only = calibrate_only
    elif quantize == "16x8":  # every activation int16, weights int8 (issue 30; int16 I/O)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([s[n] for n in graph.input_names] for s in samples)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        converter.inference_input_type = tf.int16
        converter.inference_output_type = tf.int16
        converter._experimental_disable_per_channel_quantization_for_dense_layers = weights == "tensor"
    elif quantize == "float32":
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    else:
        raise ExportError("tflite", detail=f"quantize must be 'int8', '16x8' or 'float32', got {quantize!r}")
    try:
        with warnings.catch_warnings():
            # "Statistics for quantized inputs were expected": a legacy-int8 hint; the representative
            # dataset supplies the input ranges.
            warnings.simplefilter("ignore", UserWarning)
            return bytes(converter.convert())
    except Exception as exc:  # converter errors come as ConverterError, RuntimeError, ValueError
        raise ExportError("tflite", detail=f"TFLiteConverter ({quantize}) failed", cause=exc) from exc
