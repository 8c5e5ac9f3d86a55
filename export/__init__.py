"""edgeprune.export: PyTorch → ONNX → int8 TFLite → TFLM-verified → C array.

Public API (heavy libraries load on first call, not on import)::

    export_model(model, calibration, out_dir, *, quantize="int8", name="model") -> ExportResult
    ExportError(stage, op=None, detail=...)
    TflmRunner(tflite_bytes, manifest)           # the device oracle (edgeprune.export.verify)
    predict_fn(tflite_bytes, manifest)           # float batch → float outputs through TFLM
    quantize_input(x, manifest)                  # raw float input → device bytes (input_norm + int8)

See export/README.md for why a GRU is exported as a streaming cell.
"""

from edgeprune.export.errors import ExportError
from edgeprune.export.pipeline import ExportResult, export_model
from edgeprune.export.verify import TflmRunner, predict_fn, quantize_input

__all__ = ["ExportError", "ExportResult", "TflmRunner", "export_model", "predict_fn", "quantize_input"]
