"""PlatformIO platform class for qemu-cortexm; PlatformIO derives the class name from the platform name."""

from platformio.public import PlatformBase


class QemucortexmPlatform(PlatformBase):
    """No packages to install: the toolchain (arm-none-eabi-gcc) and qemu-system-arm come from PATH."""
