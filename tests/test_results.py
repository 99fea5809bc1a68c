"""Results files and figures: round trips, atomic writes, learning-curve plots."""

import json

import numpy as np
import pytest
import xarray as xr

from hmmjax.core.files import atomic_write_bytes
from hmmjax.io import results
from hmmjax.io.results import config_dict, read_dataset, write_dataset
from hmmjax.plots import check_figure_path, plot_learning_curves, plot_results

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def learning_curves(dim: str = "member", n: int = 4, ode: bool = True) -> xr.Dataset:
    rng = np.random.default_rng(0)
    t = np.concatenate([[0.0], np.logspace(-2, 1, 20)])
    eg = 0.5 / (1 + t) * np.exp(0.1 * rng.standard_normal((n, t.size)))
    ds = xr.Dataset(
        {"eg": ((dim, "t"), eg), "eg_mc": ((dim, "t"), 1.1 * eg)},
        coords={"t": t, dim: np.arange(n)},
        attrs={"title": "hmm: N=100, K=2", "config": {"sgd": {"lr": 0.2}}},
    )
    if ode:
        ds["eg_ode"] = ("t", 0.5 / (1 + t))
    return ds


def test_round_trip_with_attributes_netcdf_cannot_hold(tmp_path):
    ds = learning_curves()
    ds.attrs.update(flag=True, nothing=None, nested=[[1, 2]], n=3, names=["a", "b"])
    ds["eg"].attrs["diverged"] = np.bool_(False)
    path = write_dataset(ds, tmp_path / "deep" / "er" / "r.nc")  # creates folders
    back = read_dataset(path)
    xr.testing.assert_identical(back.drop_attrs(), ds.drop_attrs())
    assert back.attrs["config"] == {"sgd": {"lr": 0.2}}
    assert back.attrs["flag"] is True and back.attrs["nothing"] is None
    assert back.attrs["nested"] == [[1, 2]] and back.attrs["names"] == ["a", "b"]
    assert back.attrs["n"] == 3 and back["eg"].attrs["diverged"] is False
    assert results.JSON_ATTRS not in back.attrs
    assert isinstance(ds.attrs["config"], dict)  # the caller's dataset is unchanged
    assert config_dict(back) == {"sgd": {"lr": 0.2}}


def test_config_dict_from_json_string():
    ds = xr.Dataset(attrs={"config": json.dumps({"run": {"seed": 1}})})
    assert config_dict(ds) == {"run": {"seed": 1}}
    assert config_dict(xr.Dataset()) is None


def _fail_mid_write(monkeypatch):
    def to_netcdf(self, path, **kwargs):
        with open(path, "wb") as fh:
            fh.write(b"partial")
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", to_netcdf)


