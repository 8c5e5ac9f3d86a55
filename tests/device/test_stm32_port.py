"""firmware/port/stm32.c's CMSIS builds cannot be made here (the ststm32 platform needs the registry). What can be
checked: it compiles for each Nucleo target against a stub of the CMSIS names it uses (tests/device/stm32_stub: NOT
ST's headers), links with the board-independent firmware, and defines every function of ep_port.h plus the
interrupt handlers the CMSIS startup files name. The bare builds (L475, F411: the port's own stm32_regs.h) compile
here with -Werror too; test_stm32_twins.py runs them on QEMU."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from edgeprune.bench.paths import project_root

FW = project_root() / "firmware"
STUB = project_root() / "tests" / "device" / "stm32_stub"
TARGETS = {
    "EP_STM32L4R5": ("cortex-m4", "LPUART1_IRQHandler"),
    "EP_STM32G0B1": ("cortex-m0plus", "USART2_LPUART2_IRQHandler"),
    "EP_STM32H743": ("cortex-m7", "USART3_IRQHandler"),
    "EP_STM32L475": ("cortex-m4", "ep_port_irq"),
    "EP_STM32F411": ("cortex-m4", "ep_port_irq"),
}
BARE = {"EP_STM32L475", "EP_STM32F411"}


def port_api() -> set[str]:
    return set(re.findall(r"\b(ep_port_\w+)\(", (FW / "port" / "ep_port.h").read_text()))


@pytest.mark.qemu
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_stm32_port_compiles_and_implements_the_port_api(target, tmp_path):
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        pytest.fail("arm-none-eabi-gcc missing: apt-get install gcc-arm-none-eabi")
    cpu, uart_irq = TARGETS[target]
    objs = []
    sources = ["port/stm32.c", "src/main.c", "src/ep_link.c", "src/ep_frame.c", "src/ep_sha256.c"]
    if target in BARE:
        sources.append("port/startup_cortexm.c")  # the bare build's vector table (SysTick_Handler, IRQ routing)
    for src in sources:
        obj = tmp_path / (src.replace("/", "_") + ".o")
        cmd = [gcc, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-Wno-array-bounds", "-mthumb", f"-mcpu={cpu}",
               f"-D{target}", "-DEP_HAVE_RUNTIME=0", f"-I{STUB}", f"-I{FW / 'include'}", f"-I{FW / 'port'}",
               f"-I{FW / 'src'}", "-c", str(FW / src), "-o", str(obj)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr
        objs.append(obj)
    linked = tmp_path / "port.o"
    proc = subprocess.run(["arm-none-eabi-ld", "-r", "-o", str(linked), *map(str, objs)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    nm = subprocess.run(["arm-none-eabi-nm", str(linked)], capture_output=True, text=True, timeout=60, check=True)
    defined = {ln.split()[-1] for ln in nm.stdout.splitlines() if re.match(r"^[0-9a-f]+ [TDBR] ", ln)}
    undefined = {ln.split()[-1] for ln in nm.stdout.splitlines() if ln.strip().startswith("U ")}
    assert port_api() <= defined, sorted(port_api() - defined)
    assert {uart_irq, "SysTick_Handler", "main"} <= defined
    # Only what the CMSIS system file, libc and libgcc (__aeabi_* division helpers) provide may stay unresolved.
    # (and, in a bare build, the linker script's section symbols)
    rest = {u for u in undefined if not u.startswith(("__aeabi_", "_s", "_e"))}
    assert rest <= {"SystemCoreClock", "SystemCoreClockUpdate", "memcpy", "memset", "memcmp"}, rest
