"""A model prepared at export: the runtime's state after init, emitted as C data for a library with no parser.

``prepare(lib_src, core, arena)`` builds ``firmware/deploy/prepare/ep_dump.c`` with the library's own runtime
sources and config for ``core`` (the same compiler and flags as the library), runs it in QEMU, and reads back the
model record (``ep_model_t``) and the arena after ``ep_model_init_ex`` (and ``ep_model_set_sequence``) — twice, with
the model and the arena at different addresses. A word that moved by the arena's displacement is a pointer into the
arena, one that moved by the model's a pointer into the model; nothing else moved. So the prepared state is exactly
what the device's parser and planner compute (it is their output, on the target's struct layout), not a second
implementation of them.

What is kept of it (``emit``): the record and the arena as zero-run images with their pointers turned into
offsets; the constants the kernels read at invoke (weights) as one array. Left out, because only init reads them:
the model flatbuffer, per-channel scale vectors, planner lifetimes, the records of tensors that are never
materialised (inside a fused step), and the int32 bias of every int8 and int4 FULLY_CONNECTED (init folds it into
the op's scratch, which is kept). An int4 convolution filter, which init unpacked into the arena as int8, ships as
its nibbles (``edgeprune_model_int4``): ``ep_prepared_bind`` unpacks it back to the same arena bytes at the device's
start.
"""

from __future__ import annotations

import re
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

from edgeprune.bench.errors import ExportError
from edgeprune.bench.paths import project_root
from edgeprune.export.deploy_tools import (
    COMPILE_FLAGS,
    LINK_FLAGS,
    LINK_LIBS,
    arm_gcc,
    board_flags,
    compile_object,
    deploy_sources,
    example_ld,
    run_example,
    run_tool,
)

_LAYOUT_RE = re.compile(r"^layout (\w+) ([0-9a-f]{8}) $", re.M)
_RUN_RE = re.compile(r"^run ([0-9a-f]{8}) ([0-9a-f]{8}) ([0-9a-f]{8}) $", re.M)
#: Shorter zero gaps stay inside a run: a run costs 4 bytes of header.
_GAP = 3


class PrepareError(ExportError):
    """The model could not be prepared at export (toolchain missing, the runtime refused it, a pointer the
    relocation cannot explain)."""

    def __init__(self, detail: str) -> None:
        super().__init__("deploy", detail=f"preparing the model: {detail}")


@dataclass(frozen=True)
class Snapshot:
    """The runtime's state after init, from two runs.

    :param layout: struct offsets and sizes the dump printed (``ep_model_t``, ``ep_tensor_t``, ``ep_op_t``)
    :param records: the model record of each run
    :param arenas: the used arena of each run
    :param fb: the model's address in each run
    :param arena_at: the arena's address in each run
    :param model: the model bytes (what a pointer into the model points at)
    """

    layout: dict[str, int]
    records: tuple[bytes, bytes]
    arenas: tuple[bytes, bytes]
    fb: tuple[int, int]
    arena_at: tuple[int, int]
    model: bytes = b""


def dump_source() -> Path:
    return project_root() / "firmware" / "deploy" / "prepare" / "ep_dump.c"


