"""Component-based normalisation from a simulated uniform-cylinder calibration scan."""

from __future__ import annotations

import numpy as np
import pytest

from petrecon.errors import GeometryError, ParameterError
from petrecon.geometry import default_layout
from petrecon.recon.corrections import Normalisation, estimate_normalisation
from petrecon.simulate import chord_length_cylinder_mm

COUNTS = 1e8  # the count level for the 2 % rms target


def _truth(layout) -> Normalisation:
    rng = np.random.default_rng(4)
    scanner = layout.scanner
    efficiencies = rng.uniform(0.85, 1.15, (scanner.n_rings, scanner.n_crystals_per_ring)).astype(np.float32)
    efficiencies[:, scanner.is_gap_crystal()] = 0.0
    radial = (1.0 + 0.2 * np.cos(np.linspace(-1.5, 1.5, layout.n_radial_bins))).astype(np.float32)
    planes = rng.uniform(0.9, 1.1, layout.n_sinograms).astype(np.float32)
    return Normalisation(layout, efficiencies, radial, planes)


def _cylinder_expected(layout) -> np.ndarray:
    """Chord lengths through a 110 mm radius cylinder longer than the scanner: a uniform-cylinder scan."""
    xstart, xend = layout.lor_endpoints_mm()
    chords = chord_length_cylinder_mm(xstart.reshape(-1, 3), xend.reshape(-1, 3), (0, 0, 0), 110.0, 1e4)
    return chords.reshape(layout.shape).astype(np.float32)


def test_normalisation_is_recovered_within_two_percent_rms_at_1e8_counts():
    layout = default_layout("test")
    truth = _truth(layout).sinogram()
    expected = _cylinder_expected(layout)
    mean_trues = expected * truth
    mean_trues *= COUNTS / mean_trues.sum()
    measured = np.random.default_rng(5).poisson(mean_trues).astype(np.float32)
    estimate = estimate_normalisation(layout, measured, expected).sinogram()
    seen = (expected > 0) & (truth > 0)
    truth_relative = truth / truth[seen].mean()
    error = estimate[seen] / truth_relative[seen] - 1
    # Poisson noise of ~600 counts per bin is 4 %; the components average it over thousands of bins
    assert np.sqrt(np.mean(error**2)) < 0.02
    assert np.all(estimate[truth == 0] == 0)  # gap crystals stay dead


def test_bad_calibration_inputs_are_refused():
    layout = default_layout("test")
    with pytest.raises(GeometryError, match="expected"):
        estimate_normalisation(layout, np.ones(layout.shape), np.ones((2, 2, 2)))
    with pytest.raises(ParameterError):
        estimate_normalisation(layout, np.zeros(layout.shape), np.ones(layout.shape))
