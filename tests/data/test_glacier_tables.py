"""WGMS, Hugonnet and binned elevation-change tables: known values on the real files, the
mm/m trap, and refusals."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cryograd as cg

D = cg.data
FILES = Path(__file__).parent / "files"


def test_wgms_491_annual_balance_1953_and_the_profiles():
    ds = D.open_wgms(D.sample_path("hintereisferner_wgms"))
    assert float(ds.annual_balance.sel(glacier=491, year=1953)) == -540.0
    assert ds.annual_balance.attrs["units"] == "kg m-2"
    assert str(ds.rgi_id.sel(glacier=491).values) == "RGI60-11.00897"
    assert np.isnan(float(ds.winter_balance.sel(glacier=491, year=1953)))  # not measured that year
    complete = ds.sel(glacier=491).dropna("year", subset=["winter_balance", "summer_balance"])
    np.testing.assert_allclose(complete.annual_balance, complete.winter_balance + complete.summer_balance, atol=1.0)
    profile = D.open_wgms(D.sample_path("hintereisferner_wgms_profile"))
    assert float(profile.mass_balance_profile.sel(year=1964, elevation=2425)) == -6870.0
    assert float(profile.elevation[0]) == 2425.0 and profile.mass_balance_profile.attrs["units"] == "kg m-2"


def test_wgms_long_layout_splits_glacier_wide_rows_and_bands(tmp_path):
    table = pd.DataFrame(
        {
            "YEAR": [2001, 2001, 2001, 2002],
            "WGMS_ID": [7, 7, 7, 7],
            "NAME": ["X"] * 4,
            "LOWER_BOUND": [9999, 2000, 2100, 9999],
            "UPPER_BOUND": [9999, 2100, 2200, 9999],
            "ANNUAL_BALANCE": [-300.0, -900.0, 200.0, -100.0],
        }
    )
    table.to_csv(tmp_path / "mb.csv", index=False)
    ds = D.open_wgms(tmp_path / "mb.csv")
    assert ds.annual_balance.sel(glacier=7).values.tolist() == [-300.0, -100.0]
    assert ds.mass_balance_profile.sel(glacier=7, year=2001).values.tolist() == [-900.0, 200.0]
    assert ds.band_top.values.tolist() == [2100.0, 2200.0]


def test_hugonnet_regional_table_is_in_mm_and_the_per_glacier_table_in_m(tmp_path):
    regional = D.open_geodetic_mb(FILES / "hugonnet2021_regional_rates.csv")
    row = regional.sel(region=1, period="2000-01-01_2010-01-01")
    assert float(row.specific_mass_balance_rate) == -616.88  # mm w.e. yr-1 = kg m-2 yr-1
    assert float(row.mass_change_rate) == -54.40
    assert regional.specific_mass_balance_rate.attrs["source_units"] == "mm w.e. yr-1"
    assert pd.Timestamp(row.end.values) == pd.Timestamp("2010-01-01")
    columns = "rgiid,period,area,dhdt,err_dhdt,dvoldt,err_dvoldt,dmdt,err_dmdt,dmdtda,err_dmdtda"
    rows = [
        "RGI60-11.00897,2000-01-01_2020-01-01,8036000.0,-0.95,0.12,-7634200.0,964320.0,-0.0065,0.0009,-0.8075,0.11",
        "RGI60-11.00897,2000-01-01_2010-01-01,8036000.0,-0.90,0.20,-7232400.0,1607200.0,-0.0061,0.0015,-0.7650,0.19",
        "G035444E38534N,2000-01-01_2020-01-01,1200000.0,-0.30,0.10,-360000.0,120000.0,-0.0003,0.0001,-0.2550,0.09",
    ]
    path = tmp_path / "dh_11_rgi60_pergla_rates.csv"
    path.write_text(columns + "\n" + "\n".join(rows) + "\n")
    ds = D.open_geodetic_mb(path)
    assert float(ds.specific_mass_balance_rate.sel(glacier="RGI60-11.00897", period="2000-01-01_2020-01-01")) == (
        pytest.approx(-807.5)
    )
    uncertainty = ds.specific_mass_balance_rate_uncertainty.sel(glacier="G035444E38534N").dropna("period")
    assert uncertainty.values.tolist() == [pytest.approx(90.0)]
    assert ds.specific_mass_balance_rate.attrs["source_units"] == "m w.e. yr-1"
    # the trap both ways: per-glacier values in mm, or regional values in m, are refused
    path.write_text(columns + "\n" + rows[0].replace("-0.8075", "-807.5") + "\n")
    with pytest.raises(ValueError, match=r"dmdtda.*mm, not m"):
        D.open_geodetic_mb(path)
    table = pd.read_csv(FILES / "hugonnet2021_regional_rates.csv")
    table.assign(dmdtda=table.dmdtda / 1000).to_csv(tmp_path / "regional_in_m.csv", index=False)
    with pytest.raises(ValueError, match="m, not mm"):
        D.open_geodetic_mb(tmp_path / "regional_in_m.csv")


def test_binned_elevation_change_csv_and_json_agree():
    csv = D.open_geodetic_mb(FILES / "gulkana_dh_profile" / "01.00570_elev_change_1d.csv")
    js = D.open_geodetic_mb(FILES / "gulkana_dh_profile" / "01.00570_elev_change_1d.json")
    assert float(csv.elevation_change.isel(period=0, bin=0)) == -4.50164794921875
    assert float(csv.bin_area[0]) == 79778.125 and float(csv.bin_top[0]) == 1400.0
    np.testing.assert_array_equal(csv.elevation_change.values, js.elevation_change.values)
    np.testing.assert_array_equal(csv.elevation_change_uncertainty.values, js.elevation_change_uncertainty.values)
    np.testing.assert_array_equal(csv.bin_area.values, js.bin_area.values)
    assert csv.attrs["reference_dem"] == "COP30" == js.attrs["reference_dem"]
    assert pd.Timestamp(csv.start.values[0]) == pd.Timestamp("2016-06-01")


def test_refusals(tmp_path):
    other = tmp_path / "other.csv"
    pd.DataFrame({"a": [1], "b": [2]}).to_csv(other, index=False)
    with pytest.raises(ValueError, match=r"other\.csv: not a WGMS table"):
        D.open_wgms(other)
    with pytest.raises(ValueError, match=r"other\.csv: not a geodetic table"):
        D.open_geodetic_mb(other)
    bad = tmp_path / "mb.csv"
    pd.DataFrame({"YEAR": [2001], "WGMS_ID": [1], "ANNUAL_BALANCE": ["x12"]}).to_csv(bad, index=False)
    with pytest.raises(ValueError, match="'ANNUAL_BALANCE' holds values that are not numbers"):
        D.open_wgms(bad)
    pd.DataFrame({"YEAR": [2001], "WGMS_ID": [1], "WINTER_BALANCE": [3.0]}).to_csv(bad, index=False)
    with pytest.raises(ValueError, match="'ANNUAL_BALANCE' not found"):
        D.open_wgms(bad)
    with pytest.raises(ValueError, match="file not found"):
        D.open_wgms(tmp_path / "missing.csv")
    period = tmp_path / "regional.csv"
    pd.DataFrame(
        {
            "reg": [1],
            "period": ["2000_2010"],
            "dmdt": [-1.0],
            "err_dmdt": [1.0],
            "dmdtda": [-500.0],
            "err_dmdtda": [9.0],
        }
    ).to_csv(period, index=False)
    with pytest.raises(ValueError, match="'period' must read"):
        D.open_geodetic_mb(period)


def test_open_flowline_reads_oggm_elevation_bands(tmp_path):
    path = cg.data.sample_path("hintereisferner_flowline")
    glacier = cg.data.open_flowline(path)
    table = pd.read_csv(path)
    np.testing.assert_allclose(float(np.sum(glacier.area)), float(np.sum(table.width_m * table.dx_m)))
    np.testing.assert_allclose(float(np.sum(glacier.area)), 8.036e6)  # RGI 6: 8.036 km2
    table.drop(columns="dx_m").to_csv(tmp_path / "bands.csv", index=False)
    with pytest.raises(ValueError, match=r"bands.csv: missing columns \['dx_m'\]"):
        cg.data.open_flowline(tmp_path / "bands.csv")
