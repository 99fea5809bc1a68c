"""The ``hmmjax`` command: run a config, plot a results file, list the config keys.

    hmmjax run configs/quickstart.toml --set sgd.lr=0.5
    hmmjax optimise configs/optimal_schedule.toml   # the best schedule, through the ODE
    hmmjax plot results/quickstart.nc
    hmmjax config                       # every key, its default and what is allowed
    hmmjax config configs/quickstart.toml --set run.seed=1   # check a config, print it

Each subcommand is a function ``(args) -> exit code`` plus a function adding its
arguments, registered in ``COMMANDS``. JAX (and the physics) is imported only inside
``run``, after the config has been validated, so ``--help`` and config errors are fast.
A wrong config or a missing file prints one line ``hmmjax: error: ...`` and exits with 2.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import secrets
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hmmjax import __version__
from hmmjax.config.schema import (
    ACTIVATIONS,
    MAX_NODES,
    ODE_F,
    ODE_G,
    SCHEMA,
    ConfigError,
    one_line,
)
from hmmjax.config.settings import (
    Config,
    config_reference_markdown,
    euler_steps_problem,
    load_config,
)

__all__ = [
    "USAGE_ERROR",
    "CONFIG_REFERENCE",
    "RUN_DESCRIPTION",
    "ODE_SOLVERS",
    "UsageError",
    "Command",
    "cmd_run",
    "cmd_optimise",
    "cmd_plot",
    "cmd_ode",
    "cmd_config",
    "COMMANDS",
    "build_parser",
    "main",
]

USAGE_ERROR = 2
ODE_SOLVERS = SCHEMA["ode"]["solver"].choices


class UsageError(Exception):
    """A mistake in what the user asked for: reported in one line, exit code 2."""


@dataclass(frozen=True)
class Command:
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    description: str = ""  # the text of ``hmmjax NAME --help`` (kept as written); else help


CONFIG_REFERENCE = (
    "Every config key, its default and what it allows: `hmmjax config`, or the\n"
    "config reference of the documentation (docs/reference/config.md; `mkdocs serve`\n"
    "shows the site locally)."
)

RUN_DESCRIPTION = f"""\
Run the experiment of a TOML config: write its results (netCDF; results/NAME.nc
unless output.out or --out says otherwise) and its figure. What runs follows
from the config:

  online SGD   the default: run.ensemble students trained side by side by
               online SGD, each on its own stream of fresh samples
               (data.model = iid, hmm, hmm_x, get, or a registered model:
               --plugin)
  finite set   finite.P > 0: multi-pass training on P samples drawn once (or
               on the digits / MNIST images), finite.optimizer = sgd,
               momentum or adam
  ODE          run.mode = "ode": the learning-curve ODE of docs/theory.md 5
               from member 0's initial state (ode.source = "limit": the
               N -> infinity limit)
  both         run.mode = "both": simulation and ODE from the same initial
               state, on the same times (run.same_init = true: every member
               starts there)
  grid         a [grid] table (lr, kappa, noise, K, M, D, N, seed, model, ...):
               the points in one compiled run, padded and masked, sharded
               over the devices; a grid over model or features runs once
               per value, an invariant grid over P once per P
               (invariant.by_p), and the parts are put together
  invariant    data.model = "stripe" or "cylinder", or invariant.network =
               "cnn" on digits / mnist (its settings in the optional
               [invariant] table): the alpha-trick network trained by
               hinge-loss gradient flow, lazy against feature learning

A simulation writes a checkpoint after each chunk: run the same command again
after an interruption and it resumes (--fresh starts over). `hmmjax optimise`
finds learning-rate schedules; `hmmjax plot` redraws a figure from a results
file.

