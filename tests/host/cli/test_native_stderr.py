"""The CLI's stderr filter drops TensorFlow's start-up noise and nothing else."""

from __future__ import annotations

import subprocess
import sys

from edgeprune.host.cli.native_stderr import is_noise


def test_known_tensorflow_banners_are_noise() -> None:
    assert is_noise(b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR")
    assert is_noise(b"I0000 00:00:1795289834.384049   22460 port.cc:153] oneDNN custom operations are on.")
    assert is_noise(b"E0000 00:00:1795289818.009531   22094 cuda_platform.cc:52] failed call to cuInit: INTERNAL")
    assert is_noise(b"fully_quantize: 0, inference_type: 6, input_inference_type: INT8, output_inference_type: INT8")


def test_real_errors_are_kept() -> None:
    assert not is_noise(b"Error: ExportError(stage=tflm): op GATHER is not supported")
    assert not is_noise(b"E0000 00:00:1795289818.009531   22094 model_builder.cc:52] bad model")
    assert not is_noise(b"Traceback (most recent call last):")


def test_filter_passes_other_native_stderr_through() -> None:
    code = (
        "import os\n"
        "from edgeprune.host.cli import native_stderr\n"
        "native_stderr.install()\n"
        "os.write(2, b'I0000 00:00:1.5   7 port.cc:153] oneDNN custom operations are on.\\n')\n"
        "os.write(2, b'a real problem\\n')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert out.returncode == 0
    assert out.stderr == b"a real problem\n"
