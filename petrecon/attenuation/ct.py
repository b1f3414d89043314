"""CT numbers (HU) to linear attenuation coefficients at 511 keV, bilinear per kVp.

Model (Carney et al., Med Phys 33:976, 2006; reference/quantification.md)::

    mu = 9.6e-5 * (HU + 1000)          cm^-1   for HU <= BP
    mu = a * (HU + 1000) + b           cm^-1   for HU >  BP

with ``a``, ``b`` and the breakpoint ``BP`` tabulated per tube voltage. The
first segment is the air-water mixture line (water 0.096 cm^-1 at 0 HU); the
second the water-bone mixture line, whose slope falls with kVp because bone's
photoelectric excess at CT energies does not exist at 511 keV.

Clipping (documented choices):

- HU below -1000 (noise in air) are clipped to -1000, so mu >= 0.
- HU above ``max_hu`` (default 2000, above dense cortical bone at ~1900 HU)
  are clipped to it: metal implants and concentrated oral or iodine contrast
  would otherwise be read as very dense bone and over-correct by tens of
  percent along every LOR through them. Iodine contrast below ``max_hu`` is
  still read as bone-like tissue (a known, documented bias of CT-based
  attenuation correction, a few percent in contrast-filled vessels).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from petrecon.errors import ParameterError
from petrecon.volume import ImageGrid, Volume

MU_PER_CM_PER_HU_BELOW_BREAKPOINT = 9.6e-5
AIR_HU = -1000.0
DEFAULT_MAX_HU = 2000.0


@dataclass(frozen=True)
class BilinearCoefficients:
    """Slope ``a`` (cm^-1 per HU), offset ``b`` (cm^-1) and breakpoint (HU) above the breakpoint."""

    a_per_cm: float
    b_per_cm: float
    breakpoint_hu: float


BILINEAR_BY_KVP: dict[int, BilinearCoefficients] = {
    80: BilinearCoefficients(3.64e-5, 0.0626, 50.0),
    100: BilinearCoefficients(4.43e-5, 0.0544, 52.0),
    110: BilinearCoefficients(4.92e-5, 0.0488, 43.0),
    120: BilinearCoefficients(5.10e-5, 0.0471, 47.0),
    130: BilinearCoefficients(5.51e-5, 0.0424, 37.0),
    140: BilinearCoefficients(5.64e-5, 0.0408, 30.0),
}


def bilinear_coefficients(kvp: float) -> BilinearCoefficients:
    """Coefficients of the tube voltage ``kvp`` (rounded to the nearest kV; only tabulated voltages).

    Raises
    ------
    ParameterError
        For a voltage outside the table: interpolating the coefficients would
        break the continuity of the model at the breakpoint.
    """
    key = int(round(float(kvp)))
    if key not in BILINEAR_BY_KVP:
        raise ParameterError(f"no bilinear HU->mu coefficients for {kvp} kVp; "
                             f"tabulated: {', '.join(str(k) for k in BILINEAR_BY_KVP)} kVp (Carney et al. 2006)")
    return BILINEAR_BY_KVP[key]


def hu_to_mu_per_cm(hu, kvp: float = 120.0, *, max_hu: float = DEFAULT_MAX_HU) -> np.ndarray:
    """mu at 511 keV (cm^-1, float32) of CT numbers acquired at ``kvp``.

    Parameters
    ----------
    hu : array_like
        CT numbers (Hounsfield units).
    kvp : float
        Tube voltage of the CT (DICOM KVP (0018,0060)); 80, 100, 110, 120, 130 or 140.
    max_hu : float
        Upper clip (metal and dense contrast), see the module notes.

    Examples
    --------
    >>> [round(float(m), 4) for m in hu_to_mu_per_cm([-1000, 0, 47, 1000], 120)]
    [0.0, 0.096, 0.1005, 0.1491]
    """
    coefficients = bilinear_coefficients(kvp)
    if not max_hu > coefficients.breakpoint_hu:
        raise ParameterError(f"max_hu must exceed the breakpoint {coefficients.breakpoint_hu} HU, got {max_hu}")
    shifted = np.clip(np.asarray(hu, dtype=np.float64), AIR_HU, max_hu) - AIR_HU
    below = MU_PER_CM_PER_HU_BELOW_BREAKPOINT * shifted
    above = coefficients.a_per_cm * shifted + coefficients.b_per_cm
    return np.where(shifted <= coefficients.breakpoint_hu - AIR_HU, below, above).astype(np.float32)


def ct_to_mu(ct: Volume, kvp: float | None = None, *, max_hu: float = DEFAULT_MAX_HU) -> Volume:
    """mu-map (cm^-1) of a CT volume in HU, on the CT's own grid.

    ``kvp`` defaults to ``ct.metadata["kvp"]`` (what the DICOM reader records).

    Raises
    ------
    ParameterError
        If no kVp is given and the volume does not carry one.
    """
    if kvp is None:
        kvp = ct.metadata.get("kvp")
        if kvp is None:
            raise ParameterError("the CT volume carries no kVp (DICOM KVP (0018,0060)); pass kvp= explicitly")
    mu = hu_to_mu_per_cm(ct.data, kvp, max_hu=max_hu)
    metadata = {"units": "cm^-1", "source": "ct", "kvp": float(kvp), "max_hu": float(max_hu)}
    return Volume(mu, ct.grid, metadata)


PADDING_HU = -1500.0
BODY_HU = -500.0


def find_truncated_slices(ct: Volume) -> np.ndarray:
    """Indices of the transverse slices where the body touches the edge of the CT field of view.

    The field of view is where the scanner reconstructed values (``HU >
    -1500``; voxels outside the circular FOV carry padding values such as
    -2048 or -3024) clipped to the array; the body is ``HU > -500``. A body
    that touches the FOV edge was cut off (arms outside a 50 cm FOV, large
    patients): the mu-map then lacks attenuating tissue and PET activity is
    underestimated along the LORs through it.

    Examples
    --------
    >>> from petrecon.volume import ImageGrid
    >>> grid = ImageGrid.centred((8, 8, 2), (1.0, 1.0, 1.0))
    >>> hu = np.full(grid.shape, -1000.0); hu[2:6, 2:6, 0] = 0; hu[0:6, 2:6, 1] = 0
    >>> find_truncated_slices(Volume(hu, grid)).tolist()
    [1]
    """
    from scipy import ndimage

    hu = np.asarray(ct.data)
    field_of_view = hu > PADDING_HU
    truncated = []
    for k in range(hu.shape[2]):
        inside = np.pad(field_of_view[:, :, k], 1, constant_values=False)
        edge = (inside & ~ndimage.binary_erosion(inside))[1:-1, 1:-1]
        if np.any(edge & (hu[:, :, k] > BODY_HU)):
            truncated.append(k)
    return np.asarray(truncated, dtype=np.int64)


def ct_mu_map_on_grid(ct: Volume, grid: ImageGrid, *, kvp: float | None = None, fwhm_mm: float = 4.0,
                      max_hu: float = DEFAULT_MAX_HU) -> Volume:
    """The CT-based mu-map (cm^-1) on a PET grid: convert, smooth to PET resolution, resample.

    Parameters
    ----------
    ct : Volume
        CT in HU on its own grid (``metadata["kvp"]`` from the DICOM reader).
    grid : ImageGrid
        The PET image grid.
    kvp : float, optional
        Tube voltage, if the volume does not carry it.
    fwhm_mm : float
        Resolution the mu-map is smoothed to before resampling (default 4 mm,
        about the Biograph detector resolution, reference/scanners.md: 4 mm
        crystals); it also removes aliasing when the CT pixels are much finer
        than the PET voxels.
    max_hu : float
        Upper HU clip (metal, dense contrast).

    Returns
    -------
    Volume
        mu in cm^-1 on ``grid``; ``metadata["truncated_slices"]`` lists the CT
        slices where the body touches the CT field of view (see
        :func:`find_truncated_slices`), empty when none.
    """
    from petrecon.attenuation.resample import resample_to_grid, smooth_to_fwhm

    mu = smooth_to_fwhm(ct_to_mu(ct, kvp, max_hu=max_hu), fwhm_mm)
    on_grid = resample_to_grid(mu, grid, order=1, fill_value=0.0)
    on_grid.metadata["truncated_slices"] = find_truncated_slices(ct).tolist()
    return on_grid
