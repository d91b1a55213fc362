"""A padded region of glaciers built from one climate, and the check that simulating it
in one batch equals simulating each glacier alone (shared by the SMB tests)."""

import numpy as np
import xarray as xr

import cryograd as cg


def region_climate(climate: xr.Dataset, reference_elevation, temperature_offset=None) -> xr.Dataset:
    """`climate`'s temperature and precipitation repeated over a `glacier` dimension (the
    temperature shifted by `temperature_offset` [K] per glacier), other variables shared,
    and a (glacier) `reference_elevation` [m]."""
    n = len(reference_elevation)
    offset = xr.DataArray(np.zeros(n) if temperature_offset is None else temperature_offset, dims="glacier")
    region = climate.drop_attrs(deep=False).assign(
        temperature=(climate.temperature + offset).transpose("time", "glacier"),
        precipitation=climate.precipitation.expand_dims(glacier=n).transpose("time", "glacier"),
        reference_elevation=("glacier", np.asarray(reference_elevation, float)),
    )
    return region


def assert_region_equals_glaciers_alone(model, elevation, area, region, names, rtol):
    """`model.simulate` of the padded (glacier, band) region against each glacier alone,
    its padding dropped and its climate given the glacier's reference elevation."""
    together = model.simulate(cg.physics.Hypsometry(elevation, area), region)
    for g in range(elevation.shape[0]):
        keep = area[g] > 0
        single = region.isel(glacier=g).drop_vars("reference_elevation")
        alone = model.simulate(
            cg.physics.Hypsometry(elevation[g, keep], area[g, keep]),
            single.assign_attrs(reference_elevation=float(region.reference_elevation[g])),
        )
        for name in names:
            np.testing.assert_allclose(together[name].isel(glacier=g), alone[name], rtol=rtol, err_msg=name)
