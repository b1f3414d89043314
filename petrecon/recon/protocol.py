"""Reconstruction protocols: every parameter of a reconstruction, pinned in one TOML file.

A protocol is what a harmonised reprocessing of a cohort shares: the OSEM
parameters, the post-filter, the PSF model, which corrections are applied,
the image grid and the calibration. Shipped protocols live in
``petrecon/protocols/*.toml`` (:func:`shipped_protocols`); ``clinical`` is the
protocol of reference/clinical-protocol.md (AW-OSEM 4 x 8, 5 mm Gaussian).

File format (all keys optional; missing keys take the defaults below)::

    name = "clinical"
    description = "..."
    scanner = "mmr"                  # optional: the scanner the protocol was made for

    [osem]
    n_iterations = 4
    n_subsets = 8
    post_filter_fwhm_mm = 5.0

    [resolution]
    psf_fwhm_mm = 0.0                # image-space PSF in the system model, 0 = none

    [corrections]
    normalisation = true
    attenuation = true
    randoms = true
    scatter = true
    scatter_rounds = 2               # SSS estimates alternated with reconstructions
    dead_time = true
    decay = true

    [whole_body]
    method = "stitched"              # beds reconstructed one by one and stitched, or "joint": one OSEM
                                     # over every bed's data (petrecon.recon.joint_beds)

    [image]
    shape = [344, 344, 127]          # optional: default the scanner's
    voxel_size_mm = [2.08626, 2.08626, 2.03125]

    [calibration]
    bq_per_ml_per_unit = 1.0         # cross-calibration factor (uniform cylinder); absent: the
                                     # study's own calibration (simulated studies carry theirs)

Unknown tables or keys are errors (a misspelt key must not silently fall back
to a default).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from petrecon.checks import check_memory, check_parameter
from petrecon.errors import FormatError, ParameterError
from petrecon.io.atomic import atomic_output
from petrecon.recon.osem import OsemProtocol

PROTOCOL_DIR = Path(__file__).resolve().parent.parent / "protocols"
WHOLE_BODY_METHODS = ("stitched", "joint")


#: float32 images OSEM holds at once (estimate, sensitivities per subset, update): for the memory check.
IMAGE_COPIES = 16


@dataclass(frozen=True)
class CorrectionSettings:
    """Which corrections a reconstruction applies (all on by default, as for Siemens data)."""

    normalisation: bool = True
    attenuation: bool = True
    randoms: bool = True
    scatter: bool = True
    scatter_rounds: int = 2
    dead_time: bool = True
    decay: bool = True

    def __post_init__(self) -> None:
        if not (isinstance(self.scatter_rounds, int) and 1 <= self.scatter_rounds <= 10):
            raise ParameterError(f"scatter_rounds must be an integer in [1, 10], got {self.scatter_rounds!r}")


@dataclass(frozen=True)
class ReconstructionProtocol:
    """All parameters of a reconstruction.

    Examples
    --------
    >>> protocol = ReconstructionProtocol.from_toml('[osem]\\nn_iterations = 3\\n')
    >>> protocol.osem.n_iterations, protocol.osem.n_subsets
    (3, 8)
    >>> ReconstructionProtocol.from_toml(protocol.to_toml()) == protocol
    True
    """

    name: str = "clinical"
    description: str = "AW-OSEM 4 iterations x 8 subsets, 5 mm FWHM Gaussian post-filter"
    scanner: str | None = None
    osem: OsemProtocol = field(default_factory=OsemProtocol)
    psf_fwhm_mm: float = 0.0
    corrections: CorrectionSettings = field(default_factory=CorrectionSettings)
    image_shape: tuple[int, int, int] | None = None
    voxel_size_mm: tuple[float, float, float] | None = None
    calibration_bq_per_ml_per_unit: float | None = None
    whole_body: str = "stitched"

    def __post_init__(self) -> None:
        if self.whole_body not in WHOLE_BODY_METHODS:
            raise ParameterError(f"the whole-body method must be one of {', '.join(WHOLE_BODY_METHODS)}, "
                                 f"got {self.whole_body!r}")
        check_parameter("psf_fwhm_mm", self.psf_fwhm_mm, label="psf_fwhm_mm")
        if self.calibration_bq_per_ml_per_unit is not None:
            check_parameter("calibration", self.calibration_bq_per_ml_per_unit, label="calibration bq_per_ml_per_unit")
        if (self.image_shape is None) != (self.voxel_size_mm is None):
            raise ParameterError("give both image shape and voxel_size_mm, or neither")
        if self.image_shape is not None:
            check_memory(self.image_shape, "the image shape", copies=IMAGE_COPIES)

    @classmethod
    def from_toml(cls, text: str, source: str = "<protocol>") -> "ReconstructionProtocol":
        """Parse a protocol; ``source`` names the file in errors."""
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise FormatError(source, "TOML", str(error)) from None
        tables = {"osem", "resolution", "corrections", "whole_body", "image", "calibration"}
        _check_keys(source, "", document, {"name", "description", "scanner"} | tables)
        sections = {name: document.get(name, {}) for name in tables}
        for name, table in sections.items():
            if not isinstance(table, dict):
                raise FormatError(source, f"[{name}]", "must be a table")
        _check_keys(source, "osem", sections["osem"], {f.name for f in dataclasses.fields(OsemProtocol)})
        _check_keys(source, "resolution", sections["resolution"], {"psf_fwhm_mm"})
        _check_keys(source, "corrections", sections["corrections"],
                    {f.name for f in dataclasses.fields(CorrectionSettings)})
        _check_keys(source, "whole_body", sections["whole_body"], {"method"})
        _check_keys(source, "image", sections["image"], {"shape", "voxel_size_mm"})
        _check_keys(source, "calibration", sections["calibration"], {"bq_per_ml_per_unit"})
        image = sections["image"]
        try:
            return cls(
                name=str(document.get("name", cls.name)),
                description=str(document.get("description", cls.description)),
                scanner=document.get("scanner"),
                osem=OsemProtocol(**sections["osem"]),
                psf_fwhm_mm=float(sections["resolution"].get("psf_fwhm_mm", 0.0)),
                corrections=CorrectionSettings(**sections["corrections"]),
                image_shape=tuple(int(n) for n in image["shape"]) if "shape" in image else None,
                voxel_size_mm=tuple(float(v) for v in image["voxel_size_mm"]) if "voxel_size_mm" in image else None,
                calibration_bq_per_ml_per_unit=_optional_float(sections["calibration"].get("bq_per_ml_per_unit")),
                whole_body=str(sections["whole_body"].get("method", cls.whole_body)),
            )
        except (ParameterError, TypeError, ValueError) as error:
            raise FormatError(source, "value", str(error)) from None

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ReconstructionProtocol":
        """Read a protocol file, or a shipped protocol by name (``"clinical"``)."""
        path = Path(path)
        if not path.suffix and (PROTOCOL_DIR / f"{path}.toml").is_file():
            path = PROTOCOL_DIR / f"{path}.toml"
        if not path.is_file():
            raise FormatError(path, "file", f"does not exist (shipped protocols: {', '.join(shipped_protocols())})")
        return cls.from_toml(path.read_text(), str(path))

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the protocol as TOML, atomically."""
        with atomic_output(path, overwrite=overwrite) as temporary:
            temporary.write_text(self.to_toml())
        return Path(path)

    def to_toml(self) -> str:
        """The protocol as a TOML document that :meth:`from_toml` reads back to an equal protocol.

        Tables with nothing in them (no ``[image]`` grid, no ``[calibration]``
        factor) are left out: absent, they read back as the same defaults.
        """
        lines = [f"name = {toml_value(self.name)}", f"description = {toml_value(self.description)}"]
        if self.scanner is not None:
            lines.append(f"scanner = {toml_value(self.scanner)}")
        tables = {
            "osem": dataclasses.asdict(self.osem),
            "resolution": {"psf_fwhm_mm": self.psf_fwhm_mm},
            "corrections": dataclasses.asdict(self.corrections),
            "whole_body": {"method": self.whole_body},
            "image": {} if self.image_shape is None else {"shape": list(self.image_shape),
                                                          "voxel_size_mm": list(self.voxel_size_mm)},
            "calibration": {} if self.calibration_bq_per_ml_per_unit is None else {
                "bq_per_ml_per_unit": self.calibration_bq_per_ml_per_unit},
        }
        for table, values in tables.items():
            if values:  # an empty table says nothing: its absence reads back the same (defaults)
                lines += ["", f"[{table}]"] + [f"{key} = {toml_value(value)}" for key, value in values.items()]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict:
        """Plain dict for provenance records."""
        return dataclasses.asdict(self)

    def dicom_method(self) -> str:
        """The DICOM ReconstructionMethod (0054,1103) of this protocol: algorithm, iterations x subsets, filter.

        ``[PSF <fwhm>mm ]OSEM <iterations>i<subsets>s[ <post-filter fwhm>mm]``, the
        way scanners summarise it (``OSEM3D 4i21s``); at most 22 + 2 x 6
        significant digits characters, well inside the 64 of a DICOM LO value.
        The whole protocol is in the series' provenance element.

        Examples
        --------
        >>> ReconstructionProtocol().dicom_method()
        'OSEM 4i8s 5mm'
        >>> ReconstructionProtocol(psf_fwhm_mm=4.0, osem=OsemProtocol(3, 21, 0.0)).dicom_method()
        'PSF 4mm OSEM 3i21s'
        """
        osem = self.osem
        psf = f"PSF {self.psf_fwhm_mm:g}mm " if self.psf_fwhm_mm > 0 else ""
        post_filter = f" {osem.post_filter_fwhm_mm:g}mm" if osem.post_filter_fwhm_mm > 0 else ""
        return f"{psf}OSEM {osem.n_iterations}i{osem.n_subsets}s{post_filter}"


def shipped_protocols() -> list[str]:
    """Names of the protocols shipped with petrecon."""
    return sorted(path.stem for path in PROTOCOL_DIR.glob("*.toml"))


def _optional_float(value) -> float | None:
    return None if value is None else float(value)


def _check_keys(source: str, table: str, values: dict, allowed: set[str]) -> None:
    unknown = sorted(set(values) - allowed)
    if unknown:
        where = f"[{table}] " if table else ""
        raise FormatError(source, f"{where}{unknown[0]}", f"unknown key; known: {', '.join(sorted(allowed))}")


def toml_value(value) -> str:
    """``value`` (bool, number, string or list of them) as a TOML value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise ParameterError(f"cannot write {value!r} to TOML")
