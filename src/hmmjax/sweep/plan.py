"""The memory plan of a grid and the devices it runs on.

``estimate_bytes`` estimates what one point needs while it trains, ``device_budget`` what a
device offers (``run.memory_gib``, or 80% of the device's memory or of the available RAM),
``plan_batches`` splits the grid into equal batches that fit (every batch reuses one
compilation) or refuses it before any work; ``choose_devices`` picks the local devices of
``run.devices``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import jax

from hmmjax.config.schema import ConfigError
from hmmjax.config.settings import Config
from hmmjax.sweep.lanes import grid_sizes

__all__ = ["estimate_bytes", "device_budget", "Plan", "plan_batches", "choose_devices"]


def estimate_bytes(cfgs: list[Config], shared: bool | None = None) -> tuple[int, int]:
    """(bytes per point, fixed bytes): an estimate of what one grid point needs on the
    device while it trains, from the padded sizes (see the module docstring of
    benchmarks/sweep.py for the check against measured peaks).

    Per member: the student and its update (3 K N), one block of data (x, the normals and
    the fields: block B (2 N + Z + K + 2)), the test-set fields (T K, twice). Per point:
    the data model (F: D N) and the test set (T (N + Z + 1)), per member if not shared.
    Finite training sets add the set (P (N + 1)), per member a gathered epoch of inputs,
    the training-set fields and the optimiser state, and P fitted flags per record.
    Everything twice for XLA's temporaries.
    """
    c = cfgs[0]
    sz = grid_sizes(cfgs)
    item = 8 if c.run.precision == "float64" else 4
    E, T, B, blk = c.run.ensemble, c.run.test_size, c.sgd.batch, c.run.block
    member = 3 * sz.K * sz.N + blk * B * (2 * sz.N + sz.Z + sz.K + 2) + 2 * T * sz.K
    data = (sz.D or 0) * sz.N + sz.M * sz.Z + T * (sz.N + sz.Z + 1)
    history = E * c.run.chunk * (sz.K * (sz.K + sz.M + 1) + 2)
    if c.finite.P > 0:  # the training set, its fields and fitted flags; optax state
        P = c.finite.P
        data += P * (sz.N + 1) + T
        member += P * (sz.N + 2 * sz.K + 1) + 2 * sz.K * (sz.N + 1)
        history += E * c.run.chunk * P
    shared = c.data.shared if shared is None else shared
    point = E * member + (1 if shared else E) * data
    return 2 * item * (point + history), 64 * 2**20


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
class Plan:
    """How a grid of ``n_points`` runs: batches of ``batch`` points (a multiple of the
    device count), sharded over ``devices`` devices."""

    n_points: int
    batch: int
    devices: int
    per_point_bytes: int
    budget_bytes: int

    @property
    def n_batches(self) -> int:
        return -(-self.n_points // self.batch)

    def describe(self) -> str:
        gib = 2**30
        return (
            f"{self.n_points} grid points in {self.n_batches} batch(es) of {self.batch} on "
            f"{self.devices} device(s); estimated {self.per_point_bytes / gib:.3g} GiB per "
            f"point, budget {self.budget_bytes / gib:.3g} GiB per device"
        )


def plan_batches(
    cfgs: list[Config], n_devices: int, budget: int, *, shared: bool | None = None
) -> Plan:
    """Choose the batch size: all points if they fit in ``budget`` bytes per device,
    else the most that do (a multiple of the device count). Errors (before any
    compilation) if a single point per device does not fit."""
    per_point, fixed = estimate_bytes(cfgs, shared)
    P = len(cfgs)
    fit = (budget - fixed) // per_point
    if fit < 1:
        raise ConfigError(
            f"run.memory_gib: one grid point needs about {per_point / 2**30:.3g} GiB "
            f"(largest K, N, D of the grid, run.ensemble = {cfgs[0].run.ensemble}, "
            f"run.test_size = {cfgs[0].run.test_size}), more than the "
            f"{budget / 2**30:.3g} GiB available per device; reduce those or raise "
            "run.memory_gib"
        )
    per_device = min(fit, -(-P // n_devices))
    return Plan(P, per_device * n_devices, n_devices, per_point, budget)


def choose_devices(cfg: Config, n_points: int | None = None) -> list[jax.Device]:
    """The local devices of ``run.devices`` ("all" or a number); "all" uses no more
    devices than there are grid points (``n_points``), as a device would otherwise run
    copies."""
    devices = jax.local_devices()
    want = cfg.run.devices
    if want == "all":
        return devices[: n_points or len(devices)]
    if want > len(devices):
        raise ConfigError(
            f"run.devices = {want}: only {len(devices)} local device(s) "
            f"({devices[0].platform}); use all or a number <= {len(devices)}"
        )
    return devices[:want]
