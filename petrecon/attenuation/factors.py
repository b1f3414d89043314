"""Attenuation factors: ``exp(-line integral of mu)`` along every LOR of a sinogram layout."""

from __future__ import annotations

import dataclasses

import numpy as np

from petrecon.errors import ParameterError
from petrecon.geometry import SinogramLayout
from petrecon.volume import Volume

MM_PER_CM = 10.0


def attenuation_factors(mu: Volume, layout: SinogramLayout) -> np.ndarray:
    """Attenuation factors in (0, 1] for every bin of ``layout`` (float32, the layout's shape).

    The mu-map (cm^-1, ARCHITECTURE contract 2) is forward-projected with the
    reconstruction's Joseph projector on its own grid; this is the one place
    where cm^-1 becomes mm^-1. TOF layouts get the same factor in every TOF
    bin (attenuation does not depend on where along the LOR the annihilation was).

    Raises
    ------
    ParameterError
        If the volume says it is in other units than cm^-1, or holds negative values.

    Examples
    --------
    >>> from petrecon.geometry import default_layout
    >>> from petrecon.volume import ImageGrid
    >>> layout = default_layout("test")
    >>> grid = ImageGrid.centred((64, 64, 15), (3.0, 3.0, 2.0))
    >>> factors = attenuation_factors(Volume(np.zeros(grid.shape, np.float32), grid), layout)
    >>> factors.shape == layout.shape, float(factors.min())
    (True, 1.0)
    """
    from petrecon.projectors.sinogram import SinogramProjector

    units = str(mu.metadata.get("units", "cm^-1"))
    if not units.startswith("cm^-1"):
        raise ParameterError(f"attenuation_factors needs a mu-map in cm^-1, this volume is in {units!r}")
    data = np.asarray(mu.data, dtype=np.float32)
    if data.size and float(data.min()) < 0:
        raise ParameterError(f"the mu-map holds negative values (min {float(data.min()):.4g} cm^-1)")
    non_tof = dataclasses.replace(layout, use_tof=False, tof_mashing=1)
    factors = np.exp(-SinogramProjector(non_tof, mu.grid).forward(data / MM_PER_CM)).astype(np.float32)
    if layout.use_tof:
        return np.ascontiguousarray(np.broadcast_to(factors, layout.shape))
    return factors
