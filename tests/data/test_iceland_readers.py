"""RGI 6 hypsometry tables and IMO monthly station files: the real Icelandic files, and
broken copies of them."""

import calendar
import warnings

import numpy as np
import pandas as pd
import pytest

import cryograd as cg

D = cg.data


def hypsometry_lines():
    return D.sample_path("iceland_hypsometry").read_text().splitlines()


def write(tmp_path, lines, name="06_rgi60_Iceland_hypso.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def test_rgi_hypsometry_of_iceland():
    with pytest.warns(UserWarning, match=r"1 glacier\(s\) without a hypsometry \(rows of -9\): RGI60-06.00560"):
        ds = D.load_sample("iceland_hypsometry")
    assert ds.sizes == {"glacier": 568, "band": 43}
    np.testing.assert_array_equal(ds.elevation, np.arange(25.0, 2126.0, 50.0))
    assert ds.glacier.values[0] == "RGI60-06.00001" and ds.glims_id.values[0] == "G336215E64817N"
    # the table's own numbers: Area [km2] and per-mille shares, read here without the reader
    header, first = hypsometry_lines()[0].split(","), hypsometry_lines()[1].split(",")
    assert float(first[2]) == 4.903 and header[15].strip() == "625" and int(first[15]) == 9
    assert float(ds.area.sel(glacier="RGI60-06.00001").isel(band=12)) == pytest.approx(9e-3 * 4.903e6, rel=1e-12)
    areas = np.array([float(line.split(",")[2]) for line in hypsometry_lines()[1:]])
    np.testing.assert_allclose(ds.total_area, areas * 1e6, rtol=1e-12)
    assert float(ds.total_area.sum()) / 1e6 == pytest.approx(11059.7, abs=0.05)  # RGI region 06: 11,060 km2
    assert ds.total_area.attrs["units"] == "m2" and ds.area.attrs["units"] == "m2"
    # each glacier's bands add up to its area; the one without a hypsometry is NaN, not zeros
    missing = ds.hypsometry_missing.values
    assert missing.sum() == 1 and ds.glacier.values[missing][0] == "RGI60-06.00560"
    assert bool(ds.area.sel(glacier="RGI60-06.00560").isnull().all())
    np.testing.assert_allclose(ds.area.values[~missing].sum(axis=1), ds.total_area.values[~missing], rtol=1e-12)


def test_region_hypsometry_refuses_or_leaves_out_the_glacier_without_one():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ds = D.load_sample("iceland_hypsometry")
    with pytest.raises(ValueError, match=r"1 glacier\(s\) without a hypsometry \(RGI60-06.00560\); pass drop_missing"):
        D.region_hypsometry(ds)
    with pytest.warns(UserWarning, match=r"left out \(0.126 km2 of 11059.700\)"):
        hypsometry, ids = D.region_hypsometry(ds, drop_missing=True)
    assert isinstance(hypsometry, cg.physics.Hypsometry) and hypsometry.area.shape == (len(ids), 42) == (567, 42)
    assert "RGI60-06.00560" not in ids and ids[0] == "RGI60-06.00001"
    assert float(hypsometry.area.sum()) == pytest.approx(float(ds.total_area.sum()) - 0.126e6, rel=1e-12)
    # trimmed to the bands some glacier reaches; every remaining edge band has area
    assert float(hypsometry.area[:, 0].sum()) > 0 and float(hypsometry.area[:, -1].sum()) > 0
    only_missing = ds.isel(glacier=ds.hypsometry_missing.values)
    with pytest.raises(ValueError, match="no glacier with a hypsometry is left"), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        D.region_hypsometry(only_missing, drop_missing=True)


def test_rgi_hypsometry_keeps_rounding_and_refuses_broken_tables(tmp_path):
    lines = hypsometry_lines()
    header, row = lines[0], lines[1].split(",")
    # one per mille more in one band is rounding (the row has 17 bins with area): kept, scaled to its area
    rounded = row.copy()
    rounded[15] = f"{int(rounded[15]) + 1:4d}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ds = D.open_rgi_hypsometry(write(tmp_path, [header, ",".join(rounded)]))
    assert float(ds.area.sum()) == pytest.approx(4.903e6, rel=1e-12)

    def refused(lines, match):
        with pytest.raises(ValueError, match=match):
            D.open_rgi_hypsometry(write(tmp_path, lines))

    short = row.copy()
    short[16] = f"{int(short[16]) - 20:4d}"  # 51 -> 31: 980 per mille
    refused([header, ",".join(short)], r"RGI60-06.00001: its shares sum to 980 per mille, not 1000")
    mixed = row.copy()
    mixed[3] = "  -9"
    refused([header, ",".join(mixed)], r"RGI60-06.00001: negative shares")
    refused([header, lines[1], lines[1]], "RGIId RGI60-06.00001 appears more than once")
    zero = row.copy()
    zero[2] = "0.0"
    refused([header, ",".join(zero)], r"RGI60-06.00001: Area 0.0 km2 is not positive")
    refused([header.replace("RGIId", "id"), lines[1]], "not an RGI 6 hypsometry table")
    refused([header.replace(" 125", " 130"), lines[1]], "not increasing in equal steps")
    refused([header.replace(" 125", "high"), lines[1]], "bin column 'high' is not an elevation")
    refused([header, lines[1].replace("   9", "nine")], "an empty or non-numeric field|not a number")


def imo_lines(name="iceland_station_grimsstadir"):
    return D.sample_path(name).read_bytes().decode("latin-1").splitlines()


def test_imo_stations_read_with_their_gaps():
    with pytest.warns(UserWarning, match=r"temperature 3 of 853 months \(first 1987-04\)"):
        ds = D.load_sample("iceland_station_grimsstadir")
    assert ds.attrs["station_id"] == 495 and ds.attrs["station_name"] == "Grímsstaðir"
    assert ds.attrs["reference_elevation"] == 384.0
    # the file's rows, read here by splitting the lines: 850 months from 1949-01 to 2020-01
    rows = [line.split("\t") for line in imo_lines()[2:]]
    assert len(rows) == 850 and ds.sizes["time"] == 853
    months = {(int(r[1]), int(r[2])) for r in rows}
    absent = [t for t in ds.time.to_index() if (t.year, t.month) not in months]
    assert [f"{t:%Y-%m}" for t in absent] == ["1987-04", "1990-07", "1990-09"]
    assert bool(ds.temperature.sel(time=absent).isnull().all())  # gaps stay gaps
    first = rows[0]
    assert float(ds.temperature[0]) == float(first[3]) == -7.0
    assert float(ds.precipitation[0]) == float(first[11]) == 13.5  # mm of water = kg m-2
    na = sum(r[11].strip() == "NA" for r in rows)
    assert ds.precipitation.attrs["missing_months"] == na + 3
    assert ds.temperature.attrs["units"] == "degC" and ds.precipitation.attrs["units"] == "kg m-2"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Akureyri is complete: no warning
        akureyri = D.load_sample("iceland_station_akureyri")
    assert akureyri.temperature.attrs["missing_months"] == 0 and akureyri.sizes["time"] == 855


def test_imo_station_refuses_broken_files(tmp_path):
    lines = imo_lines()
    path = D.sample_path("iceland_station_grimsstadir")
    with pytest.raises(ValueError, match="elevation: give the station's height"):
        D.open_imo_station(path, elevation=None)

    def refused(lines, match):
        broken = write(tmp_path, lines, name="Stod_495_Grimsstadir.ManMedal.txt", encoding="latin-1")
        with pytest.raises(ValueError, match=match), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            D.open_imo_station(broken, elevation=384.0)

    refused([*lines[:3], lines[2], *lines[3:]], "month 1949-01 appears more than once")
    refused([*lines[:2], lines[2].replace("\t1\t", "\t13\t", 1), *lines[3:]], "a month outside 1-12")
    refused(lines[1:], "no comment line first")
    refused([lines[0], lines[1].replace("mán", "month"), *lines[2:]], "not an IMO monthly station file")
    refused([*lines[:2], lines[2].replace("495", "496", 1), *lines[3:]], r"rows of more than one station")
    refused([*lines[:2], lines[2].replace("-7.0", "cold"), *lines[3:]], "a value that is not a number")


def _imo_table():
    """Grimsstadir's IMO file as a table, read independently with pandas."""
    path = cg.data.sample_path("iceland_station_grimsstadir")
    raw = pd.read_csv(path, sep=r"\s+", skiprows=1, encoding="latin-1", na_values=["NA"])
    raw.columns = [str(c).strip() for c in raw.columns]
    return raw


def test_station_csv_with_a_column_mapping_reads_what_the_imo_reader_reads(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        imo = cg.data.load_sample("iceland_station_grimsstadir")
    raw = _imo_table()
    # year/month columns, temperature in kelvin, precipitation as a daily rate in mm, shuffled rows
    table = raw.rename(columns={"ár": "YEAR", "mán": "MON"}).sample(frac=1.0, random_state=0)
    days = np.array([calendar.monthrange(int(y), int(m))[1] for y, m in zip(table.YEAR, table.MON, strict=True)])
    table = table.assign(T_K=table.t + 273.15, P_rate=table.r / days)[["YEAR", "MON", "T_K", "P_rate"]]
    path = tmp_path / "station.csv"
    table.to_csv(path, index=False, na_rep="NA")
    with pytest.warns(UserWarning, match="temperature 3 of 853 months"):
        csv = cg.data.open_station_csv(
            path,
            columns=dict(year="YEAR", month="MON", temperature="T_K", precipitation="P_rate"),
            units=dict(temperature="K", precipitation="mm day-1"),
            elevation=384.0,
            lat=65.642,
            lon=-16.128,
        )
    np.testing.assert_array_equal(csv.time.values, imo.time.values)
    np.testing.assert_allclose(csv.temperature, imo.temperature, atol=1e-12)
    np.testing.assert_allclose(csv.precipitation, imo.precipitation, rtol=1e-12)
    assert csv.precipitation.attrs["missing_months"] == imo.precipitation.attrs["missing_months"] == 9
    assert csv.attrs["reference_elevation"] == 384.0 and csv.attrs["lat"] == 65.642
    # and a date column, semicolon separated, comments: months of 2001
    dated = tmp_path / "dated.csv"
    dated.write_text("# my station\ndate;tas;pr\n2001-01-15;-5.0;30\n2001-02-15;-4.0;\n2001-03-15;-1.0;12.5\n")
    with pytest.warns(UserWarning, match="precipitation 1 of 3 months"):
        ds = cg.data.open_station_csv(
            dated,
            columns=dict(time="date", temperature="tas", precipitation="pr"),
            units=dict(precipitation="mm"),
            elevation=100.0,
            sep=";",
            comment="#",
        )
    assert [str(t)[:10] for t in ds.time.values] == ["2001-01-01", "2001-02-01", "2001-03-01"]
    assert np.isnan(ds.precipitation.values[1]) and ds.precipitation.attrs["missing_first"] == "2001-02"


@pytest.mark.parametrize(
    ("text", "columns", "units", "message"),
    [
        ("y,m,t\n2001,1,1\n", dict(year="y", month="m", temperature="T"), {}, "no column for temperature -> 'T'"),
        ("y,m,t\n2001,13,1\n", dict(year="y", month="m", temperature="t"), {}, "outside 1-12"),
        ("y,m,t\n2001,1,1\n2001,1,2\n", dict(year="y", month="m", temperature="t"), {}, "appears more than once"),
        ("y,m,t\n2001,1,warm\n", dict(year="y", month="m", temperature="t"), {}, "'warm', not a number"),
        ("d,t\nJan,1\n", dict(time="d", temperature="t"), {}, "not a date"),
        ("y,m,p\n2001,1,1\n", dict(year="y", month="m", precipitation="p"), {}, "precipitation's units"),
        ("y,m,p\n2001,1,1\n", dict(year="y", month="m", precipitation="p"), dict(precipitation="K"), "not an amount"),
        ("y,m,t\n2001,1,1\n", dict(year="y", temperature="t"), {}, "either time, or year and month"),
        ("y,m,t\n2001,1,1\n", dict(year="y", month="m", wind="t"), {}, "unknown key"),
    ],
)
def test_station_csv_refusals(tmp_path, text, columns, units, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        cg.data.open_station_csv(path, columns=columns, units=units, elevation=10.0)
