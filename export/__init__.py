"""edgeprune.export: PyTorch → ONNX → int8 TFLite → TFLM-verified → C array.

Public API (heavy libraries load on first call, not on import)::

    export_model(model, calibration, out_dir, *, quantize="int8", name="model") -> ExportResult
    ExportError(stage, op=None, detail=...)
    predict_fn(tflite_bytes, manifest)           # float batch → float outputs through TFLM

The device oracle (``TflmRunner``) and the input encoding (``quantize_input``) it shares with measurement are
``edgeprune.bench.tflm`` and ``edgeprune.bench.inputs``. See export/README.md for why a GRU is exported as a
streaming cell.
"""

from edgeprune.bench.errors import ExportError
from edgeprune.export.pipeline import ExportResult, export_model
from edgeprune.export.verify import predict_fn

__all__ = ["ExportError", "ExportResult", "export_model", "predict_fn"]
