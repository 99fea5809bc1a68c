"""The memory plan of a grid, measured before any work.

Nothing is drawn or trained to measure it: the lanes' shapes come from ``jax.eval_shape``
of their builder, and the bytes of the two compiled programs from XLA's own accounting
(``jit(f).lower(...).compile().memory_analysis()``: arguments, outputs, temporaries):

- the draw of a set-up (``hmmjax.sweep.setup.draw_function``: its output, what the
  set-ups cache holds, and its temporaries), and
- the engine's chunk at the planned batch (outputs and temporaries per device; its
  arguments are the lanes of the batch). JAX keeps the compiled chunk, so the run reuses
  it.

To each program's temporaries it adds what XLA's accounting leaves out on a CPU: the
matrix products that YNNPACK fusions compute and reduce in memory of their own
(``fused_product_bytes``).

The peak is the larger of two phases, plus a fixed allowance for the runtime and the
compiler (``RUNTIME_BYTES``):

    build:  set-ups + their draw's temporaries + the points (when padded or drawn per
            point) + their stacked lanes
    run:    lanes (+ the set-ups when the ODE follows) + the batch's copies (one taken
            from the lanes when batched, one placed on the devices when sharded) + the
            chunk's outputs and temporaries (every device) + the history and checkpoint
            on the host

times ``SAFETY``. On a CPU the devices share the RAM, so the sum is over devices; on an
accelerator the first device holds the lanes (they are built there) and its share.
``plan_grid`` keeps the whole grid in one batch if that fits the budget, else compiles the
chunk for fewer lanes (``hmmjax.sweep.lanes``: points sharing a data stream) per batch
until a batch fits; one lane per device that does not
fit is refused with the measured numbers, before any work.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from hmmjax.config.schema import FEATURE_MODELS, REAL_DATA, ConfigError, show
from hmmjax.config.settings import Config
from hmmjax.core.trees import tree_bytes
from hmmjax.data.features import AbstractFeatures
from hmmjax.data.real import shape
from hmmjax.sweep.engine import compiled_chunk, measure_lane, placements
from hmmjax.sweep.lanes import Lanes, lane_shape, setup_key
from hmmjax.sweep.plan import Footprint, Plan
from hmmjax.sweep.setup import draw_function, run_keys

__all__ = [
    "SAFETY",
    "RUNTIME_BYTES",
    "compiled_bytes",
    "fused_product_bytes",
    "setup_bytes",
    "measure_footprint",
    "record_bytes",
    "chunk_bytes",
    "plan_grid",
    "ode_sample_bytes",
    "check_ode_setups",
]

SAFETY = 1.25  # on top of the measured bytes: allocator slack, small host arrays

RUNTIME_BYTES = 256 * 2**20  # XLA's runtime and compiler working memory, and Python's


def compiled_bytes(fn: Callable, *args: Any, **static: Any) -> tuple[int, int]:
    """(outputs, temporaries) in bytes of ``fn`` (a jitted function) compiled for ``args``
    (arrays or ``ShapeDtypeStruct``s; ``static``: its static keyword arguments), per
    device, from XLA's memory analysis. The compilation is kept by JAX: calling ``fn`` on
    such arguments reuses it."""
    compiled = fn.lower(*args, **static).compile()
    stats = compiled.memory_analysis()
    if stats is None:  # a backend without the analysis: count the outputs only
        return tree_bytes(jax.eval_shape(partial(fn, **static), *args)), 0
    out = stats.output_size_in_bytes - stats.alias_size_in_bytes
    return int(out), int(stats.temp_size_in_bytes) + _library_bytes(compiled)


def _library_bytes(compiled: Any) -> int:
    """``fused_product_bytes`` of a program compiled for CPU devices (0 elsewhere, or
    when its HLO text cannot be had: ``as_text`` may give None)."""
    try:
        sharding = jax.tree.leaves(compiled.input_shardings)[0]
        if next(iter(sharding.device_set)).platform != "cpu":
            return 0
        hlo = compiled.as_text()
    except Exception:  # no shardings or no text: XLA's accounting alone
        return 0
    return fused_product_bytes(hlo) if isinstance(hlo, str) else 0


_INSTRUCTION = re.compile(r"^\s*(ROOT )?%[\w.\-]+ = (\w+)\[([\d,]*)\]\S* (\w[\w\-]*)\(")
_LIBRARY_FUSION = re.compile(r"kind=kCustom, calls=%([\w.\-]+).*\"kind\":\"__ynn_fusion\"")


def fused_product_bytes(hlo: str) -> int:
    """Bytes that XLA's memory analysis leaves out of a compiled CPU program (its HLO
    text, ``Compiled.as_text()``): the matrix products that XLA:CPU's YNNPACK fusions
    compute inside the fusion without returning them (a dot that is not the fusion's
    result: reduced or combined further). They are held in YNNPACK's own memory, not in
    XLA's buffers, and kept between calls. Measured (2026-12-04, the invariant stripe
    grid of benchmarks/memory.py, one device): the first call of its chunk peaked 0.31 GB
    above XLA's outputs and temporaries, with three such products of 0.13 GB each (0.40 GB
    counted); without the YNNPACK fusions (``--xla_cpu_experimental_ynn_fusion_type=``)
    it stayed within them. The sum over the program's fusions, an upper bound (YNNPACK may
    reuse memory between them); 0 without them."""
    bodies: dict[str, list[str]] = {}
    name, called = None, []
    for line in hlo.splitlines():
        if line.startswith("%") and line.rstrip().endswith("{"):
            name = line[1:].split(" ", 1)[0]
            bodies[name] = []
        elif line.startswith("}"):
            name = None
        elif name is not None:
            bodies[name].append(line)
        found = _LIBRARY_FUSION.search(line)
        if found:
            called.append(found.group(1))
    total = 0
    for comp in called:
        for line in bodies.get(comp, []):
            m = _INSTRUCTION.match(line)
            if m and m.group(4) == "dot" and not m.group(1):  # a product, not the result
                total += _element_bytes(m.group(2)) * math.prod(
                    int(d) for d in m.group(3).split(",") if d
                )
    return total


def _element_bytes(hlo_type: str) -> int:
    """Bytes of an element of an HLO type (f32: 4, c64: 8, pred: 1, f8e4m3fn: 1)."""
    bits = re.search(r"\d+", hlo_type)
    return max(1, int(bits.group()) // 8) if bits else 1


def setup_bytes(cfgs: list[Config], *, cached: bool, test: bool = True) -> tuple[int, int]:
    """(held, temporaries) of drawing the set-ups of ``cfgs``, from XLA's accounting of
    each distinct draw (``setup.draw_function``): ``cached``, the online lanes keep every
    distinct set-up until the lanes are stacked (the sum); else one at a time (the
    largest). ``test``: with the test sets (the ODE draws none). Real data sets count
    their arrays, as loaded (float64). Set-ups drawn by the same compiled draw (points
    differing in the seed, say) are measured once."""
    held, temp, seen = [], [0], set()
    measured: dict[Callable, tuple[int, int]] = {}  # by draw function
    for cfg in cfgs:
        if cfg.data.model in REAL_DATA:
            if (cfg.data.model, cfg.data.path) not in seen:  # read once per data set
                seen.add((cfg.data.model, cfg.data.path))
                n, N = shape(cfg.data.model, cfg.data.path)
                held.append(8 * n * (N + 1))
            continue
        key = setup_key(cfg)
        if key in seen:
            continue
        seen.add(key)
        draw = draw_function(cfg, test)
        if draw not in measured:
            keys = jax.eval_shape(lambda c=cfg: run_keys(c))  # shapes: nothing drawn
            measured[draw] = compiled_bytes(draw, keys)
        out, tmp = measured[draw]
        held.append(out)
        temp.append(tmp)
    if not held:
        return 0, max(temp)
    return (sum(held) if cached else max(held)), max(temp)


def ode_sample_bytes(cfg: Config) -> int:
    """The arrays the ODE's sample route (``ode.source = "sample"``) adds for one set-up
    of ``cfg`` with a stored (Gaussian) F of D x N: its float64 copy, and the Gram matrix of
    min(D, N)^2 with LAPACK's workspace and eigenvectors (counted as four such matrices);
    from the draw's shapes (``jax.eval_shape``: nothing drawn). 0 for a structured F or a
    model without one, and for ``source = "limit"``."""
    if cfg.ode.source != "sample":
        return 0
    keys = jax.eval_shape(lambda: run_keys(cfg))
    model = jax.eval_shape(draw_function(cfg, False), keys)[0]
    F = getattr(model, "features", None)
    if not isinstance(F, AbstractFeatures) or F.orthogonal:
        return 0
    D, N = F.shape
    return 8 * D * N + 4 * 8 * min(D, N) ** 2


def check_ode_setups(cfgs: list[Config], budget: int) -> int:
    """The bytes an ODE-only run (``run.mode = "ode"``, ``hmmjax optimise``) needs for its
    set-ups, measured before anything is drawn: the larger of the draw (data models and
    students of every distinct set-up, no test sets, and the draw's temporaries:
    ``setup_bytes``) and the ODE's set-up (the drawn set-ups and, for each, the sample
    route's copies: ``ode_sample_bytes``), times ``SAFETY`` plus ``RUNTIME_BYTES``. A
    ``ConfigError`` if that exceeds ``budget``."""
    held, temp = setup_bytes(cfgs, cached=True, test=False)
    distinct = {setup_key(cfg): cfg for cfg in cfgs}.values()
    ode = sum(ode_sample_bytes(cfg) for cfg in distinct)
    need = int(SAFETY * (RUNTIME_BYTES + held + max(temp, ode)))
    if need > budget:
        gib = 2**30
        c = cfgs[0]
        dense = c.data.features == "gaussian" and c.data.model in FEATURE_MODELS
        hint = ', use data.features = "dct" or "hadamard" (F never stored)' if dense else ""
        raise ConfigError(
            f"run.memory_gib = {show(c.run.memory_gib)}: the ODE's set-ups need about "
            f"{need / gib:.3g} GiB (the data models and students {held / gib:.3g} GiB, then "
            f"the larger of the draw's temporaries {temp / gib:.3g} GiB, measured, and the "
            f"ODE's copies of F {ode / gib:.3g} GiB; times {SAFETY} plus "
            f"{RUNTIME_BYTES / gib:.3g} GiB for the runtime), more than the "
            f"{budget / gib:.3g} GiB available; reduce "
            f"data.N, data.D or the grid{hint}, or raise run.memory_gib"
        )
    return need


def measure_footprint(lanes: Lanes, cfgs: list[Config], kind: str) -> Footprint:
    """The ``Footprint`` of the lanes (shapes) of ``cfgs``; ``kind``: "online" (set-ups
    cached while building, points padded only when the grid has several shapes),
    "finite" (one set-up at a time) or "invariant" (training and test sets per seed: at
    most the lanes again)."""
    total = tree_bytes(lanes)
    if kind == "invariant":
        held, temp = total, 0
    else:
        held, temp = setup_bytes(cfgs, cached=kind == "online")
    shapes = {(c.student.K, c.teacher.M, c.data.D, c.data.N) for c in cfgs}
    points = total if kind != "online" or len(shapes) > 1 else 0
    return Footprint(lanes=total, setups=held, build_temp=temp, points=points,
                     states=tree_bytes(lanes.students))  # fmt: skip


def _batch_shapes(tree: Any, batch: int, sharding: Any = None) -> Any:
    """The shapes of ``batch`` lanes of ``tree`` (leaves with a leading lane axis)."""
    return jax.tree.map(
        lambda a: jax.ShapeDtypeStruct((batch, *a.shape[1:]), a.dtype, sharding=sharding), tree
    )


def _chunk_args(lanes: Lanes, batch: int, chunk: int, devices: list[jax.Device],
                same_steps: bool) -> tuple:  # fmt: skip
    """The chunk's arguments for ``batch`` lanes of ``lanes``, as sharded shapes."""
    split, whole = placements(devices)
    students = _batch_shapes(lanes.students, batch, split)
    _, Q, E = lane_shape(lanes)
    dead = jax.ShapeDtypeStruct((batch, Q, E), jnp.bool_, sharding=split)
    rest = _batch_shapes((lanes.trainer, lanes.model, lanes.keys, lanes.test), batch, split)
    step = jax.dtypes.canonicalize_dtype(np.int64)
    bounds = jax.ShapeDtypeStruct((chunk,) if same_steps else (batch, chunk), step,
                                  sharding=whole if same_steps else split)  # fmt: skip
    dtype = next(a.dtype for a in jax.tree.leaves(lanes.students)
                 if jnp.issubdtype(a.dtype, jnp.inexact))  # fmt: skip
    return students, dead, rest, bounds, bounds, jax.ShapeDtypeStruct((), dtype, sharding=whole)


