"""edgeprune.bench: device transports, the QEMU launcher, flashing, measurement and energy."""