{CONFIG_REFERENCE}
"""


# --- hmmjax run ----------------------------------------------------------------------


def _run_arguments(p: argparse.ArgumentParser) -> None:
    _config_run_arguments(p)
    dist = p.add_argument_group(
        "multi-host (jax.distributed; one process per host, each runs its share of the grid)"
    )
    dist.add_argument(
        "--distributed",
        action="store_true",
        help="call jax.distributed.initialize (cluster auto-detection, or the options below)",
    )
    dist.add_argument("--coordinator", metavar="HOST:PORT", help="address of process 0")
    dist.add_argument("--num-processes", type=int, metavar="N", help="number of processes")
    dist.add_argument("--process-id", type=int, metavar="I", help="this process, 0 .. N-1")


def _config_run_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of a command that runs a config: hmmjax run and hmmjax optimise."""
    p.add_argument("config", metavar="CONFIG.toml", help="experiment config (TOML)")
    p.add_argument(
        "--out", metavar="FILE.nc", help="results file (default: output.out); moves the figure too"
    )
    figure = p.add_mutually_exclusive_group()
    figure.add_argument(
        "--figure", metavar="FILE.png", help="figure (default: output.figure, or next to --out)"
    )
    figure.add_argument(
        "--no-figure",
        action="store_true",
        help="write the results file only (draw the figure later: hmmjax plot FILE.nc)",
    )
    _set_argument(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--fresh", action="store_true", help="ignore and replace an existing checkpoint")


def _host_devices() -> None:
    """One XLA CPU device per core (unless XLA_FLAGS already sets it), so that a sweep on
    a CPU shards its grid over the cores (run.devices); must run before JAX starts.
    Accelerator runs are unaffected: their devices are the GPUs or TPUs."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" in flags or "jax" in sys.modules:
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={cores or 1}"


def _distributed(args: argparse.Namespace) -> None:
    """jax.distributed.initialize from the --distributed options (before any JAX work).

    Each option is checked first, and what is not given is what jax.distributed would
    detect (JAX_COORDINATOR_ADDRESS, then the cluster's environment: SLURM, Open MPI,
    Cloud TPU, Kubernetes), checked as well: a wrong or missing value is one line."""
    given = [args.coordinator, args.num_processes, args.process_id]
    if not args.distributed:
        if any(x is not None for x in given):
            raise UsageError("--coordinator/--num-processes/--process-id need --distributed")
        return
    values = {"coordinator_address": _given("--coordinator", args.coordinator),
              "num_processes": _given("--num-processes", args.num_processes),
              "process_id": _given("--process-id", args.process_id)}  # fmt: skip
    env = os.environ.get("JAX_COORDINATOR_ADDRESS")  # read by jax.distributed too
    if args.coordinator is None and env:
        values["coordinator_address"] = (env, f"JAX_COORDINATOR_ADDRESS {env!r}")
    _check_distributed(values)
    import jax  # noqa: PLC0415 (after the host-device flags are set)

    if any(v is None for v, _ in values.values()):
        values = _detected(values)
        _check_distributed(values)
    options = {k: v for k, (v, _) in values.items() if v is not None}
    try:
        jax.distributed.initialize(**options)
    except ValueError as err:  # what JAX still refuses (detection of another JAX version)
        raise UsageError(f"--distributed: {one_line(str(err))}") from None


def _given(flag: str, value: object) -> tuple[object, str]:
    """(value, how to name it in a message) of a --distributed option; (None, flag) if absent."""
    return value, flag if value is None else f"{flag} {value!r}"


_NO_CLUSTER = "no cluster detected to supply them (SLURM, Open MPI, Cloud TPU, Kubernetes)"


def _detected(values: dict[str, tuple[object, str]]) -> dict[str, tuple[object, str]]:
    """``values`` with those not given detected as jax.distributed.initialize detects
    them (its cluster environments); refused in one line if some stay unknown."""
    keys = ("coordinator_address", "num_processes", "process_id")
    try:  # the detection jax.distributed.initialize runs (not public API)
        from jax._src.clusters import ClusterEnv  # noqa: PLC0415 (JAX: only here)

        found = ClusterEnv.auto_detect_unset_distributed_params(
            *(values[k][0] for k in keys), None, None, 300
        )[:3]
    except (ImportError, AttributeError, TypeError, ValueError):
        return values  # another JAX: initialize detects them itself (its errors: one line)
    missing = [values[k][1] for k, v in zip(keys, found, strict=True) if v is None]
    if missing:
        raise UsageError(
            f"--distributed: {', '.join(missing)} not given, and {_NO_CLUSTER}; give "
            "--coordinator HOST:PORT --num-processes N --process-id I"
        )
    what = {"coordinator_address": "coordinator address", "num_processes": "number of processes",
            "process_id": "process id"}  # fmt: skip
    return {
        k: values[k] if values[k][0] is not None
        else (v, f"the {what[k]} {v!r} (from the cluster's environment)")
        for k, v in zip(keys, found, strict=True)
    }  # fmt: skip


def _check_distributed(values: dict[str, tuple[object, str]]) -> None:
    """The known --distributed values (value, name in messages) as JAX needs them:
    HOST:PORT with a port 1..65535, at least one process, 0 <= process id < processes."""
    (address, a_name), (n, n_name), (i, i_name) = (
        values[k] for k in ("coordinator_address", "num_processes", "process_id")
    )
    if address is not None and not _host_port(str(address)):
        raise UsageError(
            f"{a_name}: expected HOST:PORT, the host of process 0 and a free port 1..65535 "
            "(e.g. host0:12345)"
        )
    if n is not None and (not isinstance(n, int) or n < 1):
        raise UsageError(f"{n_name}: expected a number of processes >= 1")
    if i is not None and (not isinstance(i, int) or i < 0):
        raise UsageError(f"{i_name}: expected a process id 0 .. N-1 for N processes")
    if i is not None and n is not None and i >= n:
        raise UsageError(f"{i_name}: expected 0 .. {n - 1} for {n_name}")


def _host_port(address: str) -> bool:
    """Whether ``address`` is HOST:PORT: a host (name, IPv4, [IPv6]) and a port 1..65535."""
    host, colon, port = address.rpartition(":")
    ok_port = port.isascii() and port.isdigit() and 1 <= int(port) <= 65535
    return bool(colon and host and not any(c.isspace() for c in host) and ok_port)


def _outputs(args: argparse.Namespace) -> tuple[Config, Path, Path]:
    """The config with --out and --figure applied, its results file and figure, both
    checked writable before any work."""
    cfg = _load(args)
    if args.out is not None:  # the figure follows --out unless --figure says otherwise
        cfg = cfg.replace(output={"out": args.out, "figure": args.figure or ""})
    elif args.figure is not None:
        cfg = cfg.replace(output={"figure": args.figure})
    out, figure = cfg.output.out_path(), cfg.output.figure_path()
    outputs = {"the results file": out} | ({} if args.no_figure else {"the figure": figure})
    inputs = {"the config": Path(args.config), "sgd.schedule_file": cfg.sgd.schedule_file,
              "data.path": cfg.data.path}  # fmt: skip
    _check_outputs(outputs, inputs)
    if not args.no_figure:
        _check_figure(figure)
    return cfg, out, figure


def cmd_run(args: argparse.Namespace) -> int:
    cfg, out, figure = _outputs(args)
    _host_devices()
    _distributed(args)
    from hmmjax.experiments import driver  # noqa: PLC0415 (JAX only once the config is valid)
    from hmmjax.sweep import checkpoint_path  # noqa: PLC0415 (as above)

    ckpt = checkpoint_path(cfg) if cfg.run.checkpoint else None
    for old in driver.run_checkpoints(cfg, ckpt) if ckpt is not None and args.fresh else []:
        old.unlink()
    ds = driver.simulate(cfg, progress=not args.quiet, checkpoint=ckpt)
    if ds is not None:  # None: a process > 0 of a multi-host run (process 0 writes)
        _write(ds, out)
        _warn_divergence(ds)
    for done in driver.run_checkpoints(cfg, ckpt) if ckpt is not None else []:
        done.unlink()  # the results are safely written
    if ds is not None and not args.no_figure:
        _plot(ds, out, figure)
    return 0


def _warn_divergence(ds) -> None:
    """Say on stderr which runs diverged (their values stay in the results, NaN from then)."""
    from hmmjax.analysis import divergence_notes  # noqa: PLC0415 (xarray: not for --help)

    for note in divergence_notes(ds):
        print(f"hmmjax: warning: {note}", file=sys.stderr)


# --- hmmjax optimise -----------------------------------------------------------------


def cmd_optimise(args: argparse.Namespace) -> int:
    cfg, out, figure = _outputs(args)
    _host_devices()
    from hmmjax.experiments.optimise import (  # noqa: PLC0415 (JAX)
        check_optimise,
        optimise,
        optimise_checkpoints,
        schedule_path,
    )
    from hmmjax.sweep import checkpoint_path  # noqa: PLC0415 (as above)

    check_optimise(cfg)  # before any compilation
    schedule = {"the schedule file": schedule_path(out)}
    _check_outputs(schedule, {"the results file": out, "the config": Path(args.config),
                              "sgd.schedule_file": cfg.sgd.schedule_file}
                   | ({} if args.no_figure else {"the figure": figure}))  # fmt: skip
    ckpt = checkpoint_path(cfg) if cfg.run.checkpoint else None
    for old in optimise_checkpoints(cfg, ckpt) if ckpt is not None and args.fresh else []:
        old.unlink()
    ds = optimise(cfg, progress=not args.quiet, checkpoint=ckpt, config=args.config)
    _write(ds, out)
    for done in optimise_checkpoints(cfg, ckpt) if ckpt is not None else []:
        done.unlink()  # the results are safely written
    if "schedule_sgd" in ds.attrs:
        print(f"hmmjax: the optimised schedule as [sgd] keys: {ds.attrs['schedule_sgd']}")
    if not args.no_figure:
        _plot(ds, out, figure)
    return 0


def _check_figure(figure: Path) -> None:
    """Refuse a figure format that cannot be drawn before any work (whether the file can
    be written: ``_check_outputs``, which every caller runs first)."""
    from hmmjax.plots import check_figure_path  # noqa: PLC0415 (matplotlib: not for --help)

    try:
        check_figure_path(figure)
    except ValueError as err:
        raise UsageError(str(err)) from None


def _save(ds, out: Path, figure: Path) -> None:
    _write(ds, out)
    _plot(ds, out, figure)


def _write(ds, out: Path) -> None:
    from hmmjax.io import write_dataset  # noqa: PLC0415 (xarray: not for --help)

    write_dataset(ds, out)
    print(f"hmmjax: wrote {out}")


def _plot(ds, out: Path, figure: Path) -> None:
    from hmmjax.plots import plot_results  # noqa: PLC0415 (matplotlib: not for --help)

    try:
        plot_results(ds, figure)
    except ValueError as err:  # the results are safe; say why there is no figure
        raise UsageError(f"wrote {out}, but no figure {figure}: {err}") from None
    print(f"hmmjax: wrote {figure}")


# --- hmmjax plot ---------------------------------------------------------------------


def _plot_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", metavar="FILE.nc", help="results file written by hmmjax run")
    p.add_argument("--out", metavar="FILE.png", help="figure (default: FILE with .png)")


def cmd_plot(args: argparse.Namespace) -> int:
    from hmmjax.io import read_dataset  # noqa: PLC0415 (xarray: not for --help)
    from hmmjax.plots import plot_results  # noqa: PLC0415 (as above)

    src = Path(args.results)
    figure = Path(args.out) if args.out else src.with_suffix(".png")
    if not src.is_file():
        raise UsageError(f"results file {src} {'is a folder' if src.is_dir() else 'not found'}")
    _check_outputs({"the figure": figure}, {"the results file": src})
    _check_figure(figure)
    try:
        ds = read_dataset(src)
    except ValueError as err:  # not a netCDF file, or a damaged one
        raise UsageError(str(err)) from None
    try:
        plot_results(ds, figure)
    except ValueError as err:  # no figure fits what the file holds
        raise UsageError(f"results file {src}: {err}") from None
    print(f"hmmjax: wrote {figure}")
    return 0


# --- hmmjax ode ----------------------------------------------------------------------


def _ode_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("state", metavar="STATE.npz", help="initial state (hmmjax.io.state format)")
    p.add_argument("--lr", type=float, required=True, help="learning rate eta")
    p.add_argument("--t-max", type=float, required=True, help="final time (units of N steps)")
    p.add_argument("--dt", type=float, default=0.01, help="Euler step (default 0.01)")
    p.add_argument("--solver", choices=ODE_SOLVERS, default="euler", help="default euler")
    p.add_argument("--rtol", type=float, default=1e-8, help="adaptive solvers (default 1e-8)")
    p.add_argument("--atol", type=float, default=1e-10, help="adaptive solvers (default 1e-10)")
    p.add_argument(
        "--save-times",
        metavar="FILE",
        help="text file of save times; default: --n-times log-spaced times up to --t-max",
    )
    p.add_argument("--n-times", type=int, default=200, help="default 200")
    p.add_argument("--both-layers", action="store_true", help="train the second layer too")
    p.add_argument("--f", choices=ACTIVATIONS, default="sign", help="manifold f (default sign)")
    p.add_argument("--g", choices=ODE_G, default="erf", help="activation g (default erf)")
    p.add_argument(
        "--teacher-term",
        choices=("auto", "exact", "averaged"),
        default="auto",
        help="exact needs beta in the state file; auto: exact when it has beta",
    )
    p.add_argument(
        "--nodes",
        default="auto",
        help="spectral points (docs/theory.md 5.3): auto (default: 33, 65, 129 or 257 nodes, "
        "the first whose probed error is within --node-rtol), "
        f"full (every eigenvalue, the published ODE) or a number 2 <= p <= {MAX_NODES} of "
        "Chebyshev nodes",
    )
    p.add_argument(
        "--node-rtol",
        type=float,
        default=1e-8,
        help="--nodes auto: estimated relative node error of eg to reach (default 1e-8)",
    )
    p.add_argument("--out", metavar="FILE.nc", required=True, help="results file")
    p.add_argument("--figure", metavar="FILE.png", help="figure (default: next to --out)")


def _parse_nodes(text: str) -> str | int:
    if text in ("auto", "full"):
        return text
    try:
        p = int(text)
    except ValueError:
        p = 0
    if not 2 <= p <= MAX_NODES:
        raise UsageError(
            f"--nodes = {text}: expected auto, full or an integer 2 <= p <= {MAX_NODES} (the "
            "most auto may run: more add cost, not accuracy)"
        )
    return p


def cmd_ode(args: argparse.Namespace) -> int:
    nodes = _parse_nodes(args.nodes)
    for flag in ("lr", "t_max", "dt", "rtol", "atol", "n_times", "node_rtol"):
        value = getattr(args, flag)
        if not (math.isfinite(value) and value > 0):
            name = "--" + flag.replace("_", "-")
            kind = "an integer" if isinstance(value, int) else "a finite number"
            raise UsageError(f"{name} = {value}: expected {kind} > 0")
    if args.solver == "euler":
        problem = euler_steps_problem(args.t_max, args.dt, "--t-max", "--dt")
        if problem:
            raise UsageError(problem)
    if args.f not in ODE_F:
        raise UsageError(
            f'--f = "{args.f}": the HMM ODE needs E f(u) = 0; choose {", ".join(ODE_F)}'
        )
    state = Path(args.state)
    if not state.is_file():
        raise UsageError(f"state file {state} {'is a folder' if state.is_dir() else 'not found'}")
    out = Path(args.out)
    figure = Path(args.figure) if args.figure else out.with_suffix(".png")
    inputs = {"the state file": state, "--save-times": args.save_times or ""}
    _check_outputs({"the results file": out, "the figure": figure}, inputs)
    _check_figure(figure)
    from hmmjax.io import read_times  # noqa: PLC0415 (not for --help)

    times = None
    if args.save_times is not None:
        try:
            times = read_times(args.save_times, name="--save-times")
        except ValueError as err:
            raise UsageError(str(err)) from None
        if times[-1] > args.t_max:
            raise UsageError(
                f"--save-times {args.save_times}: the largest save time {times[-1]} is beyond "
                f"--t-max = {args.t_max}; expected save times <= --t-max"
            )
    from hmmjax.core.cache import enable_compile_cache  # noqa: PLC0415
    from hmmjax.experiments import ode_divergence, ode_from_state  # noqa: PLC0415 (JAX: after the checks)

    enable_compile_cache()

    try:
        ds = ode_from_state(
            state,
            lr=args.lr,
            t_max=args.t_max,
            times=times,
            n_times=args.n_times,
            solver=args.solver,
            dt=args.dt,
            rtol=args.rtol,
            atol=args.atol,
            both=args.both_layers,
            f=args.f,
            g=args.g,
            teacher_term=args.teacher_term,
            nodes=nodes,
            node_rtol=args.node_rtol,
        )
    except ValueError as err:  # a bad state file (io.state.check_state), found before solving
        raise UsageError(str(err)) from None
    t0 = ode_divergence(ds)
    if t0 is not None:  # the values stay in the results; said, not hidden
        print(f"hmmjax: warning: eg_ode is not finite from t = {t0:g} on: the ODE diverged "
              f"(--solver {args.solver}, --dt {args.dt:g}; a smaller --dt or an adaptive "
              "solver may help)", file=sys.stderr)  # fmt: skip
    _save(ds, out, figure)
    return 0


# --- hmmjax config -------------------------------------------------------------------


def _config_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "config",
        metavar="CONFIG.toml",
        nargs="?",
        help="check this config and print it in full (with defaults); "
        "without it, print the table of all keys",
    )
    _set_argument(p)


def cmd_config(args: argparse.Namespace) -> int:
    if args.config is None:
        if args.set:
            raise UsageError("--set needs a CONFIG.toml to apply to")
        print(config_reference_markdown(), end="")
    else:
        cfg = _load(args)
        from hmmjax.experiments import check_config  # noqa: PLC0415 (JAX: only here)

        check_config(cfg)  # the checks of hmmjax run (before its memory plan)
        print(cfg.to_toml(), end="")
    return 0


COMMANDS: dict[str, Command] = {
    "run": Command(
        "run a config: online SGD, a finite training set, the ODE, both, a grid, or an "
        "invariant-manifold experiment",
        _run_arguments,
        cmd_run,
        RUN_DESCRIPTION,
    ),
    "ode": Command("integrate the HMM ODE from a state file", _ode_arguments, cmd_ode),
    "optimise": Command(
        "find the learning-rate schedule that minimises the ODE's eg, and check it in "
        "simulation ([optimise])",
        _config_run_arguments,
        cmd_optimise,
    ),
    "plot": Command("plot the learning curves of a results file", _plot_arguments, cmd_plot),
    "config": Command(
        "list the config keys, or check a config",
        _config_arguments,
        cmd_config,
        "Without a config: print the table of every config key (type, default, what\n"
        "is allowed, description) and of the [grid] table, in markdown. With one:\n"
        "check it as `hmmjax run` would, before any compilation, and print it\n"
        "complete, defaults included.\n\n"
        "The same table is the config reference of the documentation\n"
        "(docs/reference/config.md).",
    ),
}


# --- shared pieces -------------------------------------------------------------------


def _set_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--set",
        metavar="SECTION.KEY=VALUE",
        action="append",
        default=[],
        help="override a config key (repeatable), e.g. --set sgd.lr=0.5",
    )
    p.add_argument(
        "--plugin",
        metavar="MODULE",
        action="append",
        default=[],
        help="import MODULE first (repeatable; the current folder is on the path): a module "
        "that registers data models or trainers (docs/guides/extending.md)",
    )


def _load(args: argparse.Namespace) -> Config:
    """The config of ``args``, after importing the ``--plugin`` modules (their registered
    data models and trainers are valid config values)."""
    if args.plugin and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for name in args.plugin:
        try:
            importlib.import_module(name)
        except ImportError as err:
            raise UsageError(f"--plugin {name}: cannot import it ({err})") from None
    return load_config(args.config, args.set)


def _check_outputs(outputs: dict[str, Path], inputs: dict[str, Path | str]) -> None:
    """Before any work: every output (by role) can be written, is a plain file if it
    exists, and is neither another output nor one of the inputs (by role; "" for none),
    so that no file a run needs or writes is overwritten by another."""
    seen: dict[Path, str] = {}
    for role, path in inputs.items():
        if path and Path(path).exists():
            seen.setdefault(Path(path).resolve(), f"{role} ({path})")
    for role, path in outputs.items():
        try:  # a link is written through (atomic_target): check where it points
            target = path.resolve()
        except (RuntimeError, OSError) as err:  # a loop of links
            raise UsageError(f"cannot write {role} {path}: {err}") from None
        _check_writable(target, role)
        if target.exists() and not target.is_file():
            raise UsageError(f"cannot write {role} {path}: it is not a regular file")
        other = seen.get(target)
        if other is not None:
            raise UsageError(f"{role} {path} would overwrite {other}; give it another name")
        seen[target] = f"{role} ({path})"


def _check_writable(path: Path, role: str) -> None:
    """Fail now, not after the run, if ``path`` (the run's ``role``) cannot be written: a
    file is created and removed in its folder (or the nearest one that exists), since
    permissions alone do not tell (root, a read-only or pseudo file system, a squashed
    network share)."""
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if path.is_dir():
        raise UsageError(f"cannot write {role} {path}: it is a folder")
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise UsageError(f"cannot write {role} {path}: {folder} is not a writable folder")
    probe = folder / f".hmmjax-write-test-{secrets.token_hex(8)}"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        probe.unlink()
    except OSError as err:
        raise UsageError(f"cannot write {role} {path}: {folder} does not take new files "
                         f"({err.strerror or err})") from None  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hmmjax",
        description="Online SGD and ODEs for two-layer networks on hidden-manifold data.",
        epilog=CONFIG_REFERENCE.replace("\n", " "),
    )
    parser.add_argument("--version", action="version", version=f"hmmjax {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, command in COMMANDS.items():
        p = sub.add_parser(
            name,
            help=command.help,
            description=command.description or command.help,
            formatter_class=argparse.RawDescriptionHelpFormatter
            if command.description
            else argparse.HelpFormatter,
        )
        command.add_arguments(p)
        p.set_defaults(func=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hmmjax`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, UsageError) as err:
        print(f"hmmjax: error: {one_line(str(err))}", file=sys.stderr)
        return USAGE_ERROR
    except OSError as err:  # a file that cannot be read or written
        print(f"hmmjax: error: {one_line(str(err))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("hmmjax: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
