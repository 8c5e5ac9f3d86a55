"""On-board power from the device's POWER command (an INA219 or INA226 on the board's supply).

The firmware answers POWER with one sample: sensor kind, bus voltage (µV), current (µA) and power
(µW) as the INA computed it. ``Device.power()`` returns ``None`` when the board has no meter; that is
reported as an *absent* figure, never as zero.
"""

from __future__ import annotations

from typing import Any

from edgeprune.bench.figures import Figure
from edgeprune.bench.power import PowerMeterError

SENSORS = {1: "INA219", 2: "INA226"}


def _field(sample: Any, *names: str) -> float | None:
    for name in names:
        if hasattr(sample, name):
            return float(getattr(sample, name))
        if isinstance(sample, dict) and name in sample:
            return float(sample[name])
    return None


def power_figure(sample: Any) -> Figure:
    """The sample's power in mW (source ``board``); computed as V × I when the INA gave no power."""
    sensor = getattr(sample, "sensor", None)
    if isinstance(sample, dict):
        sensor = sample.get("sensor")
    name = SENSORS.get(sensor, str(sensor)) if isinstance(sensor, int) else str(sensor or "INA")
    power_uw = _field(sample, "power_uw")
    bus_uv = _field(sample, "bus_uv")
    current_ua = _field(sample, "current_ua")
    if power_uw is None or power_uw == 0:
        if bus_uv is None or current_ua is None:
            raise PowerMeterError(f"power sample from {name} has neither power nor bus voltage and current")
        power_uw = bus_uv * 1e-6 * current_ua
        how = "bus voltage x current"
    else:
        how = "INA power register"
    extra = {"sensor": name, "bus_uv": bus_uv, "current_ua": current_ua}
    return Figure(power_uw / 1000.0, "mW", "board", f"{name} on the board supply ({how}), one POWER sample",
                  extra=extra)