def run_dump(lib_src: Path, core: str, arena: int, model: bytes, *, timeout_s: float = 300.0) -> Snapshot:
    """Build the snapshot program with the library sources at ``lib_src`` (its ``src``) and run it in QEMU.

    :param lib_src: the library's ``src`` folder (``edgeprune_model_data.c`` with the model, ``runtime/``)
    :param core: the core the library is for
    :param arena: bytes of each of the two arenas (at least what the planner asked for)
    :param model: the model bytes (a second copy is linked at another address)
    :param timeout_s: limit per compiler run and for the QEMU run
    """
    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None:
        raise PrepareError("needs arm-none-eabi-gcc and qemu-system-arm (apt-get install gcc-arm-none-eabi "
                           "libnewlib-arm-none-eabi qemu-system-arm)")
    gcc = arm_gcc()
    cpu = board_flags(core)
    flags = [*cpu, *COMPILE_FLAGS]
    cache = project_root() / ".pio" / "deploy-obj"
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ep-prepare-") as tmp:
        work = Path(tmp)
        (work / "model.bin").write_bytes(model)
        (work / "ep_dump_copy.S").write_text(
            '  .section .rodata.ep_dump_model_copy,"a"\n  .balign 16\n  .global ep_dump_model_copy\n'
            f'ep_dump_model_copy:\n  .incbin "{work / "model.bin"}"\n', encoding="utf-8")
        sources = [lib_src / "edgeprune_model_data.c", *sorted((lib_src / "runtime").glob("*.c")), dump_source(),
                   deploy_sources() / "qemu" / "board_qemu.c"]
        # The library's own objects (same flags, same cache): only the snapshot program itself is built anew.
        objects = [compile_object(gcc, s, [lib_src], [*flags, f"-DEP_DUMP_ARENA={int(arena)}u"] if s == dump_source()
                           else flags, cache, timeout_s) for s in sources]
        copy_obj = work / "ep_dump_copy.o"
        proc = run_tool([gcc, *cpu, "-c", str(work / "ep_dump_copy.S"), "-o", str(copy_obj)], timeout_s, "assembling")
        if proc.returncode != 0:
            raise PrepareError(f"assembling the model copy failed: {proc.stderr.strip()[-300:]}")
        ld = work / "dump.ld"
        # Two arenas of a large model need more than the example's 256 KiB of RAM: QEMU's mps2-an385/386/500 have
        # 4 MiB there, its enlarged microbit 512 KiB (the AN505's memory map stays as the example's).
        ram = {"m0": "512K", "m3": "4M", "m4": "4M", "m7": "4M"}.get(core, "256K")
        ld.write_text(example_ld(core).replace("LENGTH = 256K", f"LENGTH = {ram}"), encoding="utf-8")
        elf = work / "dump.elf"
        proc = run_tool([gcc, *cpu, *LINK_FLAGS, f"-T{ld}", *map(str, objects), str(copy_obj), *LINK_LIBS, "-o", str(elf)],
                    timeout_s, "linking the snapshot program")
        if proc.returncode != 0:
            raise PrepareError(f"linking the snapshot program failed: {proc.stderr.strip()[-400:]}")
        run = run_example(elf, core, timeout_s=timeout_s)
    if run.status != 0:
        raise PrepareError(f"the runtime refused the model on {core}: {run.text.strip()[-200:]!r}")
    return parse_dump(run.text, model)


def parse_dump(text: str, model: bytes) -> Snapshot:
    """The :class:`Snapshot` in the snapshot program's output.

    :param text: everything it printed
    :param model: the model bytes it loaded
    """
    layout = {k: int(v, 16) for k, v in _LAYOUT_RE.findall(text)}
    runs = _RUN_RE.findall(text)
    if len(runs) != 2 or "model" not in layout:
        raise PrepareError(f"unexpected snapshot output {text.strip()[-200:]!r}")
    parts = re.split(r"^run [^\n]*\n", text, flags=re.M)[1:]
    records, arenas = [], []
    for part, (_, _, used) in zip(parts, runs, strict=True):
        records.append(bytes.fromhex("".join(re.findall(r"^m ([0-9a-f]+)$", part, re.M))))
        arenas.append(bytes.fromhex("".join(re.findall(r"^a ([0-9a-f]+)$", part, re.M))))
        if len(records[-1]) != layout["model"] or len(arenas[-1]) != int(used, 16):
            raise PrepareError("the snapshot output is truncated")
    return Snapshot(layout, (records[0], records[1]), (arenas[0], arenas[1]),
                    (int(runs[0][0], 16), int(runs[1][0], 16)), (int(runs[0][1], 16), int(runs[1][1], 16)), model)


