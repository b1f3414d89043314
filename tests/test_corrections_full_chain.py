"""The whole chain on the NEMA IEC phantom with scatter and randoms: true corrections against estimated ones.

The phantom (18F, NU 2 ratio 4:1) is simulated noise-free on an axially short
mMR (16 rings: the sphere plane and the NU 2 slices at +-2 cm fit; views
mashed by 6) with the physical single-scatter truth and randoms from singles,
then reconstructed twice: with the simulator's randoms and scatter, and with
randoms from the delays and scatter by single-scatter simulation + tail fit
(normalisation known). Noise-free data isolate the biases from the noise.

The lung residual of a cold insert converges slowly under OSEM (it is reached
by multiplicative updates from the background): the protocol here makes the
updates needed (42 subsets of one view, 6 iterations: 252 updates) instead
of the clinical 4 x 8 = 32; the residual against the number of updates is in
README.md (Corrections).

The scatter estimate alternates with the reconstruction: the first comes from
an image without scatter correction (too much activity: the estimate is high,
background -6.2 % after one round), the next from an over-corrected one; the
plain alternation overshoots (background +5.3 % after two rounds, scatter
-6.9 % in the body), the damped update (each estimate averaged with the
previous one, petrecon.recon.study) does not: -0.8 % after the protocol's
two rounds, the figures below. Single scatter
runs over the "CT" mu-map beyond the field of view with the image's end planes
replicated there; limited to the 65 mm reconstruction grid it was 14.5 % low
in the body (background +8.8 %).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from petrecon.geometry import SinogramLayout, get_scanner
from petrecon.quant.nema import analyse_nema
from petrecon.recon.protocol import CorrectionSettings, ReconstructionProtocol
from petrecon.recon.study import reconstruct_study
from petrecon.simulate.acquisition import simulate_study
from petrecon.volume import ImageGrid

SCANNER = dataclasses.replace(get_scanner("mmr"), n_rings=16, virtual_ring_positions=())
LAYOUT = SinogramLayout(SCANNER, 11, 15, 200, 6)
GRID = ImageGrid.centred((80, 80, 16), (2 * SCANNER.nominal_radial_bin_size_mm,) * 2 + (SCANNER.ring_spacing_mm,))
# The ground-truth volumes (activity, mu: the "CT") cover the whole 180 mm phantom, beyond the 65 mm field of view.
VOLUME_GRID = ImageGrid.centred((80, 80, 56), GRID.voxel_size_mm)
N_ITERATIONS, N_SUBSETS = 6, 42


@pytest.fixture(scope="module")
def study():
    return simulate_study("nema-iec", scanner=LAYOUT, noise=False, grid=VOLUME_GRID, progress=False).container


def _protocol(**corrections) -> ReconstructionProtocol:
    protocol = ReconstructionProtocol(image_shape=GRID.shape, voxel_size_mm=GRID.voxel_size_mm,
                                      corrections=CorrectionSettings(**corrections))
    return dataclasses.replace(protocol, osem=dataclasses.replace(protocol.osem, n_iterations=N_ITERATIONS,
                                                                  n_subsets=N_SUBSETS))


def _background_truth(study) -> float:
    truth = study.volumes["activity_bq_per_ml"].data
    return float(np.median(truth[truth > 0]))  # the background fills most of the phantom


def test_iec_with_true_corrections_background_within_3_percent_and_lung_residual_below_5(study):
    result = reconstruct_study(study, _protocol(), progress=False)
    nema = analyse_nema(result.volume, activity_ratio=4.0)
    assert {"NORM", "ATTN", "RAN", "SCAT", "DECY"} <= set(result.corrected)
    # The requirement's 3 % (noise-free: the chain's calibration and the ROIs' partial volume; measured +1.3 %).
    assert nema.background_mean == pytest.approx(_background_truth(study), rel=0.03)
    # NU 2 lung residual (30 mm ROI in the 50 mm insert, 5 slices): the requirement's 5 % (measured 3.0 %).
    assert nema.lung_residual_percent < 5.0


@pytest.fixture(scope="module")
def estimated(study):
    """Randoms from the delays (fan-sum fit) and scatter from the protocol's two (damped) rounds of SSS + tail fit."""
    without = dataclasses.replace(study, sinograms={k: v for k, v in study.sinograms.items()
                                                    if k not in ("randoms", "scatter")})
    result = reconstruct_study(without, _protocol(), progress=False)
    assert _protocol().corrections.scatter_rounds == 2
    assert "SCAT" in result.corrected and "RAN" in result.corrected
    return analyse_nema(result.volume, activity_ratio=4.0)


def test_iec_with_estimated_randoms_and_scatter_lung_residual_below_5_percent(estimated):
    # The requirement's 5 % (measured 2.3 %).
    assert estimated.lung_residual_percent < 5.0


def test_iec_with_estimated_randoms_and_scatter_background_within_3_percent(study, estimated):
    # The requirement's 3 % (measured -0.8 %; the scatter estimate is +4.9 % in the body after two damped rounds,
    # +2.0 % after three; the plain alternation gave +5.3 % here after two rounds).
    assert estimated.background_mean == pytest.approx(_background_truth(study), rel=0.03)
