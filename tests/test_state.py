import zipfile

import jax
import numpy as np
import pytest

from hmmjax.data.base import make_data_model
from hmmjax.io.state import (
    OPTIONAL_KEYS,
    REQUIRED_KEYS,
    SHAPES,
    check_state,
    load_state,
    save_state,
    state_arrays,
)
from hmmjax.models.two_layer import init_network


def test_state_file_round_trip(tmp_path):
    model = make_data_model(jax.random.PRNGKey(0), "hmm", N=60, M=2, D=30, f="sign")
    student = init_network(jax.random.PRNGKey(1), 3, 60)
    path = save_state(tmp_path / "sub" / "state.npz", student, model)
    state = load_state(path)
    for key in REQUIRED_KEYS + ("beta", "F", "theta", "w"):
        assert key in state
    assert state["sigma"].shape == (3, 3, 30) and state["r"].shape == (3, 2, 30)
    assert state["sigma"].dtype == np.float64
    assert int(state["N"]) == 60 and int(state["D"]) == 30
    # no temporary files left behind
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["state.npz"]


def test_load_state_rejects_bad_files(tmp_path):
    model = make_data_model(jax.random.PRNGKey(0), "hmm", N=20, M=2, D=10)
    student = init_network(jax.random.PRNGKey(1), 2, 20)
    good = load_state(save_state(tmp_path / "s.npz", student, model))
    bad = dict(good)
    del bad["Ttilde"]
    np.savez(tmp_path / "missing.npz", **bad)
    with pytest.raises(ValueError, match="missing keys.*Ttilde"):
        load_state(tmp_path / "missing.npz")
    bad = dict(good, rho=good["rho"][:-1])
    np.savez(tmp_path / "shape.npz", **bad)
    with pytest.raises(ValueError, match="rho has shape"):
        load_state(tmp_path / "shape.npz")


def test_state_needs_teacher_on_c():
    model = make_data_model(jax.random.PRNGKey(0), "hmm_x", N=20, M=2, D=10)
    student = init_network(jax.random.PRNGKey(1), 2, 20)
    with pytest.raises(TypeError, match="teacher on c"):
        save_state("unused.npz", student, model)


# --------------------------------------------------------------------------- bad state files


def _arrays(K=2, M=3, D=5, N=8, seed=0):
    """A state of consistent shapes (not a physical one), built with NumPy only."""
    rng = np.random.default_rng(seed)
    shapes = {"K": K, "M": M, "D": D, "N": N}
    state = {key: rng.normal(size=tuple(shapes[d] for d in dims)) for key, dims in SHAPES.items()}
    state["rho"] = rng.uniform(0.1, 2.0, D)
    state["N"], state["D"] = np.int64(N), np.int64(D)
    return state


def test_save_state_output_passes_check_state_with_more_latent_dims_than_inputs():
    model = make_data_model(jax.random.PRNGKey(0), "hmm", N=10, M=2, D=30)
    state = state_arrays(init_network(jax.random.PRNGKey(1), 2, 10), model)
    check_state(state)  # zero eigenvalues of F F^T / N may come out as -1e-16: accepted


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"N": np.int64(30)}, "F has shape (5, 8), expected (D, N) = (5, 30)"),
        ({"F": np.zeros((5, 7))}, "F has shape (5, 7), expected (D, N) = (5, 8)"),
        ({"w": np.zeros((3, 8))}, "w has shape (3, 8), expected (K, N) = (2, 8)"),
        ({"theta": np.zeros((5, 3))}, "theta has shape (5, 3), expected (M, D) = (3, 5)"),
        ({"sigma": np.zeros((2, 2, 4))}, "sigma has shape (2, 2, 4), expected (K, K, D)"),
        ({"W": np.float64(1.0)}, "W has shape (), expected (K, K) = (2, 2)"),
        ({"W": np.array([[np.nan, 0], [0, 1]])}, "W has non-finite values (1 of 4"),
        ({"beta": np.full((3, 5), np.inf)}, "beta has non-finite values (15 of 15"),
        ({"W": np.eye(2, dtype=int)}, "W has dtype int64, expected floating-point numbers"),
        ({"W": np.array(["a", "b"])}, "W has dtype <U1, expected floating-point"),
        ({"W": np.eye(2) + 0j}, "W has dtype complex128"),
        ({"v": np.zeros(0)}, "v has shape (0,), expected (K,) with K >= 1"),
        ({"A": np.float64(1.0)}, "A has shape (), expected (M,) with M >= 1"),
        ({"N": np.int64(0)}, "N = 0, expected N >= 1"),
        ({"D": np.float64(5.0)}, "D is 5.0 of dtype float64, expected an integer scalar"),
        ({"D": np.array([5])}, "D is an array of shape (1,) and dtype int64, expected an integer"),
        ({"rho": -np.ones(5)}, "rho has negative values (the least is -1)"),
        ({"Beta": np.zeros((3, 5))}, "unknown keys ['Beta']; allowed ['rho', "),
        ({"Ttilde": None}, "missing keys ['Ttilde']; required ['rho', "),
    ],
)
def test_check_state_names_the_bad_array(change, expected):
    state = _arrays()
    state.update(change)
    state = {k: a for k, a in state.items() if a is not None}
    with pytest.raises(ValueError) as info:
        check_state(state, "state file s.npz")
    message = str(info.value)
    assert message.startswith("state file s.npz: ") and "\n" not in message
    assert expected in message


