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

:func:`write_simulated_export` writes a whole mMR-style export folder::

    export/PETLM.dcm + PETLM.bf     list-mode (prompts, delays, singles); Interfile header in
                                    (0029,1010) with the bed position and patient orientation,
                                    CSA header in (0029,1020) with TablePositionOrigin
    export/NORM.dcm + NORM.bf       the component normalisation (as above)
    export/UMAP/*.dcm               the scanner's mu-map series: MR images of mu x 10000 of
                                    every region but the hardware, CSA series header with
                                    GantryTableHomeOffset
    export/hardware/umap_*.v.hdr    the hardware parts (the scanner keeps them in its own
                                    folder; NiftyPET's HMUDIR), one file per hardware region

Each is what petrecon's readers take from the scanner (:mod:`petrecon.io.siemens`,
:func:`petrecon.io.dicom.read_scanner_mu_map_series`, :mod:`petrecon.io.hardware_mumap`);
the folder names and the scanner's DICOM attributes beyond those read are
*unverified* (petrecon has no real export). The simulated mu-map series holds
the true mu of the regions (the scanner's holds its Dixon classes).
"""

from __future__ import annotations

import os
from pathlib import Path

import shutil
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from petrecon.errors import ParameterError
from petrecon.geometry.patient import gantry_to_patient_affine, study_bed_position_mm
from petrecon.io.container import Container
from petrecon.io.hardware_mumap import TablePlacement, write_hardware_mu_map
from petrecon.io.interfile import BED_POSITION_KEY, PATIENT_ORIENTATION_KEY
from petrecon.io.siemens import write_wrapper
from petrecon.io.siemens_csa import write_csa
from petrecon.io.siemens_norm import expected_shapes, write_component_normalisation
from petrecon.simulate import detection
from petrecon.volume import ImageGrid, Volume

#: The table's CSA positions the simulated export records (mm, x y z): plausible by NiftyPET's checks in
#: ``get_hmupos`` (|z| > 200 mm, |y| < 200 mm, |x| < 20 mm for the gantry table home offset).
SIMULATED_TABLE_POSITION_ORIGIN_MM = (0.0, 0.0, -1260.0)
SIMULATED_GANTRY_TABLE_HOME_OFFSET_MM = (0.0, 0.0, 1250.0)


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


@dataclass(frozen=True)
class SimulatedExport:
    """The paths :func:`write_simulated_export` wrote."""

    folder: Path
    listmode: Path
    norm: Path
    mu_map_series: Path
    hardware: tuple[Path, ...]


def write_simulated_export(simulated, phantom, folder: str | os.PathLike, *, hardware_regions: Sequence[str] = (),
                           mu_grid: ImageGrid | None = None, overwrite: bool = False) -> SimulatedExport:
    """Write a simulated list-mode study as an mMR export folder (module docstring).

    Parameters
    ----------
    simulated : petrecon.simulate.acquisition.SimulatedStudy
        A list-mode simulation (``listmode=True``) with a patient position.
    phantom : Phantom
        The phantom it was simulated from (in patient coordinates).
    folder : path-like
        The export folder to create (atomically).
    hardware_regions : sequence of str
        Phantom regions that are hardware (a table, a coil): left out of the
        mu-map series, written as hardware mu-maps instead.
    mu_grid : ImageGrid, optional
        Gantry-frame grid of the mu-map series and the hardware files
        (default: the simulation's ground-truth grid).
    """
    from petrecon.io.atomic import atomic_folder
    from petrecon.simulate.placement import place_phantom
    from petrecon.simulate.voxelise import voxelise

    container, words = simulated.container, simulated.listmode_words
    attributes = container.attributes
    if words is None or "patient_position" not in attributes:
        raise ParameterError("a simulated export needs a list-mode simulation in patient coordinates "
                             "(listmode=True, a patient position)")
    unknown = set(hardware_regions) - {region.name for region in phantom.regions}
    if unknown:
        raise ParameterError(f"hardware regions {sorted(unknown)} are not regions of phantom {phantom.name!r}")
    position, bed = attributes["patient_position"], study_bed_position_mm(attributes)
    placement = TablePlacement(bed, SIMULATED_TABLE_POSITION_ORIGIN_MM, SIMULATED_GANTRY_TABLE_HOME_OFFSET_MM)
    grid = mu_grid or container.volumes["mu_per_cm"].grid
    placed = place_phantom(phantom, position, bed)

    def mu_of(regions) -> Volume:
        return voxelise(replace(placed, regions=tuple(regions)), grid, supersampling=1)["mu_per_cm"]

    folder = Path(folder)
    with atomic_folder(folder, overwrite=overwrite) as temporary:
        header = "\n".join(["!INTERFILE:=", f"%scanner name:={container.layout.scanner.name}",
                            "name of data file:=PETLM.l", f"%{PATIENT_ORIENTATION_KEY}:={position}",
                            f"%{BED_POSITION_KEY}:={bed!r}", f"image duration (sec):={attributes['duration_s']!r}",
                            f"isotope name:={attributes['isotope']}", "!END OF INTERFILE:=", ""])
        write_wrapper(temporary / "PETLM.dcm", header, np.asarray(words, "<u4").tobytes(),
                      csa=write_csa({"TablePositionOrigin": [f"{v:.6f}" for v in placement.table_position_origin_mm]}))
        staging = temporary / "staging"
        staging.mkdir()
        norm_header = write_simulated_component_norm(container, staging / "NORM.n.hdr")
        write_wrapper(temporary / "NORM.dcm", norm_header.read_text(), (staging / "NORM.n").read_bytes())
        shutil.rmtree(staging)
        patient = mu_of(r for r in placed.regions if r.name not in hardware_regions)
        write_mu_map_series(temporary / "UMAP", patient, position, bed, placement.gantry_table_home_offset_mm)
        (temporary / "hardware").mkdir()
        hardware = tuple(write_hardware_mu_map(temporary / "hardware" / f"umap_{name}_petrecon.v.hdr",
                                               mu_of(r for r in placed.regions if r.name == name), placement)
                         for name in hardware_regions)
    return SimulatedExport(folder, folder / "PETLM.dcm", folder / "NORM.dcm", folder / "UMAP",
                           tuple(folder / "hardware" / path.name for path in hardware))


def write_mu_map_series(folder: Path, mu: Volume, patient_position: str, bed_position_mm: float,
                        gantry_table_home_offset_mm: Sequence[float]) -> Path:
    """Write ``mu`` (cm^-1, gantry frame) as the mMR stores its mu-map: MR images of ``mu x 10000``, one per z slice.

    Placed in LPS by :mod:`petrecon.geometry.patient`; the CSA series header
    (0029,1020) records ``GantryTableHomeOffset``. Stored as int16 with
    RescaleSlope 1, so mu is kept to 1e-4 cm^-1.
    """
    from pydicom.uid import generate_uid

    from petrecon.io.dicom import MR_IMAGE_STORAGE, SCANNER_MU_MAP_SCALE, new_dataset

    to_patient = gantry_to_patient_affine(patient_position, bed_position_mm)
    grid = mu.grid
    stored = np.rint(np.asarray(mu.data, np.float64) * SCANNER_MU_MAP_SCALE).astype("<i2")
    series_uid = generate_uid()
    csa_series = write_csa({"GantryTableHomeOffset": [f"{v:.6f}" for v in gantry_table_home_offset_mm]})
    folder.mkdir()
    for k in range(grid.shape[2]):
        ds = new_dataset(MR_IMAGE_STORAGE, "MR")
        ds.SeriesInstanceUID, ds.SeriesDescription = series_uid, "MRAC_PET_UMAP (petrecon)"
        ds.PatientPosition = patient_position
        ds.ImageOrientationPatient = [f"{v:g}" for v in (*to_patient[:3, 0], *to_patient[:3, 1])]
        corner = to_patient @ [*grid.origin_mm[:2], grid.origin_mm[2] + k * grid.voxel_size_mm[2], 1.0]
        ds.ImagePositionPatient = [f"{v:.4f}" for v in corner[:3]]
        ds.PixelSpacing = [f"{grid.voxel_size_mm[1]:g}", f"{grid.voxel_size_mm[0]:g}"]
        ds.SliceThickness = f"{grid.voxel_size_mm[2]:g}"
        ds.Rows, ds.Columns = grid.shape[1], grid.shape[0]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = "1", "0"
        ds.add_new((0x0029, 0x0010), "LO", "SIEMENS CSA HEADER")
        ds.add_new((0x0029, 0x1010), "OB", write_csa({"ImaRelTablePosition": ["0", "0", "0"]}))
        ds.add_new((0x0029, 0x1020), "OB", csa_series)
        ds.PixelData = np.ascontiguousarray(stored[:, :, k].T).tobytes()
        ds.save_as(folder / f"{k + 1:04d}.dcm", enforce_file_format=True)
    return folder