def relocations(a: bytes, b: bytes, snap: Snapshot, fb_len: int) -> tuple[bytearray, list[int], list[int]]:
    """The image ``a`` with every pointer replaced by its offset, and the offsets of arena and model pointers.

    :param a: the image of the first run
    :param b: the same image of the second run
    :param snap: the snapshot (addresses of the two runs)
    :param fb_len: model bytes (a model pointer lies within them)
    """
    d_arena = (snap.arena_at[1] - snap.arena_at[0]) & 0xFFFFFFFF
    d_fb = (snap.fb[1] - snap.fb[0]) & 0xFFFFFFFF
    if d_arena == d_fb:
        raise PrepareError("the model and the arena moved by the same amount; cannot tell their pointers apart")
    out = bytearray(a)
    to_arena: list[int] = []
    to_fb: list[int] = []
    i = 0
    while i < len(a):
        if a[i] == b[i]:
            i += 1
            continue
        at = i & ~3
        wa, wb = struct.unpack_from("<I", a, at)[0], struct.unpack_from("<I", b, at)[0]
        delta = (wb - wa) & 0xFFFFFFFF
        if delta == d_arena and 0 <= wa - snap.arena_at[0] <= len(snap.arenas[0]) + (1 << 20):
            struct.pack_into("<I", out, at, wa - snap.arena_at[0])
            to_arena.append(at)
        elif delta == d_fb and 0 <= wa - snap.fb[0] <= fb_len:
            struct.pack_into("<I", out, at, wa - snap.fb[0])
            to_fb.append(at)
        else:
            raise PrepareError(f"a word at {at} differs between the runs by {delta:#x}, neither the arena's "
                               f"{d_arena:#x} nor the model's {d_fb:#x} displacement")
        i = at + 4
    return out, to_arena, to_fb


