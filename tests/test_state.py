import jax
import numpy as np
import pytest

from hmmjax.data.base import make_data_model
from hmmjax.io.state import REQUIRED_KEYS, load_state, save_state
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
