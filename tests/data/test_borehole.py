"""A borehole's daily record and its site data (`cg.data.open_borehole`, `open_active_layer`,
`open_site_forcing`), checked against the raw files read with plain pandas."""

import numpy as np
import pandas as pd
import pytest

import cryograd as cg

D = cg.data


def test_hourly_gtnp_record_averaged_to_days_as_plain_pandas_does():
    path = D.sample_path("arctic_village")
    raw = pd.read_csv(path, index_col=0, parse_dates=True).replace(-999.0, np.nan)
    daily = D.open_borehole(path)
    assert daily.dims == ("time", "depth") and daily.attrs["units"] == "degC"
    assert daily.depth.values.tolist() == [0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert daily.attrs["averaged_from"] == str(pd.Timedelta(hours=1))
    day = raw.loc["2007-06-15", "0.5"]
    assert day.notna().sum() >= 20
    assert float(daily.sel(time="2007-06-15", depth=0.5)) == pytest.approx(day.mean(), abs=1e-12)
    # a day with fewer than min_hours values is a gap, not a mean of a few hours
    first = raw.loc["2007-03-28", "0"]
    assert first.notna().sum() < 20 and np.isnan(float(daily.sel(time="2007-03-28", depth=0.0)))
    loose = D.open_borehole(path, min_hours=1)
    assert float(loose.sel(time="2007-03-28", depth=0.0)) == pytest.approx(first.mean(), abs=1e-12)


def test_daily_record_kept_and_empty_sensor_left_out():
    daily = D.open_borehole(D.sample_path("gtnp_example"))
    assert "averaged_from" not in daily.attrs
    assert daily.attrs["left_out"] == [] and 1.6 in daily.depth.values  # one value in four years is a value
    raw = pd.read_csv(D.sample_path("gtnp_example"), index_col=0, parse_dates=True).replace(-999.0, np.nan)
    np.testing.assert_array_equal(daily.sel(depth=7.0).values, raw["7"].values)


def test_active_layer_in_cm_and_refusals(tmp_path):
    path = tmp_path / "alt.csv"
    pd.DataFrame({"Year": [2015, 2016], "Thaw_Depth": [95.0, None]}).to_csv(path, index=False)
    alt = D.open_active_layer(path, units="cm")
    np.testing.assert_allclose(alt.values, [0.95, np.nan], rtol=1e-12)
    assert alt.year.values.tolist() == [2015, 2016] and alt.attrs["units"] == "m"
    pd.DataFrame({"year": [2015], "depth": [1.0]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match=r"bad\.csv needs columns year and active_layer_thickness"):
        D.open_active_layer(tmp_path / "bad.csv")
    with pytest.raises(ValueError, match="cannot be converted to m"):
        D.open_active_layer(path, units="K")
