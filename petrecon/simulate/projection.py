"""Analytic sinograms of a phantom: exact line integrals along every bin's LOR.

Never the reconstruction projector (ARCHITECTURE contract 6): each bin's
representative LOR (:meth:`SinogramLayout.lor_endpoints_mm`, the mean LOR of
the combined detector pairs) is intersected in closed form with the
phantom's solids (:mod:`petrecon.simulate.raytrace`). Work goes a few views
at a time so the endpoint table of a large layout is never held at once.
"""

from __future__ import annotations

import numpy as np

from petrecon.geometry import SinogramLayout
from petrecon.simulate.phantom import PackedPhantom
from petrecon.simulate.raytrace import line_integrals

CHUNK_LORS = 4_000_000
"""LORs per chunk of views (bounds the endpoint memory to ~200 MB)."""


def project_phantom(layout: SinogramLayout, packed: PackedPhantom, values: np.ndarray,
                    radial_bins: slice = slice(None), progress: bool = False) -> np.ndarray:
    """Line integrals of region ``values`` ``(n_regions, n_columns)`` for every bin of ``layout``.

    Parameters
    ----------
    radial_bins : slice
        Restrict to these radial bins (others are 0), e.g. the centre for a line source.
    progress : bool
        Show a progress bar over chunks of views.

    Returns
    -------
    numpy.ndarray
        float32 ``layout.shape + (n_columns,)`` (non-TOF), mm x value.
    """
    values = np.asarray(values, np.float64).reshape(len(values), -1)
    out = np.zeros(layout.shape + (values.shape[1],), np.float32)
    n_bins = len(range(layout.n_radial_bins)[radial_bins])
    views_per_chunk = max(1, CHUNK_LORS // max(1, layout.n_sinograms * n_bins))
    starts = range(0, layout.n_views, views_per_chunk)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc="project phantom", unit="chunk")
    for first in starts:
        views = np.arange(first, min(first + views_per_chunk, layout.n_views))
        xstart, xend = layout.lor_endpoints_mm(views=views)
        integrals = line_integrals(xstart[:, :, radial_bins], xend[:, :, radial_bins], packed, values)
        out[:, views[0]:views[-1] + 1, radial_bins] = integrals
    return out
