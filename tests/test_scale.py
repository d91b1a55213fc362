"""Sharding a batch over devices changes where it runs, not what it computes."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import cryograd as cg

# Runs in a fresh interpreter: the device count is fixed when JAX starts.
SCRIPT = r"""
import json
import jax, jax.numpy as jnp, numpy as np
import cryograd as cg

P = cg.physics
assert jax.device_count() == 2, jax.devices()
column = P.PermafrostColumn(
    grid=P.Grid.geometric(depth=20.0, n=30, dz_top=0.05),
    layers=[P.SoilLayer(top=0.0, water_content=0.35, k_thawed=1.1, k_frozen=1.9, c_thawed=2.6e6, c_frozen=1.9e6)],
    freeze_curve=P.DallAmico(alpha=1.0, n=1.8, residual_water_content=0.02),
)
rng = np.random.default_rng(0)
day = np.arange(365)
forcing = dict(surface_temperature=rng.uniform(-9, -1, (4, 1)) + 15 * np.sin(2 * np.pi * day / 365)
               + rng.normal(0, 2, (4, day.size)))
initial = jnp.full(30, -2.0)

@jax.jit
def run(forcing):
    return jax.vmap(lambda f: column.run(f, initial, 86400.0)["temperature"])(forcing)

@jax.jit
def balance(elevation, area, temperature, precipitation):
    smb = P.MonthlyTemperatureIndex(melt_factor=6.0, year_start_month=10)
    climate = lambda t, p: dict(temperature=t, precipitation=p, month=jnp.tile(jnp.arange(1, 13), 5),
                                reference_elevation=jnp.asarray(3000.0))
    one = lambda e, a, t, p: smb.run(P.Hypsometry(elevation=e, area=a), climate(t, p))["specific_mass_balance"]
    return jax.vmap(one)(elevation, area, temperature, precipitation)

plain = run(forcing)
sharded_forcing = cg.shard(forcing)
sharded = run(sharded_forcing)
glaciers = dict(
    elevation=np.sort(rng.uniform(2500, 3500, (6, 20)))[:, ::-1].copy(),
    area=rng.uniform(1e4, 1e5, (6, 20)),
    temperature=rng.normal(0, 6, (6, 60)),
    precipitation=rng.uniform(50, 200, (6, 60)),
)
smb_plain = balance(**glaciers)
smb_sharded = balance(**cg.shard(glaciers))
try:
    cg.shard(dict(x=np.zeros(3)))
    refused = ""
except ValueError as error:
    refused = str(error)
print(json.dumps(dict(
    column_difference=float(jnp.max(jnp.abs(plain - sharded))),
    column_devices=len(sharded.sharding.device_set),
    input_devices=len(sharded_forcing["surface_temperature"].sharding.device_set),
    smb_difference=float(jnp.max(jnp.abs(smb_plain - smb_sharded))),
    smb_devices=len(smb_sharded.sharding.device_set),
    finite=bool(jnp.all(jnp.isfinite(plain))),
    refused=refused,
)))
"""


def test_sharded_and_unsharded_agree_on_two_cpu_devices():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["finite"]
    assert result["input_devices"] == result["column_devices"] == result["smb_devices"] == 2
    assert result["column_difference"] <= 1e-12
    assert result["smb_difference"] <= 1e-12
    assert "does not divide over 2 devices; pad it to 4 members" in result["refused"]


def test_shard_on_one_device_is_a_no_op_for_the_numbers():
    tree = dict(x=np.arange(6.0).reshape(3, 2), label="kept")
    out = cg.shard(tree)
    np.testing.assert_array_equal(out["x"], tree["x"])
    assert out["label"] == "kept"
    with pytest.raises(ValueError, match="scalar leaf"):
        cg.shard(dict(x=np.float64(1.0)))
