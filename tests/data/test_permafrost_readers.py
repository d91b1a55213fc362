"""Permafrost in-situ readers: known values on the real files, clear errors on broken ones."""

import pathlib
import shutil

import numpy as np
import pandas as pd
import pytest

import cryograd as cg

FILES = pathlib.Path(__file__).parent / "files"
GIPL = cg.data.sample_path("gipl_station")
KU = pathlib.Path(__file__).parents[1] / "physics" / "data"


def test_gipl_station_known_values():
    ds = cg.data.open_gipl_station(GIPL, start="2008-07-01")
    assert ds.sizes == {"time": 757, "depth": 12, "layer": 6, "node": 176, "initial_depth": 13}
    assert str(ds.time.values[0])[:10] == "2008-07-01" and str(ds.time.values[-1])[:10] == "2010-07-27"
    # bound.txt day 1 and 757; snow.txt day 66; rsnow.txt is CRLF.
    np.testing.assert_allclose(ds.air_temperature.values[[0, -1]], [14.907, 1.597])
    assert ds.snow_depth.values[65] == 0.017
    assert np.all(ds.snow_conductivity.values == 0.3)
    # Output nodes 39, 48, ... of grid.txt; mesres.txt row 1 and the last value.
    np.testing.assert_allclose(ds.depth, [0.0, 0.08, 0.14, 0.22, 0.28, 0.36, 0.44, 0.52, 0.6, 0.74, 0.9, 1.15])
    np.testing.assert_allclose(ds.ground_temperature.values[0, :3], [13.806, 10.623, 9.0])
    assert np.isfinite(ds.ground_temperature.values).all()
    # mineral.txt: first and last layer.
    first = [float(ds[name][0]) for name, *_ in cg.data._gipl.LAYER_FIELDS]
    assert first == [0.39, 0.07, -0.19, 2.0e6, 1.6e6, 1.05, 2.05, 0.21]
    np.testing.assert_allclose(ds.layer_top, [0.0, 0.21, 0.36, 0.96, 8.0, 25.0])
    assert ds.grid_node_depth.values[0] == -1.5 and ds.grid_node_depth.values[-1] == 90.0
    np.testing.assert_allclose(ds.initial_temperature.values[:2], [14.9, 13.8])
    for name in ("air_temperature", "snow_depth", "snow_conductivity", "ground_temperature", "k_frozen"):
        assert "units" in ds[name].attrs, name


def test_gipl_station_without_start_keeps_day_numbers():
    ds = cg.data.open_gipl_station(GIPL)
    assert ds.time.values[0] == 1 and ds.time.values[-1] == 757


def broken_copy(tmp_path, file, text):
    folder = tmp_path / "station"
    shutil.copytree(GIPL, folder)
    (folder / file).chmod(0o644)
    (folder / file).write_text(text((folder / file).read_text()))
    return folder


@pytest.mark.parametrize(
    ("file", "edit", "match"),
    [
        ("in/bound.txt", lambda t: t.replace("757\n", "758\n", 1), "header says 758"),
        ("in/bound.txt", lambda t: t.replace("14.907", "warm", 1), "line 2"),
        ("in/snow.txt", lambda t: "\n".join(t.splitlines()[:-1]).replace("757", "756", 1), "day numbers differ"),
        ("in/snow.txt", lambda t: t.replace("66\t0.017", "66\t-0.017"), "negative snow depth"),
        ("in/mineral.txt", lambda t: t.replace("1  6", "1  7"), "expected 7 layer rows"),
        ("mesres.txt", lambda t: t.replace("13.806\t", "", 1), "12 temperatures"),
        ("in/grid.txt", lambda t: t.replace("-1.45", "-1.55", 1), "node depths must increase"),
    ],
)
def test_gipl_station_refuses_broken_files(tmp_path, file, edit, match):
    folder = broken_copy(tmp_path, file, edit)
    with pytest.raises(ValueError, match=match) as error:
        cg.data.open_gipl_station(folder)
    assert file.split("/")[-1] in str(error.value)


def test_gipl_station_missing_file(tmp_path):
    folder = tmp_path / "station"
    shutil.copytree(GIPL, folder)
    (folder / "in" / "rsnow.txt").unlink()
    with pytest.raises(ValueError, match=r"rsnow\.txt: file not found"):
        cg.data.open_gipl_station(folder)
    with pytest.raises(ValueError, match="not a folder"):
        cg.data.open_gipl_station(tmp_path / "nowhere")


def test_kudryavtsev_series_known_values():
    ds = cg.data.open_kudryavtsev_series(KU / "Ku_Barrow_Barrow_", first_year=1961)
    assert list(ds.year.values[[0, -1]]) == [1961, 2015]
    np.testing.assert_allclose(ds.air_temperature.values[[0, -1]], [-13.198, -9.935])
    np.testing.assert_allclose(ds.temperature_amplitude.values[0], 18.07)
    np.testing.assert_allclose(ds.snow_depth.values[0], 0.29612)


