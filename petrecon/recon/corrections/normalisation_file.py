"""Normalisation stored and reused: estimate it from a calibration container, write it to HDF5, read it back.

A component-based normalisation (:mod:`.normalisation`) is measured once per
scanner and calibration (a uniform cylinder or plane source) and applied to
every study of the same layout. The file (HDF5, written atomically) holds::

    /crystal_efficiencies   (n_rings, n_crystals_per_ring)
    /radial_profile         (n_radial_bins,)
    /plane_factors          (n_sinograms,)
    attrs: format = "petrecon-normalisation", format_version, layout (JSON), provenance (JSON)

A study container names it in its ``normalisation_file`` attribute (a path,
absolute or relative to the working folder), or the caller passes the
:class:`~.normalisation.Normalisation` to
:func:`petrecon.recon.study.reconstruct_study`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from petrecon.errors import FormatError, GeometryError, ParameterError
from petrecon.geometry import SinogramLayout
from petrecon.geometry.sinogram import layout_from_dict
from petrecon.io.container import Container, open_petrecon_hdf5, write_hdf5_atomically
from petrecon.recon.corrections.normalisation import Normalisation, estimate_normalisation

FORMAT_NAME = "petrecon-normalisation"
FORMAT_VERSION = 1
COMPONENTS = ("crystal_efficiencies", "radial_profile", "plane_factors")


def normalisation_from_calibration(container: Container) -> Normalisation:
    """Fit the components to a calibration acquisition container.

    The container holds ``prompts``, the calibration phantom's known activity
    (volume ``activity_bq_per_ml``) and its attenuation (sinogram
    ``attenuation_factors``, else volume ``mu_per_cm``). The expected trues
    with unit efficiencies are the forward projection of the activity times
    the attenuation factors (any global scale: the components average 1).
    Randoms (``randoms``, else the fan-sum estimate from ``delays``) and a
    ``scatter`` sinogram, when present, are subtracted from the prompts.
    """
    from petrecon.attenuation.factors import attenuation_factors
    from petrecon.projectors.sinogram import SinogramProjector
    from petrecon.recon.corrections.randoms import randoms_from_delays

    layout = container.layout
    if layout is None or "prompts" not in container.sinograms:
        raise ParameterError("the calibration container has no prompts sinogram (and layout)")
    if "activity_bq_per_ml" not in container.volumes:
        raise ParameterError("the calibration container has no 'activity_bq_per_ml' volume (the known phantom)")
    activity = container.volumes["activity_bq_per_ml"]
    measured = np.asarray(container.sinograms["prompts"], np.float32)
    if "randoms" in container.sinograms:
        measured = measured - container.sinograms["randoms"]
    elif "delays" in container.sinograms:
        measured = measured - randoms_from_delays(layout, container.sinograms["delays"])
    if "scatter" in container.sinograms:
        measured = measured - container.sinograms["scatter"]
    if "attenuation_factors" in container.sinograms:
        factors = np.asarray(container.sinograms["attenuation_factors"], np.float32)
    elif "mu_per_cm" in container.volumes:
        factors = attenuation_factors(container.volumes["mu_per_cm"], layout)
    else:
        raise ParameterError("the calibration container has neither attenuation factors nor a mu-map")
    expected = SinogramProjector(layout, activity.grid).forward(activity.data.astype(np.float32)) * factors
    return estimate_normalisation(layout, np.clip(measured, 0.0, None), np.clip(expected, 0.0, None))


def write_normalisation(path: str | os.PathLike, normalisation: Normalisation, provenance: dict | None = None, *,
                        overwrite: bool = False) -> Path:
    """Write the components and their provenance to ``path`` (HDF5, atomic).

    Examples
    --------
    >>> import tempfile
    >>> from petrecon.geometry import default_layout
    >>> layout = default_layout("test")
    >>> norm = Normalisation(layout, np.ones((8, 112), np.float32), np.ones(64, np.float32),
    ...                      np.ones(layout.n_sinograms, np.float32))
    >>> path = write_normalisation(Path(tempfile.mkdtemp()) / "norm.h5", norm, {"source": "doctest"})
    >>> read_normalisation(path).radial_profile.shape
    (64,)
    """
    def fill(f) -> None:
        f.attrs["format"] = FORMAT_NAME
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["layout"] = json.dumps(normalisation.layout.to_dict())
        f.attrs["provenance"] = json.dumps(provenance or {})
        for name in COMPONENTS:
            f.create_dataset(name, data=np.asarray(getattr(normalisation, name), np.float32))

    return write_hdf5_atomically(path, fill, overwrite=overwrite)


def read_normalisation(path: str | os.PathLike, layout: SinogramLayout | None = None) -> Normalisation:
    """Read a file of :func:`write_normalisation`; with ``layout``, check that it is the file's.

    Raises
    ------
    FormatError
        If the file is missing, not one of ours, or a component is malformed.
    GeometryError
        If ``layout`` differs from the layout the normalisation was measured for.
    """
    path = Path(path)
    with open_petrecon_hdf5(path, FORMAT_NAME) as f:
        try:
            stored = layout_from_dict(json.loads(f.attrs["layout"]))
        except (KeyError, ValueError, GeometryError) as error:
            raise FormatError(path, "layout", f"cannot be read ({error})") from None
        missing = [name for name in COMPONENTS if name not in f]
        if missing:
            raise FormatError(path, missing[0], "is missing")
        components = {name: f[name][()] for name in COMPONENTS}
    shapes = {"crystal_efficiencies": (stored.scanner.n_rings, stored.scanner.n_crystals_per_ring),
              "radial_profile": (stored.n_radial_bins,), "plane_factors": (stored.n_sinograms,)}
    for name, shape in shapes.items():
        if components[name].shape != shape:
            raise FormatError(path, name, f"has shape {components[name].shape}, the layout needs {shape}")
    if layout is not None and layout.to_dict() != stored.to_dict():
        raise GeometryError(f"{path}: the normalisation was measured for layout {stored.shape} of "
                            f"{stored.scanner.name}, the study has {layout.shape} of {layout.scanner.name}")
    return Normalisation(stored, **components)
