# ruff: noqa: F821, UP031 -- SCons script: names are injected by SCons (Import), and it runs under PlatformIO's Python
"""SCons build script of the qemu-cortexm platform: bare-metal C with Debian's arm-none-eabi-gcc (PATH)."""

from os.path import join

from SCons.Script import AlwaysBuild, Builder, Default, DefaultEnvironment  # type: ignore[import-not-found]

env = DefaultEnvironment()
board = env.BoardConfig()

env.Replace(
    AR="arm-none-eabi-gcc-ar",
    AS="arm-none-eabi-as",
    CC="arm-none-eabi-gcc",
    CXX="arm-none-eabi-g++",
    GDB="arm-none-eabi-gdb",
    OBJCOPY="arm-none-eabi-objcopy",
    RANLIB="arm-none-eabi-gcc-ranlib",
    SIZETOOL="arm-none-eabi-size",
    ARFLAGS=["rc"],
    SIZEPROGREGEXP=r"^(?:\.isr_vector|\.text|\.rodata|\.data|\.ARM\.exidx|\.ARM\.extab)\s+(\d+).*",
    SIZEDATAREGEXP=r"^(?:\.data|\.bss|\.noinit)\s+(\d+).*",
    SIZECHECKCMD="$SIZETOOL -A -d $SOURCES",
    SIZEPRINTCMD="$SIZETOOL -B -d $SOURCES",
    PROGNAME="firmware",
    PROGSUFFIX=".elf",
)

cpu = ["-mcpu=%s" % board.get("build.cpu"), "-mthumb"]
fpu = board.get("build.fpu", "")
if board.get("build.float_abi", "soft") == "hard" and fpu:
    cpu += ["-mfloat-abi=hard", "-mfpu=%s" % fpu]
else:
    cpu += ["-mfloat-abi=soft"]

env.Append(
    ASFLAGS=cpu,
    CCFLAGS=cpu + ["-O2", "-g", "-Wall", "-Wextra", "-ffunction-sections", "-fdata-sections", "-fno-common"],
    CFLAGS=["-std=c99"],
    LINKFLAGS=cpu + [
        "-nostartfiles",
        "--specs=nano.specs",
        "-Wl,--gc-sections",
        "-Wl,-Map,%s" % join("$BUILD_DIR", "firmware.map"),
        "-L%s" % join(env.subst("$PROJECT_DIR"), "firmware", "port", "ld"),
    ],
    LIBS=["c", "m", "gcc", "nosys"],
)
env.Append(CPPDEFINES=[("F_CPU", board.get("build.f_cpu"))])
env.Append(BUILDERS=dict(
    ElfToBin=Builder(action=env.VerboseAction("$OBJCOPY -O binary $SOURCES $TARGET", "Building $TARGET"), suffix=".bin"),
))

if not board.get("build.ldscript", ""):
    raise SystemExit("qemu-cortexm: board %s has no build.ldscript" % env.subst("$BOARD"))
env.Replace(LDSCRIPT_PATH=board.get("build.ldscript"))

target_elf = env.BuildProgram()
target_bin = env.ElfToBin(join("$BUILD_DIR", "${PROGNAME}"), target_elf)
target_size = env.Alias("size", target_elf, env.VerboseAction("$SIZEPRINTCMD", "Calculating size $SOURCE"))
AlwaysBuild(target_size)
Default([target_bin, target_size])
