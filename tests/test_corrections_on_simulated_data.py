"""The data corrections against the simulator's truth (petrecon.simulate.acquisition).

Each estimate is computed from noisy simulated data and compared with the
noise-free sinogram the simulator used: randoms from the delays, the
component normalisation from a 1e8-count cylinder calibration scan, and the
tail fit of the scatter scale.
"""

from __future__ import annotations

import numpy as np
import pytest

from petrecon.geometry import SinogramLayout, get_scanner
from petrecon.recon.corrections.normalisation import estimate_normalisation
from petrecon.recon.corrections.randoms import randoms_from_delays
from petrecon.recon.corrections.scatter import fit_scatter_tails
from petrecon.recon.protocol import ReconstructionProtocol
from petrecon.recon.study import reconstruct_study
from petrecon.simulate.acquisition import simulate_study
from petrecon.volume import ImageGrid

# The test scanner with 100 radial bins: its field of view (radius 118 mm) holds the 20 cm cylinder.
LAYOUT = SinogramLayout(get_scanner("test"), 3, 7, 100, 1)
# Where the ground-truth volumes are not used, the coarsest grid keeps the simulation fast.
COARSE_GRID = ImageGrid.centred((8, 8, 4), (30.0, 30.0, 8.0))
GRID = ImageGrid.centred((72, 72, 15), (3.0, 3.0, 2.0))
# The scanner (its crystal efficiencies) is the seed's: the calibration and the 68Ga study share it.
SCANNER_SEED = 7


@pytest.fixture(scope="module")
def study():
    """Noisy 18F uniform cylinder, 120 s: 1.3e7 trues, 5.6e6 scatter, 1.4e6 randoms (delays)."""
    return simulate_study("uniform-cylinder", scanner=LAYOUT, duration_s=120.0, seed=3, grid=COARSE_GRID,
                          progress=False).container.sinograms


@pytest.fixture(scope="module")
def calibration():
    """Noisy 18F uniform cylinder, 1000 s, without randoms and scatter: 1.04e8 trues."""
    return simulate_study("uniform-cylinder", scanner=LAYOUT, duration_s=1000.0, seed=SCANNER_SEED, grid=COARSE_GRID,
                          randoms=False, scatter=False, progress=False).container.sinograms


def test_randoms_from_delays_are_unbiased_and_far_less_noisy_than_the_delays(study):
    truth = study["randoms"].astype(np.float64)
    delays = study["delays"].astype(np.float64)
    estimate = randoms_from_delays(LAYOUT, study["delays"]).astype(np.float64)
    # The fit keeps the delays' total, so its total error is the delays' Poisson error,
    # 1 / sqrt(1.4e6) = 0.08 %; the 1 % is 12 sigma away (measured +0.13 %).
    assert abs(estimate.sum() / truth.sum() - 1) < 0.01
    # Per sinogram (>= 2.2e4 randoms each): 4 Poisson sigmas of that sinogram's delays (measured max 0.7 %,
    # sigma of the smallest sinogram 0.67 %; the crystal-pair model pools fans, so it does better than that).
    per_sinogram = estimate.sum(axis=(1, 2)) / truth.sum(axis=(1, 2)) - 1
    assert np.all(np.abs(per_sinogram) < 4 / np.sqrt(truth.sum(axis=(1, 2))))
    # Per view (all sinograms): the same 4-sigma bound.
    per_view = estimate.sum(axis=(0, 2)) / truth.sum(axis=(0, 2)) - 1
    assert np.all(np.abs(per_view) < 4 / np.sqrt(truth.sum(axis=(0, 2))))
    lors = truth > 0
    assert np.all(estimate[~lors] == 0)  # gap bins: no randoms in either
    rms_estimate = np.sqrt(np.mean((estimate - truth)[lors] ** 2)) / truth[lors].mean()
    rms_delays = np.sqrt(np.mean((delays - truth)[lors] ** 2)) / truth[lors].mean()
    # A bin holds ~8 delays (38 % Poisson noise); the fit carries the noise of whole fans
    # (measured 2.3 % rms against 37.5 %): at least ten times less noise.
    assert rms_estimate < rms_delays / 10, (rms_estimate, rms_delays)


def _calibration_expected(calibration) -> np.ndarray:
    """Expected trues with every efficiency 1: the simulator's noise-free trues divided by its normalisation."""
    truth = calibration["normalisation"].astype(np.float64)
    return np.divide(calibration["trues_expected"], truth, out=np.zeros_like(truth), where=truth > 0)


