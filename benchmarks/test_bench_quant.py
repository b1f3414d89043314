"""Quantification speed on a scanner-size image: NEMA NU 2 analysis and VOI statistics.

Run: ``python -m pytest benchmarks/test_bench_quant.py --benchmark-only``. The
digital IEC phantom is the one of tests/test_quant_nema.py (2 mm voxels,
344 x 344 x 127, the mMR default image size), blurred to 6 mm FWHM, 10:1.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from petrecon.quant.nema import analyse_nema, find_phantom
from petrecon.quant.roi import sphere_mask
from petrecon.quant.stats import voi_statistics

_spec = importlib.util.spec_from_file_location(
    "quant_nema_tests", Path(__file__).parents[1] / "tests" / "test_quant_nema.py")
_tests = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_tests)


@pytest.fixture(scope="module")
def iec_mmr_size():
    return _tests.iec_phantom(shape=(344, 344, 127), ratio=10.0, fwhm_mm=6.0, supersample=2)


def test_nema_find_and_analyse_mmr_size(benchmark, iec_mmr_size):
    volume, truth = iec_mmr_size
    result = benchmark.pedantic(lambda: analyse_nema(volume, sphere_activity=truth["sphere"], activity_ratio=10.0),
                                rounds=1, iterations=1)
    benchmark.extra_info["voxels"] = int(volume.data.size)
    assert result.background_mean == pytest.approx(truth["background"], rel=1e-6)


def test_find_phantom_mmr_size(benchmark, iec_mmr_size):
    volume, _ = iec_mmr_size
    benchmark.pedantic(find_phantom, args=(volume,), rounds=1, iterations=1)


def test_voi_statistics_with_peak_50mm_lesion(benchmark, iec_mmr_size):
    volume, truth = iec_mmr_size
    voi = sphere_mask(volume.grid, truth["centres"][37.0], 25.0)
    stats = benchmark.pedantic(voi_statistics, args=(volume, voi), rounds=3, iterations=1)
    benchmark.extra_info["voi_voxels"] = int(voi.sum())
    assert np.isfinite(stats.peak)
