"""Predictive-maintenance sensor data for the demo: deterministic from a seed, with a failure label and noise.

One row is one machine at one reading: ``machine_type`` (``press``, ``pump``, ``lathe``), ``temperature`` (°C),
``vibration`` (mm/s RMS), ``pressure`` (bar), ``rpm`` and ``hours_since_service``; ``failure`` (0/1) says whether
it failed within the next day. Sensors drop out now and then (about 2% missing values per sensor), readings carry
measurement noise, and a few labels are wrong (2% flipped), as in a plant's historian.

``drift=True`` is the same plant a season later: the sensors moved (hotter, rougher, lower pressure, slower, longer
between services) **and the failure pattern changed** (a new wear mode: low pressure at low speed and long service
intervals fail, vibration matters less, pumps became the weak type). A model trained on the first kind of data is
measurably worse on the second; one retrained on the second beats it there (the gate measures it with a paired
bootstrap on the private holdout).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FEATURES", "LABEL", "MACHINE_TYPES", "NUMERIC", "failure_probability", "readings", "sensor_table"]

LABEL = "failure"
MACHINE_TYPES = ("press", "pump", "lathe")
NUMERIC = ("temperature", "vibration", "pressure", "rpm", "hours_since_service")
FEATURES = ("machine_type", *NUMERIC)
_MISSING = {"temperature": 0.02, "vibration": 0.02, "pressure": 0.015, "rpm": 0.01}  # sensor dropouts
_FLIPPED = 0.02  # share of wrong labels
_SLOW = {"press": 1300.0, "pump": 2600.0, "lathe": 820.0}  # rpm below which a machine runs slow (drifted wear mode)


def readings(rows: int, *, seed: int = 0, drift: bool = False) -> pd.DataFrame:
    """``rows`` sensor readings (the features, no label, no missing values): the same seed gives the same rows."""
    import pandas as pd

    rng = np.random.default_rng([seed, int(drift)])
    kind = rng.choice(len(MACHINE_TYPES), size=rows, p=[0.45, 0.35, 0.2])
    base_rpm = np.array([1450.0, 2900.0, 900.0])[kind]
    base_temp = np.array([68.0, 62.0, 74.0])[kind]
    hours = rng.gamma(2.0, 260.0, rows)
    temperature = base_temp + 0.004 * hours + rng.normal(0, 5.0, rows)
    vibration = rng.lognormal(np.log(2.2), 0.35, rows) + 0.0008 * hours
    pressure = rng.normal(6.2, 0.6, rows)
    rpm = base_rpm * rng.normal(1.0, 0.06, rows)
    if drift:  # a season later: hotter, rougher, lower pressure, slower, services postponed
        temperature += 6.0
        vibration *= 1.35
        pressure -= 0.9
        rpm *= 0.88
        hours *= 1.5
    return pd.DataFrame({
        "machine_type": np.array(MACHINE_TYPES, dtype=object)[kind],
        "temperature": temperature.round(2), "vibration": vibration.round(3), "pressure": pressure.round(3),
        "rpm": rpm.round(0), "hours_since_service": hours.round(1),
    })  # fmt: skip


def failure_probability(frame: pd.DataFrame, *, drift: bool = False) -> np.ndarray:
    """The true chance of failure of each reading (what the label is drawn from)."""
    kind = frame["machine_type"].to_numpy()
    temp, vib = frame["temperature"].to_numpy(float), frame["vibration"].to_numpy(float)
    pressure, rpm = frame["pressure"].to_numpy(float), frame["rpm"].to_numpy(float)
    hours = frame["hours_since_service"].to_numpy(float)
    if not drift:  # overheating and vibration wear machines out; presses suffer most
        logit = -3.4 + 0.11 * (temp - 70) + 1.1 * (vib - 2.6) + 0.0012 * (hours - 500) + 0.6 * (kind == "press")
    else:  # a new wear mode: low pressure at low speed after long service intervals; pumps are the weak type
        low_speed = rpm < frame["machine_type"].map(_SLOW).to_numpy(float)
        logit = (-2.6 - 1.6 * (pressure - 5.3) + 1.4 * low_speed + 0.0018 * (hours - 800)
                 + 0.2 * (vib - 3.5) + 1.1 * (kind == "pump") - 0.9 * (kind == "press"))  # fmt: skip
    return np.asarray(1.0 / (1.0 + np.exp(-logit)))


def sensor_table(rows: int, *, seed: int = 0, drift: bool = False) -> pd.DataFrame:
    """Readings with the ``failure`` label (drawn from :func:`failure_probability`, 2% flipped) and sensor
    dropouts (missing values, drawn after the label: the label depends on the true readings)."""
    frame = readings(rows, seed=seed, drift=drift)
    rng = np.random.default_rng([seed, int(drift), 1])
    label = rng.random(rows) < failure_probability(frame, drift=drift)
    label ^= rng.random(rows) < _FLIPPED
    for column, share in _MISSING.items():
        frame.loc[rng.random(rows) < share, column] = np.nan
    frame[LABEL] = label.astype(np.int64)
    return frame