def test_normalisation_from_a_1e8_count_cylinder_within_two_percent_rms(calibration):
    truth = calibration["normalisation"].astype(np.float64)
    detected = truth > 0
    expected = _calibration_expected(calibration)
    assert calibration["prompts"].sum() > 1e8
    estimate = estimate_normalisation(LAYOUT, calibration["prompts"], expected).sinogram().astype(np.float64)
    # The 200 mm cylinder does not reach the outer radial bins (|offset| > 100 mm of the 118 mm field of
    # view): they see at most the resolution model's tails of the edge (radial bin 88: 33 % error) and
    # cannot be normalised by this scan. Compared: the LORs that cross the cylinder (attenuation < 1).
    covered = detected & (calibration["attenuation_factors"] < 1.0)
    assert covered.sum() > 0.7 * detected.sum()
    assert np.all(estimate[~detected] == 0)
    ratio = (estimate[covered] / estimate[covered].mean()) / (truth[covered] / truth[covered].mean())
    rms = np.sqrt(np.mean((ratio - 1) ** 2))
    # The 2 % at 1e8 counts (measured 0.32 %: a bin holds ~520 counts, 4.4 % noise, but each
    # crystal efficiency pools a fan of ~2e5 counts (2 x 1e8 over 832 crystals) and each radial or
    # plane factor ~1e6).
    assert rms < 0.02, rms


def test_tail_fit_recovers_the_simulated_scatter_scale(study):
    normalisation = study["normalisation"].astype(np.float64)
    # The simulator's scatter is normalisation x a smooth shape: give fit_scatter_tails that shape, unscaled.
    shape = np.divide(study["scatter"], normalisation, out=np.zeros_like(normalisation), where=normalisation > 0)
    fit = fit_scatter_tails(shape, study["prompts"], study["randoms"], normalisation, study["attenuation_factors"])
    truth = study["scatter"].astype(np.float64)
    # The 2 % on the total (measured +0.44 %; the tails hold ~1e6 prompts, 0.1 % Poisson).
    assert fit.sinogram.sum() / truth.sum() == pytest.approx(1.0, abs=0.02)
    # Each sinogram's scale is a ratio of sums over a window of 5 sinograms' tails: 4 Poisson sigmas of
    # those tail prompts (measured 0.99 to 1.02).
    tails = (study["attenuation_factors"] > 0.95) & (normalisation * shape > 0)
    kernel = np.ones(5)
    tail_prompts = np.convolve(np.where(tails, study["prompts"], 0).sum(axis=(1, 2)), kernel, "same")
    tail_scatter = np.convolve(np.where(tails, truth, 0).sum(axis=(1, 2)), kernel, "same")
    sigma = np.sqrt(tail_prompts) / tail_scatter
    assert np.all(np.abs(fit.scale - 1) < 4 * sigma), (fit.scale, sigma)


def test_study_with_estimated_normalisation_and_randoms_from_delays_is_calibrated(calibration):
    study = simulate_study("uniform-cylinder", scanner=LAYOUT, isotope="Ga68", injected_activity_bq=40e6,
                           duration_s=180.0, frame_start_s=1800.0, seed=SCANNER_SEED, grid=GRID,
                           progress=False).container
    del study.sinograms["randoms"]  # randoms then come from the delays (fan-sum fit)
    expected = _calibration_expected(calibration)
    fitted = estimate_normalisation(LAYOUT, calibration["prompts"], expected).sinogram()
    # Absolute scale from the calibration scan's known activity: measured / expected counts.
    sensitivity = calibration["prompts"].sum(dtype=np.float64) / (expected * fitted).sum()
    study.sinograms["normalisation"] = (fitted * sensitivity).astype(np.float32)
    protocol = ReconstructionProtocol(image_shape=GRID.shape, voxel_size_mm=GRID.voxel_size_mm)
    result = reconstruct_study(study, protocol, progress=False)
    x, y, z = np.meshgrid(*(GRID.voxel_centres_mm(a) for a in range(3)), indexing="ij")
    central = (np.hypot(x, y) < 80.0) & (np.abs(z) < 0.8 * GRID.shape[2] * GRID.voxel_size_mm[2] / 2)
    truth = study.volumes["activity_bq_per_ml"].data[central].mean()
    assert "RAN" in result.corrected and "NORM" in result.corrected
    # 1.7e7 prompts (scatter fraction 0.3, randoms 8 %): the central 80 % holds ~1e7 trues, whose Poisson
    # error on the mean is ~0.03 %, about 0.1 % after the randoms' and scatter's variance; the normalisation's
    # 0.3 % rms averages out over the ~1e5 bins through the region and its absolute scale carries the 1e8
    # calibration counts' 0.01 %. 3 % (the issue's figure) leaves room for the chain's own noise-free
    # -0.25 % (tests/test_recon_study.py) and OSEM's convergence (measured -0.25 %).
    assert result.volume.data[central].mean() == pytest.approx(truth, rel=0.03)
