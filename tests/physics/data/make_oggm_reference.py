"""Write the OGGM 1.6.3 reference for the Hintereisferner parity test (run by hand).

    python -m venv /tmp/oggmvenv && /tmp/oggmvenv/bin/pip install oggm==1.6.3
    /tmp/oggmvenv/bin/python tests/physics/data/make_oggm_reference.py

OGGM's own `MonthlyTIModel` runs on the project's copies of its Hintereisferner inputs
(the package's hintereisferner samples: climate_historical_hef_histalp.nc, mb_calib.json,
elevation_band_flowline.csv) through a minimal stand-in for a GlacierDirectory (the model
only reads the climate file, the calibration JSON and the hemisphere). The calendar-year
specific mass balance 1802-2002 [kg m-2] from `get_specific_mb` and the annual band
balances of 1990 [kg m-2] are written to oggm_hintereisferner.npz next to this script.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
from oggm import cfg
from oggm.core.massbalance import MonthlyTIModel

import cryograd as cg

HERE = Path(__file__).parent
FILES = cg.data.sample_path("hintereisferner_climate").parent


class StandIn:
    """What MonthlyTIModel reads from a GlacierDirectory."""

    hemisphere = "nh"
    rgi_id = "RGI60-11.00897"

    def get_filepath(self, name, filesuffix="", **kwargs):
        assert name == "climate_historical" and filesuffix == ""
        return str(FILES / "climate_historical_hef_histalp.nc")

    def read_json(self, name, filesuffix="", **kwargs):
        assert name == "mb_calib"
        return json.loads((FILES / "mb_calib.json").read_text())

    def get_climate_info(self, **kwargs):
        return dict(baseline_climate_source=self.read_json("mb_calib")["baseline_climate_source"])


def main():
    cfg.initialize_minimal()  # no sample-data download
    model = MonthlyTIModel(StandIn())
    flowline = pd.read_csv(FILES / "elevation_band_flowline.csv")
    heights, widths = flowline.surface_h_m.values, flowline.width_m.values
    years = np.arange(1802, 2003)
    specific = model.get_specific_mb(heights=heights, widths=widths, year=years)
    seconds_per_year, rho = cfg.SEC_IN_YEAR, cfg.PARAMS["ice_density"]
    bands_1990 = model.get_annual_mb(heights, year=1990) * seconds_per_year * rho
    np.savez(
        HERE / "oggm_hintereisferner.npz",
        years=years,
        specific_mass_balance=np.asarray(specific, dtype=float),
        band_mass_balance_1990=np.asarray(bands_1990, dtype=float),
        melt_f=model.melt_f,
        prcp_fac=model.prcp_fac,
    )
    print(f"mean 1953-2002 {np.mean(specific[(years >= 1953) & (years <= 2002)]):.3f} kg m-2")


if __name__ == "__main__":
    main()
