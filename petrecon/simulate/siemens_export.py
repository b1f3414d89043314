"""A simulated acquisition written as the scanner writes its normalisation: a Siemens component file.

The simulator's detection efficiency of a bin (:mod:`petrecon.simulate.detection`)
is the sum over its crystal pairs of ``cos(pi t / N) eps eps``: a
component-based normalisation whose geometric effects are ``cos(pi t / N)``
(every plane), crystal interference 1, crystal efficiencies ``eps``, axial
effects 1 and dead-time parameters 0. :func:`simulated_components` rebuilds
those components from the study's seed (the efficiencies are the first draw
of its random generator) and checks that they reproduce the study's
normalisation sinogram; :func:`write_simulated_component_norm` writes them
with :func:`~petrecon.io.siemens_norm.write_component_normalisation`, with the
study's calibration (``1 / sensitivity_cps_per_bq_per_ml_mm``) as the scanner
quantification factor, so that a reconstruction from the file needs no
``--calibration``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from petrecon.errors import ParameterError
from petrecon.io.container import Container
from petrecon.io.siemens_norm import expected_shapes, write_component_normalisation
from petrecon.simulate import detection


def simulated_components(container: Container) -> dict[str, np.ndarray]:
    """The components of a simulated study's normalisation (module docstring), float32 by petrecon name.

    Raises
    ------
    ParameterError
        If the container is not a simulation whose normalisation the rebuilt components reproduce (1e-5).
    """
    layout, attributes = container.layout, container.attributes
    if layout is None or "seed" not in attributes or "normalisation" not in container.sinograms:
        raise ParameterError("not a simulated study (needs its layout, seed and normalisation sinogram)")
    rng = np.random.default_rng(attributes["seed"])
    efficiencies = detection.crystal_efficiencies(layout.scanner, rng, float(attributes["efficiency_spread"]))
    rebuilt = detection.normalisation_sinogram(layout, efficiencies)
    reference = container.sinograms["normalisation"]
    if not np.allclose(rebuilt, reference, rtol=1e-5, atol=1e-7):
        raise ParameterError("the rebuilt crystal efficiencies do not reproduce the study's normalisation")
    shapes = expected_shapes(layout.scanner, layout.n_radial_bins, layout.span, layout.max_ring_difference)
    components = {name: np.ones(shape, np.float32) for name, shape in shapes.items()}
    components["geometric_effects"][:] = detection.radial_geometric_factors(layout)[None, :]
    components["crystal_efficiencies"] = efficiencies.astype(np.float32)
    for name in ("paralysable_dead_time", "non_paralysable_dead_time", "tx_crystal_dead_time"):
        components[name][:] = 0.0
    return components


def write_simulated_component_norm(container: Container, header_path: str | os.PathLike, *,
                                   overwrite: bool = False) -> Path:
    """Write the study's normalisation as a Siemens ``.n.hdr`` + ``.n`` (module docstring)."""
    layout = container.layout
    return write_component_normalisation(
        header_path, simulated_components(container), layout.scanner, native_span=layout.span,
        native_max_ring_difference=layout.max_ring_difference,
        quantification_factor=1.0 / float(container.attributes["sensitivity_cps_per_bq_per_ml_mm"]),
        overwrite=overwrite)
