"""Two commands at once never collide (issue 32, items 5 and 6): two searches given the same new ``--out`` (one
wins, the other is refused in one line, writes nothing into it and leaves nothing behind), and two ``edgeprune
bench`` of the same model on a cold firmware build (each builds in the same private PlatformIO build dir; the
second waits for the first's lock instead of linking half-written objects)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from edgeprune.bench.paths import project_root
from edgeprune.host.search.store import RunStore

HERE = Path(__file__).resolve().parent
STUB = HERE / "_cli_stub_run.py"


def _search(tmp_path: Path, out: Path, seed: int) -> subprocess.Popen:
    env = {**os.environ, "EDGEPRUNE_CACHE": str(tmp_path / "cache"), "EP_TEST_DELAY": "0.05"}
    return subprocess.Popen([sys.executable, str(STUB), "search", "--out", str(out), "--strategy", "random",
                             "--budget", "2", "--no-host-energy", "--max-acc-drop", "30", "--no-cache",
                             "--seed", str(seed)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_two_searches_into_the_same_new_out_one_wins_the_other_leaves_nothing(tmp_path):
    for round_ in range(3):
        out = tmp_path / f"run{round_}"
        procs = {seed: _search(tmp_path, out, seed) for seed in (11, 22)}
        results = {seed: (p.communicate(timeout=240), p.returncode) for seed, p in procs.items()}
        winners = [seed for seed, (_, rc) in results.items() if rc == 0]
        assert len(winners) == 1, {s: (rc, err[-1500:]) for s, ((_, err), rc) in results.items()}
        (loser,) = set(results) - set(winners)
        (_, err), rc = results[loser]
        assert rc == 1 and "Traceback" not in err, err[-3000:]
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1, err
        assert re.search(rf"{re.escape(str(out))} (was taken a moment ago by another edgeprune search|is in use by "
                         r"another edgeprune process|already holds a run)", lines[0]), lines[0]
        assert "Directory not empty" not in lines[0]
        with RunStore.open_existing(out) as store:
            assert store.get_meta("options")["seed"] == winners[0], "the refused search wrote its options"
            assert store.device_evaluations() == 2
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(f".run{round_}")) == []


def _bench(build_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "PLATFORMIO_BUILD_DIR": str(build_dir), "COLUMNS": "200"}
    model = project_root() / "bench" / "reference" / "mlperf_tiny_ad01_int8.tflite"
    return subprocess.Popen([str(Path(sys.executable).with_name("edgeprune")), "bench", str(model), "--device", "qemu:m4",
                             "--repeats", "1", "--warmup", "0", "--agreement", "1", "--no-deploy-build"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_two_benches_at_once_on_a_cold_build(tmp_path):
    build_dir = tmp_path / "pio-build"  # cold: nothing built there yet
    procs = [_bench(build_dir), _bench(build_dir)]
    outs = [p.communicate(timeout=840)[0] for p in procs]
    for p, out in zip(procs, outs, strict=True):
        assert p.returncode == 0, out[-3000:]
    counts = [re.findall(r"count \(median\)\s*│\s*([\d,]+) instructions", out) for out in outs]
    assert all(len(c) == 1 for c in counts), outs[0][-2000:]
    # The same firmware and model: the counts agree within the SysTick phase (two ticks of 40 instructions).
    a, b = (int(c[0].replace(",", "")) for c in counts)
    assert abs(a - b) <= 80, counts
    assert (build_dir / "qemu-m4" / "firmware.elf").is_file()
