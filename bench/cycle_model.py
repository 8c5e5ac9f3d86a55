"""A cycle estimate (label ``model``) from QEMU's executed-block trace and a per-instruction timing table.

QEMU counts instructions, not cycles. This module prices the instructions the emulator executed with the cycle
counts the Cortex-M technical reference manuals state, so that a lead or lag against cycles published on silicon
can be given in cycles, clearly marked as a model (never mixed with ``qemu`` counts).

Input: the blocks QEMU executed (guest pc and instruction count of each, in execution order, from
``-d in_asm,exec,nochain``; see :mod:`edgeprune.bench.qemu_profile`) and the firmware ELF, disassembled with
``arm-none-eabi-objdump`` (the authority on what each address holds). Whether a block's final branch was taken
is read off the next block's pc.

Timing tables (zero-wait-state cycles):

* **Cortex-M4** (TRM r0p1, DDI 0439, table 3-1 and section 3.3.2 "Load/store timings"): data processing,
  MUL/MLA/MLS, the long multiplies (SMULL/UMULL/SMLAL/UMLAL) and every DSP multiply (SMLAD, SMLABB, SMMULR...)
  1 cycle; SDIV/UDIV 2-12 (modelled 12, the upper end); single loads (LDR/LDRB/LDRH/LDRSB/LDRSH) 2; a single
  load or store right after a single load whose destination does not form its address 1 cycle less
  ("pipelined"); STR with an immediate offset 1 (its data phase overlaps the next instruction), with a
  register offset 2; LDRD/STRD 3 (1 + N, never pipelined); LDM/STM/PUSH/POP 1 + N (+ P with the PC);
  a load or store whose address register the previous data-processing instruction wrote 1 more (no
  forwarding path to the address generator); taken branches (B, BL, BX, BLX, CBZ/CBNZ) 1 + P, not taken 1;
  TBB/TBH 2 + P; IT 1 (the manual allows it to fold into a preceding 16-bit instruction: not modelled, so
  1 is an upper value); VFP: VLDR/VSTR 2, VLDM/VSTM/VPUSH/VPOP 1 + N, VDIV/VSQRT 14, VMLA/VMLS/VNMLA 3,
  other VFP data processing 1.
* **Cortex-M3** (TRM r2p1, DDI 0337, table 3.1): as the M4 except MLA/MLS 2, SMULL/UMULL 3-5 (modelled 5),
  SMLAL/UMLAL 4-7 (modelled 7); no DSP or FPU instructions.
* **P**, the pipeline refill, is 1-3 in both manuals "depending on the alignment and width of the target
  instruction, and whether the processor manages to speculate the address early": modelled as 2.

Memory (stated, not measured): data (weights, activations) at zero wait states, as the QEMU firmware holds the
model in SRAM; a deploy build with the weights in flash would add data wait states this model does not see
(QEMU's block trace has no data addresses). Instruction fetch from flash at ``flash_ws`` wait states behind an
instruction cache (STM32L4+ ART: 32 lines of 32 bytes, 1 KB; modelled fully associative, LRU): a block whose lines
miss stalls for ``line_bytes / 8 * (flash_ws + 1)`` cycles per missed line (its four 64-bit flash reads) less the
block's own execution cycles (the prefetcher reads on while the block executes). A loop larger than the cache
misses on every pass under LRU.
Defaults: the MLPerf Tiny reference board NUCLEO-L4R5ZI at 120 MHz, 5 wait states (RM0432, range 1 boost).

The Cortex-M7 (dual issue) and M33 (pairs some 16-bit instructions) have no per-instruction table in their
manuals; they are not modelled.
"""

from __future__ import annotations

import collections
import logging
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

REFILL = 2  # P: 1-3 per the M3/M4 TRMs
REGS = {"sl": "r10", "fp": "r11", "ip": "r12", "sb": "r9"}
_LINE = re.compile(r"^\s*([0-9a-f]+):\s+((?:[0-9a-f]{4}\s?){1,2})\s+(\S+)\s*([^;<]*)")
_REG = re.compile(r"\b(r1[0-5]|r[0-9]|sl|fp|ip|sb|sp|lr|pc)\b")
CORES = ("m3", "m4")


class CycleModelError(ValueError):
    """The model cannot price this input (unknown core, no disassembler, pc outside the ELF's code)."""


