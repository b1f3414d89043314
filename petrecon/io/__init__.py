"""Reading and writing raw data and images.

Modules: :mod:`~petrecon.io.container` (HDF5 container, provenance, NIfTI
export), :mod:`~petrecon.io.petlink` (PETLINK words) and
:mod:`~petrecon.io.listmode` (streaming decoding, framing, histogramming),
:mod:`~petrecon.io.interfile` (Siemens Interfile), :mod:`~petrecon.io.siemens`
(raw-data DICOM exports), :mod:`~petrecon.io.petsird_io` (PETSIRD),
:mod:`~petrecon.io.dicom` (CT, Dixon MR and PET series), :mod:`~petrecon.io.atomic`
(atomic output), :mod:`~petrecon.io.multibed` (whole-body studies of several beds).
"""

from petrecon.io.container import Container, read_container, write_container

__all__ = ["Container", "read_container", "write_container"]
