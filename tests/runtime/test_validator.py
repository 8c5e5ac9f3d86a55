"""The validator rejects every malformed model with a specific negative status and never executes it."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from edgeprune.bench.reference import ad01_path

from .rt import STATUS
from .tflbuild import FLOAT32, INT8, INT32, Graph, S

OP = S.BuiltinOperator
AD01 = ad01_path()  # shipped in bench/reference/, SHA-256 checked


def small_fc(dtype_in=INT8, code=OP.FULLY_CONNECTED, w_zp=0, bias_len=8) -> Graph:
    g = Graph()
    x = g.tensor([1, 16], dtype_in, 0.05, 3)
    w = g.tensor([8, 16], INT8, 0.01, w_zp, data=np.ones((8, 16), np.int8))
    b = g.tensor([bias_len], INT32, 0.0005, 0, data=np.arange(bias_len, dtype=np.int32))
    y = g.tensor([1, 8], INT8, 0.1, -5)
    g.inputs, g.outputs = [x], [y]
    g.op(code, [x, w, b], [y])
    return g


def status(rt, buf: bytes, arena: int = 1 << 16) -> str:
    return STATUS[rt.init(buf, arena_len=arena)]


def test_valid_model_loads(rt):
    assert status(rt, small_fc().build()) == "OK"
    assert rt.lib.ep_model_macs(rt.model) == 128


def test_every_truncation_is_rejected(rt):
    buf = small_fc().build()
    seen = set()
    for n in range(len(buf)):
        st = status(rt, buf[:n])
        assert st != "OK", n
        seen.add(st)
    assert "TRUNCATED" in seen and "BOUNDS" in seen


def test_identifier_and_version(rt):
    buf = bytearray(small_fc().build())
    bad = bytes(buf[:4]) + b"XXXX" + bytes(buf[8:])
    assert status(rt, bad) == "IDENTIFIER"
    assert status(rt, b"") == "TRUNCATED"


def test_corrupted_root_and_vtable_offsets(rt):
    buf = bytearray(small_fc().build())
    for root in (len(buf) + 4, 0xFFFFFFF0, 2):
        b = bytearray(buf)
        struct.pack_into("<I", b, 0, root)
        assert status(rt, bytes(b)) in {"TRUNCATED", "BOUNDS"}
    (root,) = struct.unpack_from("<I", buf, 0)
    for soff in (0x7FFFFFFF, -0x7FFFFFFF, len(buf)):
        b = bytearray(buf)
        struct.pack_into("<i", b, root, soff)
        assert status(rt, bytes(b)) == "BOUNDS"


def test_unsupported_op_and_dtype(rt):
    g = Graph()
    x = g.tensor([1, 8], INT8, 0.1, 0)
    y = g.tensor([1, 8], INT8, 1 / 256, -128)
    g.inputs, g.outputs = [x], [y]
    g.op(OP.SOFTMAX, [x], [y])
    assert status(rt, g.build()) == "OP"
    assert status(rt, small_fc(dtype_in=S.TensorType.INT16).build()) == "DTYPE"
    g = Graph()
    a = g.tensor([1, 8], FLOAT32)
    b = g.tensor([1, 8], INT8, 0.1, 0)
    y = g.tensor([1, 8], INT8, 0.1, 0)
    g.inputs, g.outputs = [a, b], [y]
    g.op(OP.ADD, [a, b], [y])
    assert status(rt, g.build()) == "DTYPE"


def test_quant_shape_buffer_graph_errors(rt):
    assert status(rt, small_fc(w_zp=3).build()) == "QUANT"
    assert status(rt, small_fc(bias_len=7).build()) == "SHAPE"
    g = small_fc()
    g.buffers[1].data = g.buffers[1].data[:-1]  # weights one byte short
    assert status(rt, g.build()) == "BUFFER"
    g = small_fc()
    g.inputs = [3]  # the output is declared an input too, and x is never written
    assert status(rt, g.build()) == "GRAPH"
    g = small_fc()
    g.ops[0].inputs = [0, 1, 2, 99]
    assert status(rt, g.build()) in {"OP", "GRAPH"}


def test_two_subgraphs_and_limits(rt):
    g = small_fc()
    m = S.ModelT.InitFromPackedBuf(g.build(), 0)
    m.subgraphs = m.subgraphs * 2
    import flatbuffers

    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    assert status(rt, bytes(b.Output())) == "SUBGRAPHS"
    g = Graph()
    prev = g.tensor([1, 4], FLOAT32)
    g.inputs = [prev]
    for _ in range(200):
        nxt = g.tensor([1, 4], FLOAT32)
        g.op(OP.RELU, [prev], [nxt])
        prev = nxt
    g.outputs = [prev]
    assert status(rt, g.build()) == "LIMITS"


def test_arena_too_small_and_api_misuse(rt):
    buf = small_fc().build()
    assert status(rt, buf, arena=48) == "ARENA"
    # A failed init leaves the model unusable rather than half-initialised.
    assert STATUS[rt.invoke()] == "STATE"
    assert status(rt, buf) == "OK"
    assert STATUS[rt.set_input(1, b"\0")] == "INDEX"
    assert STATUS[rt.set_input(0, b"\0" * 17)] == "RANGE"
    assert STATUS[rt.set_input(0, b"\0" * 4, offset=13)] == "RANGE"
    assert STATUS[rt.set_input(0, b"\0" * 16)] == "OK"
    assert STATUS[rt.invoke()] == "OK"


def test_ad01_missing_op_is_graph_error(rt):
    if not AD01.exists():
        pytest.fail(f"{AD01} missing")
    m = S.ModelT.InitFromPackedBuf(AD01.read_bytes(), 0)
    import flatbuffers

    del m.subgraphs[0].operators[3]  # tensor consumed by op 4 is never produced
    b = flatbuffers.Builder(1 << 20)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    assert status(rt, bytes(b.Output()), arena=1 << 20) == "GRAPH"