def record_bytes(lanes: Lanes, chunk: int, devices: list[jax.Device], *, shared: bool,
                 block: int, same_steps: bool, parts: int = 1) -> int:  # fmt: skip
    """The bytes one lane records per recording time (all its points and members, with
    their divergence flags), from the chunk's output shapes (nothing compiled)."""
    n = len(devices)
    fn = compiled_chunk(tuple(devices), shared, block, same_steps, parts=parts)
    _, _, meas, deads = jax.eval_shape(fn, *_chunk_args(lanes, n, chunk, devices, same_steps))
    return (tree_bytes(meas) + tree_bytes(deads)) // (n * chunk)


def chunk_bytes(
    lanes: Lanes,
    batch: int,
    chunk: int,
    devices: list[jax.Device],
    *,
    shared: bool,
    block: int,
    same_steps: bool,
    parts: int = 1,
) -> tuple[int, int]:
    """(outputs, temporaries) per device of the engine's chunk compiled for ``batch``
    lanes of ``lanes`` (shapes suffice) and ``chunk`` recording intervals (``parts``: the
    layout's member parts); the temporaries include the first measurement's bytes."""
    args = _chunk_args(lanes, batch, chunk, devices, same_steps)
    fn = compiled_chunk(tuple(devices), shared, block, same_steps, parts=parts)
    out, temp = compiled_bytes(fn, *args)
    # the first measurement runs before the chunk, lane by lane on the unsharded lanes
    # (engine.first_measure): every lane's outputs, one lane's temporaries. Its memory may
    # not be returned to the system in between, so it counts on top. Compiled here, like
    # the chunk, for the run to reuse.
    shapes = _batch_shapes((lanes.students, lanes.trainer, lanes.model, lanes.test), batch)
    index = jax.ShapeDtypeStruct((), np.int32)
    first_out, first_temp = compiled_bytes(measure_lane, shapes, index, shared=shared)
    return out, temp + batch * first_out + first_temp


