"""A smooth scatter model: the attenuated emission sinogram convolved with a broad Gaussian.

Scattered coincidences form a smooth, broad distribution that follows the
attenuated emission (the basis of convolution-subtraction scatter correction,
Bergstroem et al., J Comput Assist Tomogr 7:42, 1983; Bailey & Meikle, Phys
Med Biol 39:411, 1994). Here

    scatter = SF / (1 - SF) x (total expected trues) x n B / sum(n B),
    B = G_{FWHM} * (attenuation factors x emission line integrals),

with ``n`` the normalisation (scattered photons are detected by the same
crystals), ``G`` a Gaussian of :data:`SCATTER_FWHM_MM` along the radial bins
and, within each segment, the axial positions (zero outside the sinogram),
and ``SF`` the scanner's NEMA scatter fraction
(:mod:`petrecon.simulate.performance`), so scatter / (trues + scatter) = SF
exactly. Limitation, documented: SF does not depend on the object's size
and the kernel does not depend on the depth in the object.
"""

from __future__ import annotations

import numpy as np

from petrecon.errors import ParameterError
from petrecon.geometry import SinogramLayout
from petrecon.simulate.resolution import FWHM_PER_SIGMA

SCATTER_FWHM_MM = 150.0
"""FWHM of the scatter kernel in the detector plane (mm)."""


def _gaussian_fft(data: np.ndarray, sigma: float, axis: int) -> np.ndarray:
    """Gaussian convolution along ``axis`` by FFT with zero padding (broad kernels)."""
    n = data.shape[axis]
    size = int(2 ** np.ceil(np.log2(n + 4 * sigma + 1)))
    frequencies = np.fft.rfftfreq(size)
    transfer = np.exp(-2.0 * (np.pi * frequencies * sigma) ** 2).astype(np.float32)
    shape = [1] * data.ndim
    shape[axis] = transfer.size
    spectrum = np.fft.rfft(data, n=size, axis=axis) * transfer.reshape(shape)
    return np.take(np.fft.irfft(spectrum, n=size, axis=axis), np.arange(n), axis=axis).astype(np.float32)


def scatter_sinogram(layout: SinogramLayout, attenuated_emission: np.ndarray, normalisation: np.ndarray,
                     total_trues: float, scatter_fraction: float,
                     fwhm_mm: float = SCATTER_FWHM_MM) -> np.ndarray:
    """Expected scatter counts per bin (module docstring), float32 ``layout.shape``.

    Examples
    --------
    >>> from petrecon.geometry import default_layout
    >>> layout = default_layout("test")
    >>> emission = np.zeros(layout.shape, np.float32); emission[:, :, 28:36] = 1.0
    >>> scatter = scatter_sinogram(layout, emission, np.ones(layout.shape, np.float32), 1000.0, 0.3)
    >>> round(float(scatter.sum()) / (1000.0 + float(scatter.sum())), 6)
    0.3
    """
    if not 0.0 <= scatter_fraction < 1.0:
        raise ParameterError(f"scatter fraction must be in [0, 1), got {scatter_fraction}")
    if scatter_fraction == 0.0 or total_trues <= 0.0:
        return np.zeros(layout.shape, np.float32)
    emission = np.asarray(attenuated_emission, np.float32)
    blurred = np.empty(layout.shape, np.float32)
    sigma_bins = fwhm_mm / FWHM_PER_SIGMA / layout.radial_bin_size_mm
    sigma_planes = fwhm_mm / FWHM_PER_SIGMA / (layout.scanner.ring_spacing_mm / 2.0)
    first = 0
    for size in layout.segment_table:  # one segment at a time bounds the FFT's memory
        block = _gaussian_fft(emission[first:first + size], sigma_bins, axis=-1)
        blurred[first:first + size] = _gaussian_fft(block, sigma_planes, axis=0)
        first += size
    shape = np.clip(blurred, 0.0, None) * normalisation
    total_shape = float(shape.sum(dtype=np.float64))
    if total_shape <= 0.0:
        return np.zeros(layout.shape, np.float32)
    total_scatter = scatter_fraction / (1.0 - scatter_fraction) * total_trues
    return (shape * np.float32(total_scatter / total_shape)).astype(np.float32)