def test_failed_write_leaves_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "r.nc"
    write_dataset(learning_curves(), path)
    before = path.read_bytes()
    _fail_mid_write(monkeypatch)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_dataset(learning_curves(n=2), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["r.nc"]  # no temporary left behind


def test_failed_write_leaves_no_file(tmp_path, monkeypatch):
    _fail_mid_write(monkeypatch)
    with pytest.raises(RuntimeError):
        write_dataset(learning_curves(), tmp_path / "r.nc")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_bytes(tmp_path, monkeypatch):
    path = tmp_path / "sub" / "f.bin"
    atomic_write_bytes(path, b"old")
    atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"new"

    def broken_replace(src, dst):
        raise OSError("no space left")

    monkeypatch.setattr(results.os, "replace", broken_replace)
    with pytest.raises(OSError, match="no space"):
        atomic_write_bytes(path, b"newer")
    assert path.read_bytes() == b"new"
    assert [p.name for p in path.parent.iterdir()] == ["f.bin"]


@pytest.mark.parametrize("dim", ["member", "seed"])
def test_plot_writes_png(tmp_path, dim):
    path = tmp_path / "figs" / "curves.png"
    fig = plot_learning_curves(learning_curves(dim), path)
    assert path.read_bytes()[:8] == PNG_MAGIC
    ax = fig.axes[0]
    assert ax.get_xscale() == ax.get_yscale() == "log"
    assert ax.get_title() == "hmm: N=100, K=2"
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels[-1] == "ODE"
    assert any(label.startswith("analytic") for label in labels)
    assert any(label.startswith("Monte Carlo") for label in labels)


def test_plot_skips_all_nan_and_handles_diverged_members(tmp_path):
    ds = learning_curves(ode=False)
    ds["eg"][:] = np.nan  # no closed form for this activation
    ds["eg_mc"][1, 5:] = np.inf  # one member diverged
    fig = plot_learning_curves(ds)
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert len(labels) == 1 and labels[0].startswith("Monte Carlo")


def test_plot_extra_dims_give_one_curve_each():
    ds = xr.concat([learning_curves(ode=False), learning_curves(ode=False)], dim="lr")
    ds = ds.assign_coords(lr=[0.1, 0.5])
    fig = plot_learning_curves(ds)
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert any("lr=0.1" in label for label in labels)
    assert any("lr=0.5" in label for label in labels)


def test_plot_other_formats_and_bad_suffix(tmp_path):
    plot_learning_curves(learning_curves(), tmp_path / "c.svg")
    assert b"<svg" in (tmp_path / "c.svg").read_bytes()[:1000]
    with pytest.raises(ValueError, match="cannot write format 'xyz'"):
        check_figure_path(tmp_path / "c.xyz")


def test_plot_reads_back_from_file(tmp_path):
    path = write_dataset(learning_curves(), tmp_path / "r.nc")
    plot_learning_curves(read_dataset(path), tmp_path / "r.png")
    assert (tmp_path / "r.png").read_bytes()[:8] == PNG_MAGIC


# ----------------------------------------------------------- files hmmjax did not write


def test_read_dataset_refuses_what_is_not_a_readable_netcdf4_file(tmp_path):
    path = write_dataset(learning_curves(), tmp_path / "r.nc")
    size = path.stat().st_size
    bad = rf"^{tmp_path}/r\.nc is not a netCDF results file written by hmmjax \("
    cases = [
        (b"", r"the file is empty\)$"),
        (b"eg = 1\n", r"it does not start with the netCDF-4/HDF5 signature\)$"),
        (path.read_bytes()[: size // 2], r"a damaged or truncated netCDF-4 file: .*truncated"),
    ]
    for data, reason in cases:
        path.write_bytes(data)
        with pytest.raises(ValueError, match=bad + reason):
            read_dataset(path)
    xr.Dataset({"eg": ("t", [1.0])}).to_netcdf(path, engine="scipy")
    with pytest.raises(ValueError, match=r"\(it is a netCDF-3 file; hmmjax writes netCDF-4\)"):
        read_dataset(path)
    ds = xr.Dataset({"eg": ("t", [1.0])}, attrs={"title": "{no", results.JSON_ATTRS: '["title"]'})
    ds.to_netcdf(path, engine=results.ENGINE)
    with pytest.raises(ValueError, match=r"\(attribute 'title' = '\{no', listed in hmmjax_json"):
        read_dataset(path)
    with pytest.raises(FileNotFoundError, match="results file .*nowhere.nc not found"):
        read_dataset(tmp_path / "nowhere.nc")


def test_plot_results_refuses_datasets_no_figure_fits(tmp_path):
    foreign = xr.Dataset({"a": ("x", [1, 2])}, attrs={"source": "elsewhere"})
    expected = (
        r"^not a results file of hmmjax \(expected one of the variables eg, eg_mc, eg_ode "
        r"over t, or the attribute experiment = 'finite' or 'invariant', or swept; found the "
        r"variables \['a'\] and the attributes \['source'\]\)$"
    )
    with pytest.raises(ValueError, match=expected):
        plot_results(foreign, tmp_path / "f.png")
    assert not (tmp_path / "f.png").exists()
    text = xr.Dataset({"eg": ("t", np.array(["a", "b"]))}, coords={"t": [0.0, 1.0]})
    with pytest.raises(ValueError, match="eg has dtype <U1, expected numbers"):
        plot_results(text)
    with pytest.raises(ValueError, match=r"attribute swept = '\[lr' is not a JSON list"):
        plot_results(learning_curves().assign_attrs(swept="[lr"))
    plot_results(learning_curves(), tmp_path / "ok.png")  # a single run still plots
    assert (tmp_path / "ok.png").read_bytes()[:8] == PNG_MAGIC
