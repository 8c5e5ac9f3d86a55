"""The host's frame decoder fuzzed with hypothesis from the link seed corpus kept in the repository
(firmware/tests/corpus/link; issue 16, deliverable 6): any bytes decode to a frame or raise FrameDecodeError
(nothing else), valid frames round-trip, and the link resynchronises after garbage."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeprune.bench import protocol as P
from edgeprune.bench.link import Device, LinkTimeout
from edgeprune.bench.paths import project_root

CORPUS = project_root() / "firmware" / "tests" / "corpus" / "link"
SEEDS = [p.read_bytes() for p in sorted(CORPUS.glob("*.bin")) + sorted((CORPUS / "regressions").glob("*.bin"))]
# Bounded for CI: a few seconds per property.
BOUNDED = settings(max_examples=1500, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def _chunks(stream: bytes) -> list[bytes]:
    return [c for c in stream.split(b"\0") if c]


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        op = draw(st.integers(0, 4))
        if op == 0:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == 1:
            del data[at:]
        elif op == 2:
            data.insert(at, draw(st.integers(0, 255)))
        elif op == 3:
            del data[at]
        else:
            data[at:] = draw(st.sampled_from(SEEDS))[draw(st.integers(0, 8)):]
    return bytes(data)


def _decode_all(stream: bytes) -> list[P.Frame]:
    frames = []
    for chunk in _chunks(stream):
        try:
            frames.append(P.decode_frame(chunk))
        except P.FrameDecodeError as exc:
            assert exc.status in P.STATUS_NAMES
    return frames


def test_the_corpus_is_there_and_decodes():
    assert len(SEEDS) >= 10
    valid = [f for s in SEEDS for f in _decode_all(s)]
    assert len(valid) >= 12  # one per request kind, plus the whole model load


@BOUNDED
@given(st.binary(max_size=2 * P.MAX_ENCODED))
def test_random_bytes_decode_or_raise_frame_decode_error(data):
    _decode_all(data)


@BOUNDED
@given(mutated())
def test_mutated_corpus_frames_decode_or_raise_frame_decode_error(data):
    for frame in _decode_all(data):
        # Whatever decodes is a frame the encoder would produce byte for byte.
        again = P.decode_frame(P.encode_frame(frame.type, frame.seq, frame.payload)[:-1])
        assert (again.type, again.seq, again.payload) == (frame.type, frame.seq, frame.payload)


@BOUNDED
@given(st.integers(0, 0xFF), st.integers(0, 0xFFFF), st.binary(max_size=P.MAX_PAYLOAD))
def test_valid_frames_round_trip(type_, seq, payload):
    encoded = P.encode_frame(type_, seq, payload)
    assert encoded.endswith(b"\0") and b"\0" not in encoded[:-1]
    frame = P.decode_frame(encoded[:-1])
    assert (frame.type, frame.seq, frame.payload) == (type_, seq, payload)


class _Port:
    """A port that hands out a fixed byte stream, then nothing."""

    def __init__(self, data: bytes) -> None:
        self.data = bytearray(data)

    @property
    def in_waiting(self) -> int:
        return len(self.data)

    def read(self, n: int = 1) -> bytes:
        out = bytes(self.data[:n])
        del self.data[:n]
        return out


@settings(max_examples=200, deadline=None, derandomize=True)
@given(mutated(), st.integers(0, 0xFFFF))
def test_device_resynchronises_after_garbage(garbage, seq):
    want = P.encode_frame(P.MSG_HELLO | P.REPLY_FLAG, seq, b"after the garbage")
    dev = Device(_Port(garbage + b"\0" + want), timeout_s=0.2, name="fuzz")
    got = []
    try:
        while True:
            got.append(dev.read_frame(0.02))
    except LinkTimeout:
        pass
    assert got and (got[-1].seq, got[-1].payload) == (seq, b"after the garbage")


def test_regressions_folder_exists():
    # Inputs that once crashed a decoder go here; the properties above replay them as seeds.
    assert (CORPUS / "regressions").is_dir()
