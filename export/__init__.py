"""edgeprune.export: PyTorch → ONNX → int8 TFLite → TFLM-verified → C array."""
