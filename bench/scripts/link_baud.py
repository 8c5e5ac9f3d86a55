"""Model load time at each link rate on the simulated board (issue 16, link speed).

Run: ``nice .venv/bin/python bench/scripts/link_baud.py [--kb 300] [--rates 115200,921600,2000000]``.
The board is ``tests/doubles/sim_device.py`` on a pseudo-terminal with ``simulate_rate``: every byte the
host sends costs 10 bit times at the board's current rate (8N1), as on a UART. Each rate is reached the way a
search reaches it, through SET_BAUD confirmed by a HELLO at the new rate (``Device.negotiate_baud``); then the
model is loaded (LOAD_BEGIN, 1,020-byte chunks each answered, LOAD_END) and loaded again, which the host skips
because HELLO reports the board already holds it. Replies are not slowed (a few bytes each), and the pty adds
no latency a USB bridge would (1 ms USB frames on full-speed CDC), so real boards are slower per chunk.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))  # the simulated board is a test double

from doubles.sim_device import SimConfig, SimDevice  # noqa: E402

from edgeprune.bench import protocol as P  # noqa: E402
from edgeprune.bench.link import Device  # noqa: E402


def load_times(rate: int, model: bytes) -> tuple[float, float, int]:
    """(first load s, second load s, LOAD_BEGIN frames the board saw) at ``rate`` baud."""
    cfg = SimConfig(bauds=(rate,) if rate != P.BAUD_DEFAULT else (), simulate_rate=True,
                    max_model=max(len(model), 512 * 1024))
    with SimDevice(cfg) as sim, Device.open(sim.port, timeout_s=10.0) as dev:
        got = dev.negotiate_baud((rate,))
        if got != rate:
            raise RuntimeError(f"negotiated {got} baud, wanted {rate}")
        dev.load_model(model)
        first = dev.last_load_s or 0.0
        dev.load_model(model)
        if not dev.last_load_skipped:
            raise RuntimeError("the second load of the same model was sent again")
        return first, dev.last_load_s or 0.0, sim.requests.count(P.MSG_LOAD_BEGIN)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kb", type=int, default=300, help="model size in KB (1,000 bytes)")
    parser.add_argument("--rates", default="115200,230400,460800,921600,2000000", help="comma-separated baud rates")
    args = parser.parse_args()
    model = os.urandom(args.kb * 1000)
    rates = [int(r) for r in args.rates.split(",")]
    print(f"model {len(model):,} B, simulated board (8N1, 10 bit times per byte sent), "
          f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print("| baud | wire time of the model s | first load s | effective KB/s | second load (held) s | LOAD_BEGIN sent |")
    print("|---:|---:|---:|---:|---:|---:|")
    for rate in rates:
        first, second, begins = load_times(rate, model)
        wire = len(model) * 10 / rate
        print(f"| {rate:,} | {wire:.2f} | {first:.2f} | {len(model) / first / 1000:.1f} | {second:.2f} | {begins} |",
              flush=True)


if __name__ == "__main__":
    main()
