"""experiments/iceland_grace.py: every glacier of Iceland fitted to GlaMBIE's GRACE series
on the real samples (issue 26's first end-to-end run)."""

import numpy as np

from tests._experiments import load_experiment


def test_fit_to_grace_beats_the_start_values_on_held_out_years():
    result = load_experiment("iceland_grace").run(calibration=(2003, 2012), validation=(2013, 2019))
    assert result["glaciers"] == 567 and 11000 < result["area_km2"] < 11100  # one glacier has no hypsometry
    start, fitted = result["start"]["metrics"], result["fit_to_gravimetry"]["metrics"]
    assert result["fit_to_gravimetry"]["converged"]
    # the held-out gravimetry years without the GRACE/GRACE-FO gap: 2013-2016 and 2019
    assert fitted["validation"]["gravimetry"]["n"] == 5
    assert fitted["validation"]["demdiff_and_glaciological"]["n"] == 7
    for part in ("calibration", "validation"):
        for source in ("gravimetry", "demdiff_and_glaciological"):
            assert fitted[part][source]["rmse"] < start[part][source]["rmse"], (part, source)
            assert np.isfinite(fitted[part][source]["r"])
    # the regional mean change over the calibration years is matched within the observed spread
    calibration = fitted["calibration"]["gravimetry"]
    assert abs(calibration["bias"]) < 5.0  # Gt per year; the series' mean is -11 Gt per year
    # independent: Hugonnet et al. (2021) region-06 rate 2010-2019 (-737 +- 61 kg m-2 yr-1)
    hugonnet = fitted["hugonnet2021"]["2010-01-01_2020-01-01"]
    assert abs(hugonnet["modelled"] - hugonnet["observed"]) < 3 * hugonnet["uncertainty"]
    start_rate = start["hugonnet2021"]["2010-01-01_2020-01-01"]
    assert abs(start_rate["modelled"] - start_rate["observed"]) > 3 * start_rate["uncertainty"]
