"""Scatter of a simulated acquisition: the physical single-scatter truth, optionally set to a scatter fraction.

The shape and, by default, the amount come from the direct single-scatter
integral of :mod:`petrecon.simulate.single_scatter` (Watson 1996/2000,
Ollinger 1996): exact attenuation along both legs, Klein-Nishina, the
scanner's energy window and resolution, the crystals' stopping by incidence.
Its scatter fraction is the object's own (single scatter only: below a
measured NEMA figure, which includes multiple scatter). Given a
``scatter_fraction``, the total is rescaled so that scatter / (trues +
scatter) equals it (e.g. the scanner's NEMA figure,
:mod:`petrecon.simulate.performance`), keeping the physical shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from petrecon.errors import ParameterError
from petrecon.geometry import SinogramLayout
from petrecon.simulate.phantom import PackedPhantom
from petrecon.simulate.single_scatter import ScatterTruthSettings, scatter_truth_sinogram


@dataclass(frozen=True)
class SimulatedScatter:
    """Expected scatter counts (float32, the layout's shape) and the physical single-scatter fraction."""

    sinogram: np.ndarray
    single_scatter_fraction: float


def scatter_sinogram(layout: SinogramLayout, packed: PackedPhantom, activity: np.ndarray, mu_per_mm: np.ndarray,
                     normalisation: np.ndarray, scale: float, total_trues: float,
                     scatter_fraction: float | None = None,
                     settings: ScatterTruthSettings = ScatterTruthSettings()) -> SimulatedScatter:
    """Expected scatter counts per bin (module docstring), and single scatter / (trues + single scatter).

    Parameters
    ----------
    packed, activity, mu_per_mm
        The phantom's solids, and per region the activity (the trues' unit) and mu at 511 keV (mm^-1).
    normalisation : numpy.ndarray
        The simulator's normalisation (the trues' efficiency of each bin).
    scale : float
        The trues' counts per unit of normalisation x line integral (``K``).
    total_trues : float
        Expected trues of the frame.
    scatter_fraction : float, optional
        Rescale the total to this scatter fraction; None keeps the physical single scatter.
    settings : ScatterTruthSettings
        Sampling of the integral.
    """
    if scatter_fraction is not None and not 0.0 <= scatter_fraction < 1.0:
        raise ParameterError(f"scatter fraction must be in [0, 1), got {scatter_fraction}")
    scatter = scatter_truth_sinogram(layout, packed, activity, mu_per_mm, normalisation, scale, settings)
    total = float(scatter.sum(dtype=np.float64))
    physical = total / (total + total_trues) if total + total_trues > 0 else 0.0
    if scatter_fraction is None or total <= 0.0:
        return SimulatedScatter(scatter, physical)
    target = scatter_fraction / (1.0 - scatter_fraction) * total_trues
    return SimulatedScatter((scatter * np.float32(target / total)).astype(np.float32), physical)