@dataclass(frozen=True)
class Insn:
    """One disassembled instruction.

    :param addr: address
    :param size: bytes (2 or 4)
    :param mnem: mnemonic, lower case, without ``.w``/``.n`` and type suffixes
    :param ops: operand text as objdump prints it
    """

    addr: int
    size: int
    mnem: str
    ops: str


_C = "(?:eq|ne|cs|hs|cc|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le|al)?"
_CLASSES = [  # (timing class, mnemonic pattern with an optional condition suffix); first match wins
    ("it", re.compile(r"it[te]{0,3}$")),
    ("branch", re.compile(rf"(?:b|bl|bx|blx){_C}$|cbn?z$")),
    ("tb", re.compile(rf"tb[bh]{_C}$")),
    ("ldrd", re.compile(rf"ldrd{_C}$")),
    ("strd", re.compile(rf"strd{_C}$")),
    ("multi", re.compile(r"(?:ldm|stm|push|pop)")),
    ("load", re.compile(r"ldr")),
    ("store", re.compile(r"str")),
    ("div", re.compile(rf"[su]div{_C}$")),
    ("vmem", re.compile(r"vldr|vstr|vldm|vstm|vpush|vpop")),
    ("vdiv", re.compile(r"vdiv|vsqrt")),
    ("vmla", re.compile(r"vn?ml[as]")),
    ("mla", re.compile(rf"ml[as]{_C}$")),
    ("longmul", re.compile(rf"[su]mulls?{_C}$")),
    ("longmac", re.compile(rf"[su]mlals?{_C}$")),
]
_FLAGS_ONLY = re.compile(rf"(?:cmp|cmn|tst|teq|nop|dmb|dsb|isb|wfi|wfe|sev|bkpt|svc|cpsid|cpsie|msr){_C}$")


def _regs(text: str) -> set[str]:
    return {REGS.get(r, r) for r in _REG.findall(text)}


def _dest(insn: Insn, kind: str) -> set[str]:
    """Registers an instruction writes (those a following address may depend on)."""
    if kind in ("store", "strd", "branch", "it", "multi", "vmem", "tb") or _FLAGS_ONLY.match(insn.mnem):
        return set()
    head = insn.ops.split("[")[0].split(",")
    n = 2 if kind in ("ldrd", "longmul", "longmac") else 1
    return _regs(",".join(head[:n]))


def classify(insn: Insn) -> str:
    """The timing class of an instruction: it, branch, tb, ldrd, strd, multi, load, store, div, vmem, vdiv,
    vmla, mla, longmul, longmac, else alu."""
    for name, pat in _CLASSES:
        if pat.match(insn.mnem):
            return name
    return "alu"


def _list_len(ops: str) -> int:
    """Registers in a ``{...}`` list (ranges counted)."""
    inside = ops[ops.find("{") + 1:ops.find("}")] if "{" in ops else ""
    n = 0
    for part in filter(None, (p.strip() for p in inside.split(","))):
        if "-" in part:
            a, b = (re.sub(r"\D", "", x) for x in part.split("-"))
            n += int(b) - int(a) + 1 if a and b else 1
        else:
            n += 1
    return max(n, 1)


@dataclass(frozen=True)
class Timing:
    """Cycles per timing class on one core, zero wait states (see the module docstring for the sources).

    :param core: ``m3`` or ``m4``
    :param fixed: cycles of the classes whose cost does not depend on neighbours or branch outcome
    :param refill: P, cycles of a pipeline refill after a taken branch
    """

    core: str
    fixed: dict[str, int]
    refill: int = REFILL


def timing(core: str) -> Timing:
    """The timing table of ``core`` (``m3``, ``m4``)."""
    base = {"alu": 1, "it": 1, "mla": 1, "longmul": 1, "longmac": 1, "div": 12, "load": 2, "ldrd": 3, "strd": 3,
            "vmem": 2, "vdiv": 14, "vmla": 3}
    if core == "m4":
        return Timing(core, base)
    if core == "m3":
        return Timing(core, {**base, "mla": 2, "longmul": 5, "longmac": 7})
    raise CycleModelError(f"no cycle table for core {core!r}: modelled cores are {', '.join(CORES)} "
                          "(the M7 and M33 manuals publish no per-instruction table)")


