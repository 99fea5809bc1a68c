"""The plan of a grid and the devices it runs on.

``device_budget`` is what the run may use (``run.memory_gib``, or 80% of the device's
memory or of the available RAM), ``Plan`` how the grid runs (equal batches, every batch
reusing one compilation; ``hmmjax.sweep.memory`` measures and chooses it),
``choose_devices`` the local devices of ``run.devices``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import jax

from hmmjax.config.schema import ConfigError
from hmmjax.config.settings import Config

__all__ = ["device_budget", "Footprint", "Plan", "choose_devices"]


def device_budget(cfg: Config) -> int:
    """Bytes the sweep may use: ``run.memory_gib``, or 80% of what the device reports
    (accelerators: ``memory_stats()["bytes_limit"]``; CPU: MemAvailable)."""
    if cfg.run.memory_gib != "auto":
        return int(float(cfg.run.memory_gib) * 2**30)
    dev = jax.local_devices()[0]
    stats = dev.memory_stats() if dev.platform != "cpu" else None
    if stats and "bytes_limit" in stats:
        return int(0.8 * stats["bytes_limit"])
    return int(0.8 * _available_ram())


def _available_ram() -> int:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2


@dataclass(frozen=True)
class Footprint:
    """The measured bytes of a grid that do not depend on the batch size
    (``hmmjax.sweep.memory``)."""

    lanes: int  # the stacked lanes of every point
    setups: int  # what the builder holds besides the lanes (drawn set-ups), at its peak
    build_temp: int  # the builder's temporaries (XLA's, for the largest draw)
    points: int  # the points' own arrays before they are stacked (0: the set-ups' arrays)
    states: int  # the members' states of every point (what a checkpoint writes)

    def build_peak(self) -> int:
        """The builder's peak: set-ups, temporaries, the points and their stack."""
        return self.setups + self.build_temp + self.points + self.lanes


@dataclass(frozen=True)
class Plan:
    """How a grid of ``n_lanes`` lanes (``hmmjax.sweep.lanes``: its points grouped by data
    stream, the members of a stream in ``parts`` lanes; ``points`` of them, 0: not said)
    runs: batches of ``batch`` lanes (a multiple of the device count), sharded over
    ``devices`` devices; ``need_bytes``: the measured
    estimate of the peak (``hmmjax.sweep.memory``), ``budget_bytes`` what it must fit."""

    n_lanes: int
    batch: int
    devices: int
    need_bytes: int = 0
    budget_bytes: int = 0
    footprint: Footprint | None = None
    chunk_bytes: tuple[int, int] = (0, 0)  # (outputs, temporaries) per device
    points: int = 0
    parts: int = 1  # the member parts of each data stream (``lanes.split_members``)

    @property
    def n_batches(self) -> int:
        return -(-self.n_lanes // self.batch)

    def describe(self) -> str:
        gib = 2**30
        points = f"{self.points} grid points on " if self.points else ""
        streams = f"{self.n_lanes} data stream(s)"
        if self.parts > 1:  # each stream's members over several lanes
            streams = (f"{self.n_lanes // self.parts} data stream(s), its members in "
                       f"{self.parts} parts,")  # fmt: skip
        text = (
            f"{points}{streams} in {self.n_batches} batch(es) of {self.batch} lanes on "
            f"{self.devices} device(s)"
        )
        if self.budget_bytes:
            text += (
                f"; memory: {self.need_bytes / gib:.3g} GiB needed (measured), budget "
                f"{self.budget_bytes / gib:.3g} GiB"
            )
        return text


def choose_devices(cfg: Config, n_lanes: int | None = None) -> list[jax.Device]:
    """The local devices of ``run.devices`` ("all" or a number); "all" uses no more
    devices than there are lanes (``n_lanes``), as a device would otherwise run
    copies."""
    devices = jax.local_devices()
    want = cfg.run.devices
    if want == "all":
        return devices[: n_lanes or len(devices)]
    if want > len(devices):
        raise ConfigError(
            f"run.devices = {want}: only {len(devices)} local device(s) "
            f"({devices[0].platform}); use all or a number <= {len(devices)}"
        )
    return devices[:want]