def test_kudryavtsev_series_refuses_ragged_files(tmp_path):
    for suffix in ("TA", "AA", "SD"):
        shutil.copy(KU / f"Ku_Barrow_Barrow_{suffix}.txt", tmp_path / f"X_{suffix}.txt")
    (tmp_path / "X_SD.txt").write_text("0.3\n0.2\n")
    with pytest.raises(ValueError, match=r"X_SD\.txt: 2 years"):
        cg.data.open_kudryavtsev_series(tmp_path / "X_", 1961)
    (tmp_path / "X_SD.txt").write_text("0.3\ndeep\n")
    with pytest.raises(ValueError, match=r"X_SD\.txt"):
        cg.data.open_kudryavtsev_series(tmp_path / "X_", 1961)


def test_gtnp_wide_known_values():
    ds = cg.data.open_gtnp(FILES / "example_gtnp.csv")
    assert ds.sizes == {"time": 1297, "depth": 16}
    np.testing.assert_allclose(ds.depth.values[[0, 1, -1]], [0.0, 0.1, 7.0])
    np.testing.assert_allclose(ds.ground_temperature.values[0, :3], [-0.262, -0.13008, -0.09433])
    # The 2,024 cells written as -999 are NaN, and nothing else is.
    assert int(ds.ground_temperature.isnull().sum()) == 2024
    assert np.isnan(ds.ground_temperature.values[0, 8])
    assert ds.ground_temperature.attrs["units"] == "degC"


def test_gtnp_long_with_metadata_known_values():
    ds = cg.data.open_gtnp(FILES / "gtnp2026.csv")
    assert ds.sizes == {"time": 560, "depth": 1}
    np.testing.assert_allclose(ds.ground_temperature.values[:4, 0], [2.94, 0.88, 3.64, 4.8])
    assert int(ds.ground_temperature.isnull().sum()) == 123
    assert set(np.unique(ds.flag.values)) == {"", "no data entry"}
    assert ds.attrs["borehole_name"] == "Molodeshnaya (Thala Hills)"
    assert ds.attrs["latitude"] == -67.665556 and ds.attrs["elevation"] == 45.0


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [
        ("dup.csv", "Date/Depth,0,0.5\n2014-01-01,1,2\n2014-01-01,1,3\n", "duplicated times"),
        ("unsorted.csv", "Date/Depth,0,0.5\n2014-01-02,1,2\n2014-01-01,1,2\n", "not sorted"),
        ("text.csv", "Date/Depth,0,0.5\n2014-01-01,1,warm\n", "numeric"),
        ("depths.csv", "Date/Depth,0,deep\n2014-01-01,1,2\n", "depth headers"),
        ("other.csv", "when,what\n2014-01-01,1\n", "neither GTN-P layout"),
        ("long.csv", "date,depth,temperature\n2014-01-01,0.5,1\n2014-01-01,0.5,2\n", "duplicated rows"),
    ],
)
def test_gtnp_refuses_broken_files(tmp_path, name, text, match):
    (tmp_path / name).write_text(text)
    with pytest.raises(ValueError, match=match) as error:
        cg.data.open_gtnp(tmp_path / name)
    assert name in str(error.value)


def test_gtnp_refuses_metadata_in_other_units(tmp_path):
    shutil.copy(FILES / "gtnp2026.csv", tmp_path / "site.csv")
    text = (FILES / "gtnp2026_metadata.json").read_text().replace('"abbreviation":"degC"', '"abbreviation":"K"')
    (tmp_path / "site_metadata.json").write_text(text)
    with pytest.raises(ValueError, match="unit is 'K'"):
        cg.data.open_gtnp(tmp_path / "site.csv")


def multi_borehole_csv(tmp_path, keep_borehole_id=True):
    """The real dataset 2128 (borehole 662) plus datasets 2005 and 2018 (boreholes 501, 502)
    of ten days each, at two depths, with known temperatures; the real JSON beside it
    describes dataset 2128 only, as a download of several boreholes comes."""
    real = pd.read_csv(FILES / "gtnp2026.csv")
    rows = []
    for dataset, borehole, offset in ((2005, 501, -5.0), (2018, 502, -8.0)):
        for day in range(10):
            for depth in (0.5, 2.0):
                date = f"2008-01-{day + 1:02d}"
                rows.append(dict(id=0, date=date, depth=depth, temperature=offset - depth + 0.1 * day, flag="",
                                 dataset_id=dataset, borehole_id=borehole, site_id=9))  # fmt: skip
    table = pd.concat([real, pd.DataFrame(rows)], ignore_index=True)
    if not keep_borehole_id:
        table = table.drop(columns="borehole_id")
    table.to_csv(tmp_path / "download.csv", index=False)
    shutil.copy(FILES / "gtnp2026_metadata.json", tmp_path / "download_metadata.json")
    return tmp_path / "download.csv"


