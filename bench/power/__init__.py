"""Energy and power meters, each tagged with its source.

* :mod:`.ina`   — samples from the device's own INA219/INA226 (POWER command), source ``board``;
* :mod:`.ppk2`  — a Nordic Power Profiler Kit II windowed by the firmware's GPIO toggle, source ``board``;
* :mod:`.host`  — CodeCarbon measuring the host running the same model, source ``host``.

The MCU energy model (source ``model``) lives in :mod:`edgeprune.bench.energy`.
"""


class PowerMeterError(RuntimeError):
    """A power meter could not be opened or returned unusable data."""
