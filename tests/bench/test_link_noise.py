"""A port that talks garbage: one warning and a periodic summary, not a line per chunk; the error says why."""

from __future__ import annotations

import logging

import pytest

from edgeprune.bench import link
from edgeprune.bench.link import Device, LinkTimeout


class GarbagePort:
    """Answers every read with undecodable, 0x00-delimited junk (like a port at the wrong baud rate)."""

    def __init__(self) -> None:
        self.sent = 0

    @property
    def in_waiting(self) -> int:
        return 8

    def read(self, n: int) -> bytes:
        self.sent += 8
        return b"\x13\x37\xfe\xed\xba\xbe\x42\x00"

    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_garbage_is_summarised_not_logged_per_chunk(caplog, monkeypatch):
    monkeypatch.setattr(link, "DROP_LOG_INTERVAL_S", 0.2)
    port = GarbagePort()
    dev = Device(port, timeout_s=0.5, name="ttyFAKE")
    with caplog.at_level(logging.WARNING, logger="edgeprune.bench.link"), pytest.raises(LinkTimeout) as err:
        dev.hello()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert port.sent // 8 > 100  # hundreds of garbled chunks arrived...
    assert len(warnings) >= 1 and len(warnings) <= 4  # ...first one + one summary per 0.2 s
    assert "further drops are summarised" in warnings[0].getMessage()
    assert any("more garbled chunks" in w.getMessage() for w in warnings[1:])
    assert "bytes of garbage received" in str(err.value) and "wrong baud rate" in str(err.value)