def test_check_state_refuses_every_random_damage():
    """Property: whatever one array of a good state suffers (an axis longer or shorter, a
    non-finite entry, another dtype, a scalar in its place, gone unless optional),
    ``check_state`` raises a one-line ValueError that names the array (or the size it
    sets), never another error."""
    rng = np.random.default_rng(1)
    check_state(_arrays())
    for trial in range(300):
        state = _arrays(*rng.integers(1, 5, 4), seed=trial)
        key = str(rng.choice(list(state)))
        a = state[key]
        damage = rng.choice(["axis", "nonfinite", "dtype", "scalar", "gone"])
        if damage == "axis" and a.ndim:
            shape = list(a.shape)
            shape[rng.integers(a.ndim)] += int(rng.choice([-1, 1]))
            state[key] = np.zeros(shape)
        elif damage == "axis":  # N or D: another value
            state[key] = np.int64(a + rng.choice([-a, 1, 7]))
        elif damage == "nonfinite" and a.ndim:
            a = a.copy()
            a.flat[rng.integers(a.size)] = rng.choice([np.nan, np.inf, -np.inf])
            state[key] = a
        elif damage in ("dtype", "nonfinite"):
            kinds = (np.int64, str, bool, complex) if a.ndim else (np.float64, str, bool)
            state[key] = a.astype(kinds[rng.integers(len(kinds))])
        elif damage == "scalar":
            state[key] = np.float64(0.5) if a.ndim else np.zeros(3, np.int64)
        else:
            del state[key]
            if key in OPTIONAL_KEYS:  # a state without it is still a state
                check_state(state)
                continue
        with pytest.raises(ValueError) as info:
            check_state(state, "state file x.npz")
        message = str(info.value)
        assert message.startswith("state file x.npz: ") and "\n" not in message, message
        sets = {"v": f"from {key}", "A": f"from {key}", "N": f"{key} = ", "D": f"{key} = "}
        named = (f": {key} ", f"'{key}'", sets.get(key, f": {key} "))
        assert any(text in message for text in named), (key, damage, message)


def _write_good(path):
    np.savez(path, **_arrays())
    return path


def _as_npy(path):
    """Replace the file by a single .npy array (what np.save writes)."""
    with open(path, "wb") as f:
        np.save(f, np.zeros(3))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda p: p.write_bytes(b""), "(the file is empty)"),
        (lambda p: p.write_text("0 1 2\n"), "(it starts with 30 20 31 20, not with the zip"),
        (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "truncated zip"),
        (_as_npy, "(it is a single .npy array, not an .npz archive"),
    ],
    ids=["empty", "text", "truncated", "npy"],
)
def test_load_state_refuses_files_that_are_not_npz(tmp_path, damage, reason):
    path = _write_good(tmp_path / "s.npz")
    damage(path)
    with pytest.raises(ValueError) as info:
        load_state(path)
    message = str(info.value)
    assert message.startswith(f"state file {path} is not a readable .npz state file (")
    assert reason in message and message.endswith("; write it with hmmjax.io.save_state")


def test_load_state_refuses_damaged_or_pickled_arrays(tmp_path):
    path = _write_good(tmp_path / "s.npz")
    with zipfile.ZipFile(path) as z:
        members = z.infolist()
    after_w = next(
        m.header_offset for m, prev in zip(members[1:], members) if prev.filename == "W.npy"
    )
    data = bytearray(path.read_bytes())
    data[after_w - 1] ^= 0x40  # the last data byte of W: its CRC no longer matches
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"s\.npz: cannot read W \(a damaged .*Bad CRC-32"):
        load_state(path)
    np.savez(path, **dict(_arrays(), W=np.array([{}, None], dtype=object)))
    with pytest.raises(ValueError, match=r"s\.npz: cannot read W \(it holds Python objects"):
        load_state(path)
    np.savez(path, **dict(_arrays(), W=np.array([[1.0, np.nan], [0.0, 1.0]])))
    with pytest.raises(ValueError, match=r"^state file .*s\.npz: W has non-finite values"):
        load_state(path)
    with pytest.raises(FileNotFoundError):
        load_state(tmp_path / "nowhere.npz")