def plan_grid(
    lanes: Lanes,
    footprint: Footprint,
    budget: int,
    devices: list[jax.Device],
    *,
    n_records: int,
    keep_setups: bool,
    chunk: int,
    shared: bool,
    block: int,
    same_steps: bool,
    what: str,
    batch: int | None = None,
    parts: int = 1,
) -> Plan:
    """The batch size of a grid whose lanes have the shapes ``lanes`` (leading axis: its
    lanes) and record ``n_records`` times: the whole grid if it fits ``budget`` bytes,
    else the most lanes per batch (a multiple of the device count) that do, measured at
    each candidate; else a ``ConfigError`` naming ``what`` the user can reduce.
    ``keep_setups``: the drawn set-ups stay in memory during the run (for the ODE).
    ``batch``: the lanes per batch to use (a resumed checkpoint's), measured and refused
    if it does not fit. ``parts``: the lanes' member parts (``lanes.Layout``).
    ``budget``: the RAM on a CPU, one device's memory on an accelerator."""
    P = lanes.keys.shape[0]
    n = len(devices)
    ram = devices[0].platform == "cpu"  # host devices share one RAM
    per_lane = footprint.lanes / P
    kept = footprint.lanes + (footprint.setups if keep_setups else 0)  # during the run
    gib = 2**30

    def total(peak: float) -> int:
        return int(SAFETY * (RUNTIME_BYTES + peak))

    def refuse(need: int, detail: str) -> ConfigError:
        return ConfigError(
            f"run.memory_gib: the grid needs about {need / gib:.3g} GiB ({detail}; times "
            f"{SAFETY} plus {RUNTIME_BYTES / gib:.3g} GiB for the runtime), more than the "
            f"{budget / gib:.3g} GiB available; reduce {what} or raise run.memory_gib"
        )

    per_record = record_bytes(lanes, chunk, devices, shared=shared, block=block,
                              same_steps=same_steps, parts=parts)  # fmt: skip
    # the history of every lane on the host (pieces, joined, checkpointed): in the RAM
    # budget of a CPU run whatever the batch
    history = 3 * P * n_records * per_record if ram else 0
    floor = total(max(footprint.build_peak(), footprint.lanes + history))
    if floor > budget:  # no batch size helps: refused before compiling anything
        detail = (
            f"measured: the {P} lanes {footprint.lanes / gib:.3g} GiB, set-ups "
            f"{footprint.setups / gib:.3g} GiB, histories of {n_records} records "
            f"(run.n_times) {history / gib:.3g} GiB"
        )
        raise refuse(floor, detail)

    def need(batch: int) -> tuple[int, tuple[int, int]]:
        out, temp = chunk_bytes(lanes, batch, chunk, devices, shared=shared, block=block,
                                same_steps=same_steps, parts=parts)  # fmt: skip
        # the batch's copies: taken from the lanes (batched), placed on the devices
        copy = batch * per_lane * ((batch != P) + (n > 1))
        if ram:  # + the checkpoint's states
            run = kept + copy + n * (out + temp) + history + footprint.states * batch / P
        else:
            run = kept + copy / n + out + temp
        return total(max(footprint.build_peak(), run)), (out, temp)

    fixed = batch is not None
    batch = batch or -(-P // n) * n
    while True:
        need_bytes, (out, temp) = need(batch)
        if need_bytes <= budget:
            return Plan(P, batch, n, need_bytes, budget, footprint, (out, temp),
                        parts=parts)  # fmt: skip
        if fixed:
            raise refuse(need_bytes, f"batches of {batch} lanes, as the checkpoint was "
                                     "written; or run with --fresh")  # fmt: skip
        if batch == n:
            raise refuse(
                need_bytes,
                f"measured: one lane per device {(out + temp) / gib:.3g}"
                f" GiB besides the lanes {footprint.lanes / gib:.3g} GiB",
            )
        # the chunk's bytes grow with the batch: aim at what fits, then measure that
        per_batch_lane = max((out + temp) * n / batch, 1) + 2 * per_lane
        spare = budget / SAFETY - RUNTIME_BYTES - kept - history
        fit = int(max(spare, 0) // per_batch_lane) // n * n
        batch = max(n, min(batch - n, fit))
