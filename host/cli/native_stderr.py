"""Drop TensorFlow's known start-up noise from the process's native stderr (CLI only).

TensorFlow 2.21's C++ runtime prints oneDNN notices, a CUDA probe failure on CPU-only hosts and
converter banners straight to file descriptor 2, before (and regardless of) Python logging and
``TF_CPP_MIN_LOG_LEVEL``. The CLI routes fd 2 through a pipe and forwards every line except those
known patterns, so real errors still reach the terminal. Libraries never do this; ``-vv`` turns it off.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading

NOISE = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|[IWE]\d{4} [\d:.]+\s+\d+ (port|cudart_stub|cuda_platform|cuda_executor|cpu_feature_guard|"
    rb"gpu_device|devices)\.cc:\d+\]"
    rb"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\."
    rb"|fully_quantize: \d+, inference_type: \d+"
    rb"|To enable the following instructions: .* in other operations, rebuild TensorFlow)"
)


def is_noise(line: bytes) -> bool:
    return NOISE.match(line) is not None


def install() -> None:
    """Start filtering fd 2 for the rest of the process (idempotent, no-op when fd 2 is unusable)."""
    if getattr(install, "_done", False):
        return
    try:
        real = os.dup(2)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
    except OSError:
        return
    install._done = True  # type: ignore[attr-defined]

    def pump() -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(read_end, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            buf += chunk
            *lines, buf = buf.split(b"\n")
            out = b"".join(line + b"\n" for line in lines if not is_noise(line))
            if out:
                os.write(real, out)
        if buf and not is_noise(buf):
            os.write(real, buf)

    thread = threading.Thread(target=pump, name="native-stderr-filter", daemon=True)
    thread.start()

    def restore() -> None:
        sys.stderr.flush()
        os.dup2(real, 2)  # closes the pipe's last write end, so the pump sees EOF and drains
        thread.join(timeout=2.0)

    atexit.register(restore)