def _steps(table: bytes) -> bytes | None:
    """A 256-byte int8 table that rises in value order (stored so, or indexed by the input's byte: value order
    starts at index 128) as first value, flags and its 255 steps at 1, 2 or 4 bits (ep_prepared.h); ``None`` when it
    does not rise or a step is larger than 15."""
    v = [b - 256 if b > 127 else b for b in table]
    for start in (0, 128):
        order = v[start:] + v[:start]
        steps = [b - a for a, b in zip(order, order[1:], strict=False)]
        if min(steps) < 0:
            continue
        bits = next((b for b in (1, 2, 4) if max(steps) < 1 << b), 0)
        if not bits:
            return None
        packed = bytearray((255 * bits + 7) // 8)
        for k, d in enumerate(steps):
            packed[k * bits >> 3] |= d << (k * bits & 7)
        return bytes([order[0] & 0xFF, bits | (0x10 if start else 0)]) + bytes(packed)
    return None


def _field(lay: dict[str, int], name: str, size: int, index: int = 0) -> range:
    """Byte offsets of field ``name`` (element ``index`` of ``size`` bytes) within its record."""
    return range(lay[name] + index * size, lay[name] + (index + 1) * size)


def _u32(buf: bytes | bytearray, at: int) -> int:
    return struct.unpack_from("<I", buf, at)[0]


def _runs(image: bytes | bytearray) -> list[tuple[int, int]]:
    """Non-zero runs of ``image`` (gaps shorter than ``_GAP`` bridged)."""
    runs: list[tuple[int, int]] = []
    for m in re.finditer(rb"[^\x00]+", bytes(image)):
        s, e = m.start(), m.end()
        if runs and s - (runs[-1][0] + runs[-1][1]) < _GAP:
            runs[-1] = (runs[-1][0], e - runs[-1][0])
        else:
            runs.append((s, e - s))
    return runs


def _skips(runs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``runs`` as (zero bytes to skip, bytes to copy) pairs of at most 255 each (ep_prepared.h)."""
    out: list[tuple[int, int]] = []
    at = 0
    for s, n in runs:
        gap, end = s - at, s + n
        while gap > 255:
            out.append((255, 0))
            gap -= 255
        while n > 255:
            out.append((gap, 255))
            gap, n = 0, n - 255
        out.append((gap, n))
        at = end
    return out


@dataclass(frozen=True)
class Prepared:
    """The prepared model as C source and its byte counts.

    :param source: ``src/edgeprune_model_data.c`` of the prepared library
    :param arena_bytes: arena the model needs (the runtime's ``ep_model_arena_used``)
    :param data_bytes: the constants kept (weights)
    :param state_bytes: everything else the library stores for the model (images, runs, relocations)
    :param wide: offsets need 32 bits (an image of 64 KiB or more)
    :param int4: convolution filters kept packed (``edgeprune_model_int4``: bind unpacks them into the arena)
    """

    source: str
    arena_bytes: int
    data_bytes: int
    state_bytes: int
    wide: bool
    int4: int = 0


def emit(snap: Snapshot, fb_len: int, kinds: list[str], header: str) -> Prepared:
    """The prepared library's model source from a snapshot.

    :param snap: from :func:`run_dump`
    :param fb_len: model bytes
    :param kinds: the runtime's kernel kind names by value (``deploy.kernel_kinds``)
    :param header: comment text for the top of the file
    """
    lay = snap.layout
    record, rec_arena, rec_fb = relocations(snap.records[0], snap.records[1], snap, fb_len)
    arena, ar_arena, ar_fb = relocations(snap.arenas[0], snap.arenas[1], snap, fb_len)
    rec_fb_set, rec_arena_set = set(rec_fb), set(rec_arena)

    def u16(at: int) -> int:
        return struct.unpack_from("<H", record, at)[0]

    n_t, n_ops = u16(lay["num_tensors"]), u16(lay["num_ops"])
    io = {struct.unpack_from("<h", record, lay["inputs"] + 2 * i)[0] for i in range(u16(lay["num_inputs"]))}
    io |= {struct.unpack_from("<h", record, lay["outputs"] + 2 * i)[0] for i in range(u16(lay["num_outputs"]))}
    kind_of = {name: i for i, name in enumerate(kinds)}
    # The int8 and int4 FC kernels read the bias folded into the op's scratch at init (ep_fc.c, ep_fc_mixed.c).
    fc_kinds = {kind_of[k] for k in ("fc_i8", "fc_i4") if k in kind_of}
    bias_only: set[int] = set()  # int32 biases of int8/int4 FCs: folded into the op's scratch at init
    weights_only: set[int] = set()  # FC weights: the FC and the fused steps read their data pointer only
    other_readers: set[int] = set()
    for i in range(n_ops):
        op = lay["ops"] + i * lay["op"]
        kind, n_in = record[op + lay["o_kind"]], record[op + lay["o_n_in"]]
        for k in range(n_in):
            t = struct.unpack_from("<h", record, op + lay["o_in"] + 2 * k)[0]
            if t >= 0:
                (bias_only if kind in fc_kinds and k == 2 else weights_only if kind in fc_kinds and k == 1
                 else other_readers).add(t)
    bias_only -= other_readers
    weights_only -= other_readers | io

    constants: dict[int, int] = {}  # model offset -> bytes of every constant tensor, before any record is cleared
    for i in range(n_t):
        t = lay["tensors"] + i * lay["tensor"]
        if (t + lay["t_data"]) in rec_fb_set:
            off = _u32(record, t + lay["t_data"])
            constants[off] = max(constants.get(off, 0), _u32(record, t + lay["t_bytes"]))
    spans: dict[int, int] = {}  # the constants kept: model offset -> bytes
    for i in range(n_ops):  # an op's scratch may be a constant of the model used as it is (a bias with no zp to fold)
        at = lay["ops"] + i * lay["op"] + lay["o_scratch"]
        if at in rec_fb_set:
            off = _u32(record, at)
            owner = [(o, n) for o, n in constants.items() if o <= off < o + n]
            if not owner:
                raise PrepareError(f"op {i}'s scratch points into the model at {off}, outside every constant tensor")
            spans[owner[0][0]] = max(spans.get(owner[0][0], 0), owner[0][1])

    tables = bytearray()  # the activation tables as steps (ep_prepared.h); their bytes leave the arena image
    ntables = 0
    table_kinds = {kind_of[k] for k in ("logistic_i8", "tanh_i8") if k in kind_of}
    moving = set(ar_arena) | set(ar_fb)
    for i in range(n_ops):
        op = lay["ops"] + i * lay["op"]
        at = op + lay["o_scratch"]
        if record[op + lay["o_kind"]] not in table_kinds or at not in rec_arena_set:
            continue
        off = _u32(record, at)
        if _u32(record, op + lay["o_scratch_bytes"]) != 256 or moving & set(range(off - 3, off + 256)):
            continue
        packed = _steps(bytes(arena[off:off + 256]))
        if packed is not None:
            tables += off.to_bytes(4 if max(len(record), len(arena)) > 0xFFFF else 2, "little") + packed
            arena[off:off + 256] = bytes(256)
            ntables += 1

    packed4 = _int4_filters(record, arena, lay, {kind_of[k] for k in ("conv_i8", "dwconv_i8") if k in kind_of},
                            rec_arena_set, moving)

    def clear(at: int, n: int) -> None:
        record[at:at + n] = bytes(n)
        for s in (rec_fb_set, rec_arena_set):
            s.difference_update(range(at, at + n))

    def keep_only(at: int, size: int, keep: set[int]) -> None:
        for k in range(size):
            if k not in keep:
                clear(at + k, 1)

    clear(lay["fb"], 4)  # the flatbuffer: read at init only
    clear(lay["fb_len"], 4)
    fused_keep = {name: {lay["o_fused"], *_field(lay, "o_scratch", 4), *more} for name, more in (
        ("fc_i8", _field(lay, "o_in", 2, 1)), ("logistic_i8", ()), ("tanh_i8", ()))}
    for i in range(n_ops):
        op = lay["ops"] + i * lay["op"]
        clear(op + lay["o_fn"], 4)  # this build's kernel addresses: set at bind
        if record[op + lay["o_fused"]]:
            # A part of a fused step never runs on its own. The fused GRU/LSTM steps (ep_gru.c) read of their parts
            # only the FCs' weights (in[1]) and scratch (folded bias, per-channel constants) and the activations'
            # scratch (tables); their own constants are in their record. Everything else was an input to init.
            name = kinds[record[op + lay["o_kind"]]] if record[op + lay["o_kind"]] < len(kinds) else ""
            keep_only(op, lay["op"], fused_keep.get(name, {lay["o_fused"]}))
    for i in range(n_t):
        t = lay["tensors"] + i * lay["tensor"]
        data = t + lay["t_data"]
        materialised = data in rec_arena_set or data in rec_fb_set
        if i in bias_only or (not materialised and i not in io):
            clear(t, lay["tensor"])  # folded into its op's scratch, or never materialised (inside a fused step)
            continue
        if data in rec_fb_set:
            off = _u32(record, data)
            spans[off] = max(spans.get(off, 0), constants[off])
        if i in weights_only:
            keep_only(t, lay["tensor"], set(_field(lay, "t_data", 4)))
            continue
        clear(t + lay["t_chan"], 4)  # per-channel scales: init computes the multipliers from them
        clear(t + lay["t_first"], 4)  # planner lifetimes
    # The constants still pointed at, as one array, 16-byte aligned as in the model.
    blob = bytearray()
    moved: list[tuple[int, int, int]] = []  # (model offset, length, data offset)
    for off in sorted(spans):
        blob += bytes(-len(blob) % 16)
        moved.append((off, spans[off], len(blob)))
        blob += snap.model[off:off + spans[off]]
    int4_table = [len(packed4)]
    for off, n, nibbles in packed4:  # after the constants: only bind reads them
        int4_table += [off, n, len(blob)]
        blob += nibbles

    def remap(v: int) -> int:
        for off, n, to in moved:
            if off <= v <= off + n:
                return to + v - off
        raise PrepareError(f"a pointer into the model at offset {v} is not within a tensor the library keeps")

    for at in sorted(rec_fb_set):
        struct.pack_into("<I", record, at, remap(_u32(record, at)))
    for at in ar_fb:
        struct.pack_into("<I", arena, at, remap(_u32(arena, at)))
    wide = max(len(record), len(arena)) > 0xFFFF
    off_t = "uint32_t" if wide else "uint16_t"
    images = []
    lines = [header, '#include "runtime/ep_prepared.h"', ""]
    state = 0
    for name, image, to_arena, to_data in (("record", record, sorted(rec_arena_set), sorted(rec_fb_set)),
                                           ("arena", arena, ar_arena, ar_fb)):
        runs = _runs(image)
        payload = b"".join(bytes(image[s:s + n]) for s, n in runs)
        skips = _skips(runs)
        packed_tables = bytes(tables) if name == "arena" else b""
        # What the linker keeps: each array (one element when empty) and the 36-byte ep_prep_image_t.
        state += (max(len(payload), 1) + max(2 * len(skips), 1) + (4 if wide else 2) * (max(len(to_arena), 1) +
                  max(len(to_data), 1)) + max(len(packed_tables), 1) + 36)
        p = f"edgeprune_model_{name}"  # every array of the model is named edgeprune_model_*: its flash is counted
        lines += [f"static const uint8_t {p}_bytes[] = {{", _c_bytes(payload or b"\0"), "};",
                  f"static const uint8_t {p}_skip[] = {{" + (", ".join(f"{g}, {n}" for g, n in skips) or "0") + "};"]
        for what, offs in (("to_arena", to_arena), ("to_data", to_data)):
            lines.append(f"static const {off_t} {p}_{what}[] = {{" + (", ".join(map(str, offs)) or "0") + "};")
        lines.append(f"static const uint8_t {p}_tables[] = {{" + _c_bytes(packed_tables or b"\0") + "};")
        lines += [f"const ep_prep_image_t {p} = {{{p}_bytes, {p}_skip, {p}_to_arena, {p}_to_data, {p}_tables, "
                  f"{len(image)}u, {len(skips)}u, {len(to_arena)}u, {len(to_data)}u, "
                  f"{ntables if name == 'arena' else 0}u}};", ""]
        images.append(name)
    lines += ["/* The constants the kernels read at invoke (weights), 16-byte aligned. */",
              "const uint8_t edgeprune_model_data[] __attribute__((aligned(16))) = {", _c_bytes(bytes(blob) or b"\0"),
              "};", ""]
    if packed4:
        lines += ["/* int4 convolution filters packed in edgeprune_model_data, unpacked into the arena by bind: "
                  "{count, then arena offset, elements, data offset each}. */",
                  "const uint32_t edgeprune_model_int4[] = {" + ", ".join(f"{v}u" for v in int4_table) + "};", ""]
        state += 4 * len(int4_table)
    return Prepared("\n".join(lines), len(arena), max(len(blob), 1), state, wide, len(packed4))


def _int4_filters(record: bytearray, arena: bytearray, lay: dict[str, int], conv_kinds: set[int],
                  rec_arena: set[int], moving: set[int]) -> list[tuple[int, int, bytes]]:
    """The int4 filters init unpacked into the arena (ep_conv_mixed.c), packed again and cleared from ``arena``.

    A convolution's filter is a constant; one whose data pointer is into the arena was unpacked there at init. Its
    int8 bytes are -8..7, so two a byte (TFLM's nibble order, ep_int4_unpack) hold them exactly: the library then
    ships half of them, and bind writes them back where the snapshot had them. Returns (arena offset, elements,
    packed bytes) per filter.

    :param record: the model record (pointers as offsets)
    :param arena: the arena image (pointers as offsets); the filters' bytes are zeroed in it
    :param lay: the snapshot's struct layout
    :param conv_kinds: the kernel kinds of CONV_2D and DEPTHWISE_CONV_2D
    :param rec_arena: offsets of the record's arena pointers
    :param moving: offsets of the arena image's pointers (a filter overlapping one is left as it is)
    """
    out: list[tuple[int, int, bytes]] = []
    seen: set[int] = set()
    for i in range(struct.unpack_from("<H", record, lay["num_ops"])[0]):
        op = lay["ops"] + i * lay["op"]
        if record[op + lay["o_kind"]] not in conv_kinds or record[op + lay["o_n_in"]] < 2:
            continue
        t = lay["tensors"] + struct.unpack_from("<h", record, op + lay["o_in"] + 2)[0] * lay["tensor"]
        if t + lay["t_data"] not in rec_arena or not record[t + lay["t_const"]]:
            continue
        off, n = _u32(record, t + lay["t_data"]), _u32(record, t + lay["t_bytes"])
        values = [b - 256 if b > 127 else b for b in arena[off:off + n]]
        if (off in seen or not values or len(values) != n or min(values) < -8 or max(values) > 7
                or any(off - 3 <= at < off + n for at in moving)):
            continue
        seen.add(off)
        packed = bytearray((n + 1) // 2)
        for k, v in enumerate(values):
            packed[k >> 1] |= (v & 15) << (4 * (k & 1))
        out.append((off, n, bytes(packed)))
        arena[off:off + n] = bytes(n)
    return out


def _c_bytes(data: bytes) -> str:
    return ",\n".join("  " + ", ".join(f"0x{b:02x}" for b in data[i:i + 16]) for i in range(0, len(data), 16))


def prepare(lib_src: Path, core: str, arena: int, model: bytes, kinds: list[str], header: str) -> Prepared:
    """Snapshot the runtime's init of ``model`` on ``core`` and emit the prepared library's model source.

    :param lib_src: the (parser) library's ``src`` folder, written for this model
    :param core: the library's core
    :param arena: the planner's arena bytes (the snapshot runs get more, to be sure init fits)
    :param model: the model bytes in ``lib_src/edgeprune_model_data.c``
    :param kinds: the runtime's kernel kind names by value
    :param header: comment text for the top of the generated file
    """
    return emit(run_dump(lib_src, core, arena + 4096, model), len(model), kinds, header)