def insn_cycles(insn: Insn, prev: Insn | None, t: Timing, taken: bool = False) -> int:
    """Cycles of ``insn`` after ``prev`` (None at a block start, i.e. after a refill), zero wait states.

    :param insn: the instruction
    :param prev: the instruction executed just before it in the same block, or None
    :param t: the core's timing table
    :param taken: whether a branch (or a load/pop of the PC) transferred control
    """
    kind = classify(insn)
    pk = classify(prev) if prev is not None else None
    addr = _regs(insn.ops[insn.ops.find("["):]) if "[" in insn.ops else set()
    if kind == "branch":
        return 1 + t.refill if taken else 1
    if kind == "tb":
        return 2 + t.refill
    if kind == "multi":
        n = _list_len(insn.ops)
        return 1 + n + (t.refill if "pc" in _regs(insn.ops) and insn.mnem.startswith(("pop", "ldm")) else 0)
    if insn.mnem.startswith(("vldm", "vstm", "vpush", "vpop")):
        return 1 + _list_len(insn.ops)
    if kind in ("load", "store"):
        if kind == "store":
            reg_offset = re.search(r"\[[^\]]*,\s*(r\d+|ip|lr|sl|fp)", insn.ops) is not None
            c = 2 if reg_offset else 1
        else:
            c = t.fixed["load"]
        if prev is not None and pk == "load" and not (_dest(prev, pk) & addr):
            c = max(1, c - 1)  # pipelined behind the previous load
        elif prev is not None and pk == "alu" and _dest(prev, pk) & addr:
            c += 1  # address from the previous data-processing result: no forwarding path
        if kind == "load" and "pc" in _regs(insn.ops.split(",")[0]) and taken:
            c += t.refill
        return c
    c = t.fixed.get(kind, 1)
    if kind in ("ldrd", "strd", "vmem") and prev is not None and pk == "alu" and _dest(prev, pk) & addr:
        c += 1
    if kind == "alu" and "pc" in _regs(insn.ops.split(",")[0]) and taken:
        c += t.refill  # MOV/ADD to the PC
    return c


