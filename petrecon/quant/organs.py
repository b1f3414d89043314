"""Organ reference VOIs (liver, spleen, bone marrow) and the EANM liver check.

Spherical reference VOIs placed by the user at a point inside the organ. The
liver VOI is the 3 cm sphere of the EANM liver QC (reference/quantification.md:
mean SUV in a 3 cm liver VOI between 1.3 and 3.0 for FDG). Spleen and bone
marrow (a lumbar vertebral body) have no reference size there; petrecon uses
2 cm and 1.5 cm spheres, small enough to stay inside the organ.
The clinical protocol reports organ SUVmax (reference/clinical-protocol.md:
68Ga-pentixafor liver 3.1, marrow 3.7, spleen 5.6), which the statistics give too.
"""

from __future__ import annotations

from typing import Sequence

from petrecon.errors import ParameterError
from petrecon.quant.roi import sphere_mask
from petrecon.quant.stats import VoiStatistics, voi_statistics
from petrecon.volume import Volume

#: Diameter (mm) of the spherical reference VOI of each organ.
ORGAN_VOI_DIAMETER_MM = {"liver": 30.0, "spleen": 20.0, "bone-marrow": 15.0}

#: EANM FDG liver QC range of the mean SUV in the 3 cm liver VOI.
EANM_LIVER_SUV_MEAN_RANGE = (1.3, 3.0)


def organ_reference(volume: Volume, organ: str, centre_mm: Sequence[float]) -> VoiStatistics:
    """Statistics of the organ's spherical reference VOI centred at ``centre_mm``.

    Examples
    --------
    >>> import numpy as np
    >>> from petrecon.volume import ImageGrid
    >>> grid = ImageGrid.centred((20, 20, 20), (3.0, 3.0, 3.0))
    >>> round(organ_reference(Volume(np.full(grid.shape, 2.2), grid), "liver", (0, 0, 0)).mean, 9)
    2.2
    """
    if organ not in ORGAN_VOI_DIAMETER_MM:
        raise ParameterError(f"unknown organ {organ!r}; known: {', '.join(ORGAN_VOI_DIAMETER_MM)}")
    mask = sphere_mask(volume.grid, centre_mm, ORGAN_VOI_DIAMETER_MM[organ] / 2.0)
    return voi_statistics(volume, mask)


def liver_qc_passes(liver: VoiStatistics) -> bool:
    """Whether the liver VOI mean lies in the EANM FDG range 1.3-3.0 (SUV image).

    Examples
    --------
    >>> liver_qc_passes(VoiStatistics(2.9, 2.1, 0.2, 2.4, 14.1, 29.6, 100, (0, 0, 0), (0, 0, 0)))
    True
    """
    low, high = EANM_LIVER_SUV_MEAN_RANGE
    return low <= liver.mean <= high
