"""Component-based normalisation estimated from a calibration acquisition by fan sums.

The detection efficiency of a bin (what multiplies the projection in the
system model ``y = m * (A x) + a``) is modelled as the product of three
components (Casey et al., IEEE TNS 43:3, 1996; Badawi and Marsden, Phys Med
Biol 44:571, 1999):

- crystal efficiencies ``eps_k eps_l`` summed over the bin's crystal pairs
  (gap crystals end at 0: they record nothing);
- a geometric radial profile ``g(bin)``: solid angle and crystal
  penetration as a function of the radial position, the same for every view;
- axial plane factors ``a(sinogram)``: ring-pair geometry and spanning.

Crystal interference (the periodic pattern of a crystal's position within its
block) is not modelled separately; it ends up partly in ``eps``.

They are fitted by maximum likelihood to a calibration scan (a uniform
cylinder or plane source) whose expected trues without normalisation,
``expected``, are known (e.g. the projection of its known activity times the
attenuation factors): alternately the ratio-of-sums estimates of ``g`` and
``a`` and the fan-sum fixed point of ``eps``
(:func:`~petrecon.recon.corrections.crystal_pairs.fit_pair_model`).
The result is scaled so that the efficiencies of the non-gap bins average 1;
the absolute sensitivity is the calibration factor's job.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from petrecon.errors import GeometryError, ParameterError
from petrecon.geometry import SinogramLayout
from petrecon.recon.corrections.crystal_pairs import CrystalPairModel, fit_pair_model


@dataclass(frozen=True)
class Normalisation:
    """The fitted components of a non-TOF layout.

    Attributes
    ----------
    layout : SinogramLayout
        The layout the components belong to.
    crystal_efficiencies : numpy.ndarray
        ``(n_rings, n_crystals_per_ring)``, 0 for gap crystals.
    radial_profile : numpy.ndarray
        ``(n_radial_bins,)``.
    plane_factors : numpy.ndarray
        ``(n_sinograms,)``.
    """

    layout: SinogramLayout
    crystal_efficiencies: np.ndarray
    radial_profile: np.ndarray
    plane_factors: np.ndarray

    def sinogram(self) -> np.ndarray:
        """Detection efficiency of every bin (float32, the layout's shape): the ``normalisation`` sinogram."""
        pairs = CrystalPairModel(self.layout).expand(self.crystal_efficiencies, self.crystal_efficiencies)
        return (pairs * self.plane_factors[:, None, None] * self.radial_profile[None, None, :]).astype(np.float32)


def estimate_normalisation(layout: SinogramLayout, measured: np.ndarray, expected: np.ndarray, *,
                           n_iterations: int = 8, n_crystal_iterations: int = 5) -> Normalisation:
    """Fit the normalisation components to a calibration scan.

    Parameters
    ----------
    layout : SinogramLayout
        Non-TOF layout of the data.
    measured : numpy.ndarray
        True coincidences of the calibration scan (prompts minus randoms, scatter removed or negligible).
    expected : numpy.ndarray
        Expected trues of the same scan with every detection efficiency equal to 1 (any global scale).
    n_iterations : int
        Outer alternations between the components.
    n_crystal_iterations : int
        Fan-sum iterations of the crystal efficiencies per alternation.

    Returns
    -------
    Normalisation
        Components scaled so that the non-gap bins' efficiencies average 1.
    """
    measured = np.asarray(measured, dtype=np.float32)
    expected = np.asarray(expected, dtype=np.float32)
    for name, data in (("measured", measured), ("expected", expected)):
        if data.shape != layout.shape:
            raise GeometryError(f"{name} sinogram has shape {data.shape}, the layout needs {layout.shape}")
    if float(measured.sum()) <= 0 or float(expected.min()) < 0:
        raise ParameterError("the calibration scan needs counts and a non-negative expected sinogram")
    model = CrystalPairModel(layout)
    efficiencies = np.ones(model.crystal_shape, np.float32)
    radial = np.ones(layout.n_radial_bins, np.float32)
    planes = np.ones(layout.n_sinograms, np.float32)
    for _ in range(n_iterations):
        pairs = model.expand(efficiencies, efficiencies)
        radial = _ratio_of_sums(measured, expected * pairs * planes[:, None, None], axis=(0, 1))
        planes = _ratio_of_sums(measured, expected * pairs * radial[None, None, :], axis=(1, 2))
        weights = expected * planes[:, None, None] * radial[None, None, :]
        efficiencies = fit_pair_model(model, measured, weights, n_crystal_iterations, initial=efficiencies)
    normalisation = Normalisation(layout, efficiencies, radial, planes)
    efficiency = normalisation.sinogram()
    scale = float(efficiency[efficiency > 0].mean())
    return Normalisation(layout, efficiencies / np.float32(np.sqrt(scale)), radial, planes)


def _ratio_of_sums(numerator: np.ndarray, denominator: np.ndarray, axis: tuple[int, int]) -> np.ndarray:
    top, bottom = numerator.sum(axis=axis, dtype=np.float64), denominator.sum(axis=axis, dtype=np.float64)
    return np.divide(top, bottom, out=np.zeros_like(top), where=bottom > 0).astype(np.float32)