def disassemble(elf: Path, objdump: str | None = None, timeout_s: float = 120.0) -> dict[int, Insn]:
    """Every instruction of the ELF's code sections by address (``arm-none-eabi-objdump -d``).

    :param elf: the firmware image
    :param objdump: the disassembler (default: ``arm-none-eabi-objdump`` from PATH)
    :param timeout_s: limit for the disassembler run
    """
    tool = objdump or shutil.which("arm-none-eabi-objdump")
    if tool is None:
        raise CycleModelError("arm-none-eabi-objdump not found on PATH (apt: binutils-arm-none-eabi)")
    try:
        text = subprocess.run([tool, "-d", str(elf)], capture_output=True, text=True, timeout=timeout_s,
                              check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise CycleModelError(f"objdump failed on {elf}: {exc}") from exc
    out: dict[int, Insn] = {}
    for line in text.splitlines():
        m = _LINE.match(line)
        if m is None or m.group(3).startswith("."):
            continue
        size = len(m.group(2).replace(" ", "")) // 2
        mnem = m.group(3).lower().split(".")[0]
        out[int(m.group(1), 16)] = Insn(int(m.group(1), 16), size, mnem, m.group(4).strip().lower())
    if not out:
        raise CycleModelError(f"no instructions disassembled from {elf}")
    return out


@dataclass
class Estimate:
    """Cycles of a traced run, ``model`` (never a measurement).

    :param core: the timing table used
    :param clock_mhz: the stated clock (for ms)
    :param flash_ws: instruction-fetch wait states at that clock
    :param instructions: instructions priced
    :param cycles: zero-wait-state cycles
    :param fetch_stall: cycles added by instruction-cache misses (flash wait states)
    :param unknown: instructions executed at addresses the ELF does not hold (priced 1 cycle each)
    :param by_class: cycles per timing class (including branch refills), zero wait states
    """

    core: str
    clock_mhz: float
    flash_ws: int
    instructions: int = 0
    cycles: int = 0
    fetch_stall: int = 0
    unknown: int = 0
    by_class: collections.Counter[str] = field(default_factory=collections.Counter)

    source = "model"

    @property
    def total(self) -> int:
        """Cycles including the instruction-fetch wait states."""
        return self.cycles + self.fetch_stall

    @property
    def cpi(self) -> float:
        return self.total / self.instructions if self.instructions else 0.0

    @property
    def ms(self) -> float:
        return self.total / (self.clock_mhz * 1e3)


class CycleModel:
    """Prices executed blocks one at a time (``feed``), in execution order.

    :param insns: the ELF's instructions (:func:`disassemble`)
    :param core: ``m4`` or ``m3``
    :param clock_mhz: stated clock
    :param flash_ws: flash wait states at that clock (0: code in zero-wait memory)
    :param cache_lines: instruction-cache lines (0: no cache, every line fetch misses)
    :param line_bytes: bytes per cache line
    """

    def __init__(self, insns: dict[int, Insn], core: str = "m4", clock_mhz: float = 120.0, flash_ws: int = 5,
                 cache_lines: int = 32, line_bytes: int = 32):
        self.insns = insns
        self.t = timing(core)
        self.line_bytes = line_bytes
        self.cache_lines = cache_lines
        self.miss_cost = line_bytes // 8 * (flash_ws + 1) if flash_ws > 0 else 0
        self._cache: collections.OrderedDict[int, None] = collections.OrderedDict()
        self._blocks: dict[tuple[int, int], tuple[list[Insn], int]] = {}
        self._priced: dict[tuple[int, int, bool], tuple[int, dict[str, int]]] = {}
        self.est = Estimate(core, clock_mhz, flash_ws)

    def _block(self, pc: int, n: int) -> tuple[list[Insn], int]:
        key = (pc, n)
        hit = self._blocks.get(key)
        if hit is None:
            seq, a = [], pc
            for _ in range(n):
                i = self.insns.get(a)
                if i is None:
                    break
                seq.append(i)
                a += i.size
            hit = self._blocks[key] = (seq, a)
        return hit

    def end(self, pc: int, n: int) -> int:
        """The fall-through address after block (pc, n)."""
        return self._block(pc, n)[1]

    def _price(self, pc: int, n: int, taken: bool) -> tuple[int, dict[str, int]]:
        key = (pc, n, taken)
        hit = self._priced.get(key)
        if hit is None:
            seq, _ = self._block(pc, n)
            total, prev = 0, None
            parts: collections.Counter[str] = collections.Counter()
            for k, i in enumerate(seq):
                c = insn_cycles(i, prev, self.t, taken and k == len(seq) - 1)
                total += c
                parts[classify(i)] += c
                prev = i
            hit = self._priced[key] = (total, dict(parts))
        return hit

    def feed(self, pc: int, n: int, next_pc: int | None, weight: int = 1) -> int:
        """Price one execution of the block at ``pc`` holding ``n`` instructions; ``next_pc`` is where control
        went next (None: unknown, treated as not taken). Returns its cycles, fetch stalls included.

        :param pc: block start
        :param n: instructions QEMU executed in it
        :param next_pc: the next block's pc
        :param weight: executions to add (1 for a trace)
        """
        seq, end = self._block(pc, n)
        taken = next_pc is not None and next_pc != end
        cyc, parts = self._price(pc, n, taken)
        self.est.instructions += n * weight
        self.est.unknown += (n - len(seq)) * weight
        cyc += (n - len(seq))
        self.est.cycles += cyc * weight
        for k, v in parts.items():
            self.est.by_class[k] += v * weight
        stall = 0
        if self.miss_cost and seq:
            for line in range(pc // self.line_bytes, (end - 1) // self.line_bytes + 1):
                if line in self._cache:
                    self._cache.move_to_end(line)
                    continue
                stall += self.miss_cost
                self._cache[line] = None
                if len(self._cache) > self.cache_lines:
                    self._cache.popitem(last=False)
            stall = max(0, stall - cyc)  # the prefetcher reads on while the block executes
        self.est.fetch_stall += stall * weight
        return cyc + stall


def sequence_cycles(asm_insns: list[Insn], core: str = "m4", taken_last: bool = False) -> int:
    """Zero-wait cycles of a straight-line instruction sequence run once from a block start (for checks
    against the manuals' worked examples).

    :param asm_insns: the instructions in order
    :param core: timing table
    :param taken_last: whether the final instruction is a taken branch
    """
    t, prev, total = timing(core), None, 0
    for k, i in enumerate(asm_insns):
        total += insn_cycles(i, prev, t, taken_last and k == len(asm_insns) - 1)
        prev = i
    return total
