"""Fuzzing in CI from the seed corpora kept in the repository (issue 16, deliverable 6): the firmware's frame
receiver/parser/dispatcher and the runtime's model validator, each a bounded run under ASan/UBSan from
``firmware/tests/corpus``; every file in a corpus's ``regressions/`` (inputs that once crashed) is replayed.
The host's frame decoder is fuzzed from the same link corpus in tests/bench/test_fuzz_frame_decoder.py."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from edgeprune.bench.paths import project_root
from edgeprune.bench.reference import ad01_path

from .test_golden import _compile

CORPUS = project_root() / "firmware" / "tests" / "corpus"


def corpus_files(name: str, ext: str) -> list[Path]:
    folder = CORPUS / name
    files = sorted(folder.glob(f"*{ext}")) + sorted((folder / "regressions").glob(f"*{ext}"))
    assert len(files) >= 3, f"the {name} seed corpus in {folder} is missing; run firmware/tests/corpus/make_corpus.py"
    return files


def test_link_corpus_fuzzed_from_its_seeds(tmp_path):
    exe = _compile(tmp_path, "replay_link",
                   ["tests/replay_link.c", "tests/host_port.c", "src/ep_frame.c", "src/ep_sha256.c", "src/ep_link.c"],
                   ["-DEP_HAVE_RUNTIME=0", "-DEP_MODEL_MAX=8192u", "-DEP_ARENA_BYTES=4096u"])
    seeds = corpus_files("link", ".bin")
    proc = subprocess.run([str(exe), "100000", "16", *map(str, seeds)], capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    m = re.search(r"replay: (\d+) frames, (\d+) resets, (\d+) malformed replies, (\d+) seeds", proc.stdout)
    assert m, proc.stdout
    frames, resets, bad, n = map(int, m.groups())
    assert n == len(seeds) and frames > 100_000 and resets > 0 and bad == 0


@pytest.mark.slow
def test_validator_corpus_fuzzed_from_its_seeds(tmp_path):
    from runtime.rt import CFLAGS, RUNTIME, sources
    from runtime.test_fuzz import SAN

    exe = tmp_path / "fuzz_validator"
    srcs = [s for s in sources() if not s.endswith("host_shim.c")] + [str(RUNTIME / "tests" / "fuzz_validator.c")]
    cflags = [f for f in CFLAGS if f not in ("-fPIC", "-shared")]
    subprocess.run(["gcc", *cflags, *SAN, "-o", str(exe), *srcs, "-lm"], check=True, timeout=240)
    seeds = corpus_files("validator", ".tflite")
    # The large seed goes last (the fuzzer picks it 1 time in 8): AD01, shipped and SHA-checked in bench/reference.
    res = subprocess.run([str(exe), "30000", "16", *map(str, seeds), str(ad01_path())], capture_output=True,
                         text=True, timeout=240, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    m = re.search(r"iterations=(\d+) loaded=(\d+) invoked=(\d+)", res.stdout)
    assert m, res.stdout
    iters, loaded, invoked = map(int, m.groups())
    assert iters >= 30_000 and 0 < invoked <= loaded < iters