def test_gtnp_multi_borehole_download_reads_every_borehole(tmp_path):
    path = multi_borehole_csv(tmp_path)
    with pytest.warns(UserWarning, match=r"describes datasets \[2128\], not \[2005, 2018\] of the CSV"):
        ds = cg.data.open_gtnp(path)
    assert ds.ground_temperature.dims == ("time", "depth", "borehole")
    assert ds.borehole.values.tolist() == [501, 502, 662]
    assert ds.dataset_id.values.tolist() == ["2005", "2018", "2128"]
    series = ds.ground_temperature.sel(borehole=502, depth=2.0).dropna("time")
    np.testing.assert_allclose(series.values, -8.0 - 2.0 + 0.1 * np.arange(10), rtol=0, atol=1e-12)
    alone = cg.data.open_gtnp(FILES / "gtnp2026.csv")  # the described borehole equals the file read alone
    molodeshnaya = ds.ground_temperature.sel(borehole=662, depth=0.0).sel(time=alone.time)
    np.testing.assert_array_equal(molodeshnaya.values, alone.ground_temperature.sel(depth=0.0).values)
    assert ds.borehole_name.values.tolist() == ["", "", "Molodeshnaya (Thala Hills)"]
    assert np.isnan(ds.latitude.values[:2]).all() and ds.latitude.values[2] == -67.665556
    assert "2005, 2018" in ds.attrs["metadata_note"]


def test_gtnp_boreholes_told_apart_by_dataset_without_borehole_ids(tmp_path):
    path = multi_borehole_csv(tmp_path, keep_borehole_id=False)
    with pytest.warns(UserWarning, match="not \\[2005, 2018\\]"):
        ds = cg.data.open_gtnp(path)
    assert ds.borehole.values.tolist() == [2005, 2018, 2128]
    assert ds.borehole_name.values.tolist() == ["", "", "Molodeshnaya (Thala Hills)"]


def test_gtnp_metadata_that_describes_none_of_the_datasets_is_refused(tmp_path):
    path = multi_borehole_csv(tmp_path)
    table = pd.read_csv(path)
    table[table.dataset_id != 2128].to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"describes dataset \[2128\], the CSV holds \[2005, 2018\]"):
        cg.data.open_gtnp(path)


def test_cryogrid_forcing_known_values():
    ds = cg.data.open_cryogrid_forcing(FILES / "samoylov_1979-1980.json")
    assert ds.sizes == {"time": 731}
    assert str(ds.time.values[0])[:10] == "1979-01-01" and str(ds.time.values[-1])[:10] == "1980-12-31"
    np.testing.assert_allclose(ds.air_temperature.values[:2], [-28.17392837185954, -36.47441095993553])
    np.testing.assert_allclose(ds.snow_water_equivalent.values[0], 0.06625137441666666)
    np.testing.assert_allclose(ds.snow_density.values[0], 149.82828583333335)
    assert ds.snow_density.attrs["units"] == "kg m-3" and ds.air_temperature.attrs["units"] == "degC"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('{"data": {"Tair": [1, 2]}, "timestamps": ["2000-01-01"]}', "2 values for 1 timestamps"),
        ('{"data": {"Tair": [1, 2]}, "timestamps": ["2000-01-02", "2000-01-01"]}', "sorted"),
        ('{"data": {"Tair": [1, "x"]}, "timestamps": ["2000-01-01", "2000-01-02"]}', "non-numeric"),
        ('{"Tair": [1]}', "'data'"),
        ("{not json", "not valid JSON"),
    ],
)
def test_cryogrid_forcing_refuses_broken_files(tmp_path, text, match):
    (tmp_path / "forcing.json").write_text(text)
    with pytest.raises(ValueError, match=match):
        cg.data.open_cryogrid_forcing(tmp_path / "forcing.json")


def test_gtnp_hourly_borehole_with_repeated_rows():
    ds = cg.data.load_sample("arctic_village")
    # 16,243 data rows, 8 of them identical repeats of an earlier row (pandas duplicated()).
    assert ds.attrs["repeated_rows_dropped"] == 8 and ds.sizes == {"time": 16235, "depth": 7}
    first_row = [-28.148, -14.08, -11.075, -8.696, -6.929, -5.263, -4.166]
    np.testing.assert_allclose(ds.ground_temperature.values[0], first_row)
    assert str(ds.time.values[0]) == "2007-03-28T08:00:00.000000"
