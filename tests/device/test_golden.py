"""Golden frames (firmware/tests/golden_frames.json) through the Python codec and the firmware's C code,
and the firmware's receiver/parser/dispatcher fuzzed on the host under ASan/UBSan."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from edgeprune.bench import protocol as P
from edgeprune.bench.paths import project_root

from .conftest import golden_path

FW = project_root() / "firmware"
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-O1", "-g", "-fsanitize=address,undefined",
          "-fno-sanitize-recover=all", f"-I{FW / 'include'}", f"-I{FW / 'src'}", f"-I{FW / 'port'}", f"-I{FW / 'tests'}"]


def frames() -> list[dict]:
    doc = json.loads(golden_path().read_text())
    assert doc["protocol"] == P.PROTOCOL_VERSION
    return doc["frames"]


@pytest.mark.parametrize("fr", [f for f in frames() if f["kind"] == "valid"], ids=lambda f: f["name"])
def test_python_encodes_golden(fr):
    encoded = bytes.fromhex(fr["encoded"])
    assert P.encode_frame(fr["type"], fr["seq"], bytes.fromhex(fr["payload"])) == encoded
    assert encoded.count(0) == 1 and encoded.endswith(b"\0")
    got = P.decode_frame(encoded[:-1])
    assert (got.type, got.seq, got.payload) == (fr["type"], fr["seq"], bytes.fromhex(fr["payload"]))


@pytest.mark.parametrize("fr", [f for f in frames() if f["kind"] == "malformed"], ids=lambda f: f["name"])
def test_python_rejects_golden(fr):
    with pytest.raises(P.FrameDecodeError) as info:
        P.decode_frame(bytes.fromhex(fr["encoded"]))
    assert info.value.status == fr["status"]


def _compile(tmp_path: Path, out: str, sources: list[str], defines: list[str] = ()) -> Path:  # type: ignore[assignment]
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.fail("no host C compiler (apt-get install gcc)")
    exe = tmp_path / out
    cmd = [cc, *CFLAGS, *defines, *[str(FW / s) for s in sources], "-o", str(exe)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return exe


def test_c_code_matches_golden(tmp_path):
    exe = _compile(tmp_path, "test_frames", ["tests/test_frames.c", "src/ep_frame.c", "src/ep_sha256.c"])
    proc = subprocess.run([str(exe), str(golden_path())], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    n_valid = sum(f["kind"] == "valid" for f in frames())
    assert f"{n_valid} valid" in proc.stdout and "0 failures" in proc.stdout


def test_fuzz_link_on_host(tmp_path):
    exe = _compile(tmp_path, "fuzz_link",
                   ["tests/fuzz_link.c", "tests/host_port.c", "src/ep_frame.c", "src/ep_sha256.c", "src/ep_link.c"],
                   ["-DEP_HAVE_RUNTIME=0", "-DEP_MODEL_MAX=8192u", "-DEP_ARENA_BYTES=4096u"])
    proc = subprocess.run([str(exe), "120000", "7"], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    m = re.search(r"fuzz: (\d+) frames, (\d+) resets, (\d+) malformed replies", proc.stdout)
    assert m, proc.stdout
    frames_done, resets, bad = map(int, m.groups())
    assert frames_done >= 120000 and resets > 0 and bad == 0
