"""The cohort file of ``petrecon batch``: studies, patient data, protocols and VOIs, validated as a whole.

A cohort is a TOML file; relative paths resolve against its folder::

    protocol = "clinical"               # shipped protocol name, or a protocol TOML path (default of the studies)
    normalisation = "bw"                # SUV normalisation of the table (optional, default bw)
    isocontour = "41%"                  # lesion segmentation: 41%, 50% or a50 (optional, default 41%)
    min_lesion_volume_ml = 0.5          # lesions below: status too-small (optional, default 0)

    [[study]]
    id = "P001"                         # letters, digits, '.', '_' and '-': the output folder's name
    raw = "raw/P001.h5"                 # any input petrecon recon reads: study container, Interfile,
                                        # PETLINK list-mode, Siemens wrapper or export folder, PETSIRD
    scanner = "mmr"                     # optional: for inputs that do not name their scanner
    isotope = "Ga68"                    # optional: for inputs that do not name their isotope
    ct = "ct/P001"                      # mu-map source, at most one of: ct = DICOMDIR,
                                        # dixon = [WATERDIR, FATDIR], mumap = FILE.h5;
                                        # none: the study's own attenuation
    dixon_bone = "atlas"                # optional with dixon: the vertebral bone template
                                        # (petrecon.attenuation.bone_atlas); default "none" (4 classes)
    weight_kg = 72.0
    height_m = 1.78                     # optional (needed for lbm-* and bsa SUVs)
    sex = "M"                           # M, F or O
    injected_dose_mbq = 250.0
    injection_time = 2026-01-05T09:12:00
    scan_time = 2026-01-05T10:14:00     # optional: default injection time + the study's frame_start_s
    rois = ["sphere:0,0,0,10"]          # optional: ROIs of the quantification table (petrecon suv --roi)
    patient = "P001"                    # optional: patient id (a patient's studies on two scanners share it);
                                        # default the study id
    protocol = "mmr.toml"               # optional: this study's protocol (overrides the top-level one)
    harmonisation = "earl1-mmr.toml"    # optional: image harmonisation file; its filtered image is
                                        # quantified too (rows with protocol = its name)
    tracer = "Ga68-pentixafor"          # optional: the DICOM Radiopharmaceutical
    reference = "liver"                 # optional: VOI of the T/B ratios (an organ or an ROI)

    [study.vois]                        # optional: organ reference VOIs (centres, patient LPS mm; fixed
    liver = [-60.0, 10.0, -120.0]       # diameters of petrecon.quant.organs) and lesions (search spheres)
    spleen = [90.0, 60.0, -140.0]
    bone-marrow = [0.0, 40.0, -200.0]
    lesions = ["nodule:sphere:-80,20,-60,15"]

    [study.info]                        # optional: free scalar values, copied as columns into the table
    group = "treated"

Times are local date-times without a UTC offset, as DICOM stores them (a TOML
date-time or an ISO 8601 string). :func:`read_cohort` checks every key, type and
file before any work starts; the first problem is a :class:`~petrecon.errors.FormatError`
that names the cohort file, the study id and the key. Each protocol and
harmonisation file is read once, however many studies name it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from petrecon.attenuation.dixon import BONE_MODELS
from petrecon.errors import FormatError, ParameterError, PetreconError
from petrecon.geometry import SCANNERS
from petrecon.isotopes import get_isotope
from petrecon.io.study_input import detect_format
from petrecon.quant.image_harmonisation import ImageHarmonisation
from petrecon.quant.lesions import ISOCONTOURS, RECORD_KEYS, VoiSet, parse_lesion
from petrecon.quant.organs import ORGAN_VOI_DIAMETER_MM
from petrecon.quant.report import parse_roi
from petrecon.quant.suv import NORMALISATIONS
from petrecon.recon.protocol import ReconstructionProtocol

_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_REQUIRED = ("id", "raw", "weight_kg", "sex", "injected_dose_mbq", "injection_time")
_OPTIONAL = ("scanner", "isotope", "height_m", "scan_time", "rois", "ct", "dixon", "dixon_bone", "mumap", "patient",
             "protocol", "harmonisation", "tracer", "reference", "vois", "info")
#: Columns of the quantification table, in order; the ``[study.info]`` keys follow (and may not repeat them).
TABLE_COLUMNS = ("study", "patient", "scanner", "protocol", "voi", "kind", "units", *RECORD_KEYS[2:])
_TOP_LEVEL = ("protocol", "normalisation", "isocontour", "min_lesion_volume_ml", "study")


@dataclass(frozen=True)
class PatientData:
    """What the SUV and the DICOM header need to know about the patient and the injection."""

    weight_kg: float
    sex: str
    injected_dose_bq: float
    injection_time: dt.datetime
    height_m: float | None = None
    scan_time: dt.datetime | None = None


@dataclass(frozen=True)
class MuMapSource:
    """Where the attenuation comes from: ``study`` (its own), ``ct``, ``dixon`` or ``mumap``."""

    kind: str = "study"
    paths: tuple[Path, ...] = ()
    dixon_bone: str = "none"


@dataclass(frozen=True)
class CohortStudy:
    """One study of a cohort (all paths absolute)."""

    id: str
    raw: Path
    mu: MuMapSource
    patient: PatientData
    rois: tuple[str, ...] = ()
    scanner: str | None = None
    isotope: str | None = None
    patient_id: str = ""
    protocol_source: str = ""
    harmonisation: Path | None = None
    tracer: str | None = None
    vois: VoiSet = VoiSet()
    info: tuple[tuple[str, object], ...] = ()

    @property
    def patient_name(self) -> str:
        """The patient id of the table (default: the study id)."""
        return self.patient_id or self.id


@dataclass(frozen=True)
class Cohort:
    """A validated cohort file."""

    path: Path
    protocol: ReconstructionProtocol | None
    protocol_source: str
    normalisation: str
    studies: tuple[CohortStudy, ...]
    protocols: dict[str, ReconstructionProtocol] = field(default_factory=dict)
    harmonisations: dict[Path, ImageHarmonisation] = field(default_factory=dict)

    def study_protocol(self, study: CohortStudy) -> ReconstructionProtocol:
        """The protocol ``study`` is reconstructed with (its own, else the cohort's)."""
        return self.protocols[study.protocol_source]

    def info_keys(self) -> list[str]:
        """The ``[study.info]`` keys of all studies, in order of first appearance: the table's extra columns."""
        return list(dict.fromkeys(key for study in self.studies for key, _ in study.info))


def read_cohort(path: str | os.PathLike) -> Cohort:
    """Read and validate a cohort file (format in the module docstring).

    Raises
    ------
    FormatError
        Naming the file, the study and the key of the first problem: TOML syntax,
        unknown or missing keys, wrong types or values, missing files, duplicate ids.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "cohort.toml").write_text('protocol = "clinical"\\n[[study]]\\nid = "P1"\\n')
    >>> read_cohort(folder / "cohort.toml")
    Traceback (most recent call last):
    ...
    petrecon.errors.FormatError: .../cohort.toml: study 'P1': missing key 'raw'
    """
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise FormatError(path, "file", "does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise FormatError(path, "file", f"cannot be read ({error})") from None
    except tomllib.TOMLDecodeError as error:
        raise FormatError(path, "TOML", str(error)) from None
    unknown = set(document) - set(_TOP_LEVEL)
    if unknown:
        raise FormatError(path, "top level", f"unknown key(s) {', '.join(sorted(unknown))}; "
                                             "known: protocol, normalisation, isocontour, min_lesion_volume_ml, "
                                             "[[study]]")
    tables = document.get("study")
    every_study_names_one = isinstance(tables, list) and tables and all(isinstance(t, dict) and "protocol" in t
                                                                        for t in tables)
    if "protocol" not in document and not every_study_names_one:
        raise FormatError(path, "protocol", "is missing (a shipped name such as \"clinical\" or a TOML path)")
    protocol_source = str(document.get("protocol", ""))
    protocols = {protocol_source: _protocol(path, "protocol", protocol_source)} if protocol_source else {}
    normalisation = str(document.get("normalisation", "bw"))
    if normalisation not in NORMALISATIONS:
        raise FormatError(path, "normalisation", f"is {normalisation!r}; choose one of {', '.join(NORMALISATIONS)}")
    segmentation = _segmentation(path, document)
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise FormatError(path, "[[study]]", "the cohort lists no studies (one [[study]] table per study)")
    studies, seen, harmonisations = [], set(), {}
    for index, table in enumerate(tables):
        study = _study(path, index, table, normalisation, segmentation)
        study = _with_files(path, study, table, protocol_source, protocols, harmonisations)
        if study.id in seen:
            raise FormatError(path, f"study {study.id!r}", "key 'id': the id is used twice")
        seen.add(study.id)
        studies.append(study)
    return Cohort(path, protocols.get(protocol_source), protocol_source, normalisation, tuple(studies), protocols,
                  harmonisations)


def _segmentation(path: Path, document: dict) -> dict:
    """The top-level lesion segmentation settings (``isocontour``, ``min_lesion_volume_ml``)."""
    isocontour = document.get("isocontour", "41%")
    if isocontour not in ISOCONTOURS:
        raise FormatError(path, "isocontour", f"is {isocontour!r}; choose one of {', '.join(ISOCONTOURS)}")
    minimum = document.get("min_lesion_volume_ml", 0.0)
    if isinstance(minimum, bool) or not isinstance(minimum, (int, float)) or not minimum >= 0:
        raise FormatError(path, "min_lesion_volume_ml", f"must be a number >= 0 (ml), got {minimum!r}")
    return {"isocontour": isocontour, "min_volume_ml": float(minimum)}


def _with_files(path: Path, study: CohortStudy, table: dict, default_source: str,
                protocols: dict[str, ReconstructionProtocol],
                harmonisations: dict[Path, ImageHarmonisation]) -> CohortStudy:
    """``study`` with its protocol source and harmonisation file, each file read once into the caches."""
    where = f"study {study.id!r}"
    source = table.get("protocol", default_source)
    if not isinstance(source, str) or not source:
        raise FormatError(path, where, "key 'protocol': must be a shipped protocol name or a TOML path")
    if source not in protocols:
        protocols[source] = _protocol(path, f"{where}: key 'protocol'", source)
    harmonisation = None
    if "harmonisation" in table:
        harmonisation = _existing(path, table["harmonisation"], "file",
                                  lambda m: FormatError(path, where, f"key 'harmonisation': {m}"))
        if harmonisation not in harmonisations:
            try:
                harmonisations[harmonisation] = ImageHarmonisation.load(harmonisation)
            except PetreconError as error:
                raise FormatError(path, where, f"key 'harmonisation': {error}") from None
        if harmonisations[harmonisation].name == protocols[source].name:
            raise FormatError(path, where, f"key 'harmonisation': its name {protocols[source].name!r} is the "
                                           "protocol's too; the table's protocol column could not tell them apart")
    return dataclasses.replace(study, protocol_source=source, harmonisation=harmonisation)


def _protocol(path: Path, where: str, source: str) -> ReconstructionProtocol:
    candidate = Path(source)
    if candidate.suffix:  # a file, relative to the cohort
        candidate = candidate if candidate.is_absolute() else path.parent / candidate
    try:
        return ReconstructionProtocol.load(candidate)
    except PetreconError as error:
        raise FormatError(path, where, str(error)) from None


def _study(path: Path, index: int, table: dict, normalisation: str, segmentation: dict) -> CohortStudy:
    where = f"study {table['id']!r}" if "id" in table else f"study #{index + 1}"

    def fail(key: str, message: str) -> FormatError:
        return FormatError(path, where, f"key {key!r}: {message}")

    unknown = set(table) - set(_REQUIRED) - set(_OPTIONAL)
    if unknown:
        raise FormatError(path, where, f"unknown key(s) {', '.join(sorted(unknown))}; "
                                       f"known: {', '.join(_REQUIRED + _OPTIONAL)}")
    for key in _REQUIRED:
        if key not in table:
            raise FormatError(path, where, f"missing key {key!r}")
    study_id = table["id"]
    if not isinstance(study_id, str) or not _ID_PATTERN.match(study_id):
        raise fail("id", "must be a string of letters, digits, '.', '_' or '-' (it names the output folder)")
    raw = _raw_input(path, table["raw"], lambda message: fail("raw", message))
    scanner = table.get("scanner")
    if scanner is not None and scanner not in SCANNERS:
        raise fail("scanner", f"unknown scanner {scanner!r}; known: {', '.join(SCANNERS)}")
    isotope = table.get("isotope")
    if isotope is not None:
        try:
            isotope = get_isotope(isotope).name
        except PetreconError as error:
            raise fail("isotope", str(error)) from None
    sources = [key for key in ("ct", "dixon", "mumap") if key in table]
    if len(sources) > 1:
        raise fail(sources[1], f"give at most one mu-map source, not {' and '.join(sources)}")
    if "dixon_bone" in table and sources != ["dixon"]:
        raise fail("dixon_bone", "needs dixon = [WATERDIR, FATDIR]")
    mu = MuMapSource()
    if sources == ["ct"]:
        mu = MuMapSource("ct", (_existing(path, table["ct"], "folder", lambda m: fail("ct", m)),))
    elif sources == ["dixon"]:
        folders = table["dixon"]
        if not isinstance(folders, list) or len(folders) != 2:
            raise fail("dixon", "must be [WATERDIR, FATDIR]")
        bone = table.get("dixon_bone", "none")
        if bone not in BONE_MODELS:
            raise fail("dixon_bone", f"must be one of {', '.join(BONE_MODELS)}, got {bone!r}")
        mu = MuMapSource("dixon", tuple(_existing(path, f, "folder", lambda m: fail("dixon", m)) for f in folders),
                         bone)
    elif sources == ["mumap"]:
        mu = MuMapSource("mumap", (_existing(path, table["mumap"], "file", lambda m: fail("mumap", m)),))
    patient = PatientData(
        weight_kg=_positive(table, "weight_kg", fail),
        sex=_sex(table["sex"], fail),
        injected_dose_bq=_positive(table, "injected_dose_mbq", fail) * 1e6,
        injection_time=_local_time(table["injection_time"], lambda m: fail("injection_time", m)),
        height_m=_positive(table, "height_m", fail) if "height_m" in table else None,
        scan_time=_local_time(table["scan_time"], lambda m: fail("scan_time", m)) if "scan_time" in table else None)
    if patient.scan_time is not None and patient.scan_time < patient.injection_time:
        raise fail("scan_time", "is before the injection time")
    if normalisation != "bw" and patient.height_m is None:
        raise fail("height_m", f"is needed for the {normalisation} SUV normalisation")
    rois = table.get("rois", [])
    if not isinstance(rois, list) or not all(isinstance(r, str) for r in rois):
        raise fail("rois", 'must be a list of strings such as ["sphere:0,0,0,10"]')
    for roi in rois:
        try:
            parse_roi(roi)
        except PetreconError as error:
            raise fail("rois", str(error)) from None
    for key in ("patient", "tracer"):
        if key in table and (not isinstance(table[key], str) or not table[key].strip()):
            raise fail(key, "must be a non-empty string")
    if "patient" in table and not _ID_PATTERN.match(table["patient"]):
        raise fail("patient", "must be letters, digits, '.', '_' or '-'")
    if "tracer" in table and len(table["tracer"]) > 64:
        raise fail("tracer", "is longer than the 64 characters of DICOM's Radiopharmaceutical")
    vois = _vois(table, tuple(rois), segmentation, fail)
    info = table.get("info", {})
    if not isinstance(info, dict) or not all(isinstance(v, (str, int, float, bool, dt.date)) for v in info.values()):
        raise fail("info", "must be a table of scalar values ([study.info] group = \"A\")")
    clash = sorted(set(info) & set(TABLE_COLUMNS))
    if clash:
        raise fail("info", f"key(s) {', '.join(clash)} name columns of the quantification table")
    return CohortStudy(study_id, raw, mu, patient, tuple(rois), scanner, isotope,
                       patient_id=table.get("patient", ""), tracer=table.get("tracer"), vois=vois,
                       info=tuple(info.items()))


def _vois(table: dict, rois: tuple[str, ...], segmentation: dict, fail) -> VoiSet:
    """The study's VoiSet: ``[study.vois]`` organs and lesions, its ROIs, ``reference``, the segmentation."""
    vois = table.get("vois", {})
    if not isinstance(vois, dict):
        raise fail("vois", "must be a table: organ = [x, y, z] and lesions = [\"NAME:sphere:x,y,z,r\", ...]")
    organs = {}
    for name, centre in vois.items():
        if name == "lesions":
            continue
        if name not in ORGAN_VOI_DIAMETER_MM:
            raise fail(f"vois.{name}", f"unknown organ; known: {', '.join(ORGAN_VOI_DIAMETER_MM)}, lesions")
        if not isinstance(centre, list) or len(centre) != 3 or \
                not all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in centre):
            raise fail(f"vois.{name}", "must be the centre [x, y, z] in mm (DICOM patient coordinates)")
        organs[name] = tuple(float(c) for c in centre)
    texts = vois.get("lesions", [])
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise fail("vois.lesions", 'must be a list of strings such as ["nodule:sphere:x,y,z,r"]')
    reference = table.get("reference")
    if reference is not None and not isinstance(reference, str):
        raise fail("reference", "must be the name of an organ VOI or an ROI")
    try:
        lesions = dict(parse_lesion(text) for text in texts)
        if len(lesions) != len(texts):
            raise ParameterError("a lesion name is given twice")
    except PetreconError as error:
        raise fail("vois.lesions", str(error)) from None
    try:
        return VoiSet(organs, lesions, rois, reference, **segmentation)
    except PetreconError as error:
        raise fail("reference" if "reference" in str(error) else "vois", str(error)) from None


def _raw_input(cohort_path: Path, value, fail) -> Path:
    """The raw data path: a file or a Siemens export folder of a format :func:`open_study` reads."""
    kind = "folder" if isinstance(value, str) and value and _resolve(cohort_path, value).is_dir() else "file"
    raw = _existing(cohort_path, value, kind, fail)
    try:
        detect_format(raw)
    except FormatError as error:
        raise fail(str(error)) from None
    return raw


def _resolve(cohort_path: Path, value: str) -> Path:
    candidate = Path(value).expanduser()
    return candidate if candidate.is_absolute() else cohort_path.parent / candidate


def _existing(cohort_path: Path, value, kind: str, fail) -> Path:
    if not isinstance(value, str) or not value:
        raise fail(f"must be a path (string) to a {kind}")
    candidate = _resolve(cohort_path, value)
    exists = candidate.is_file() if kind == "file" else candidate.is_dir()
    if not exists:
        raise fail(f"{candidate} is not an existing {kind}")
    return candidate.resolve()


def _positive(table: dict, key: str, fail) -> float:
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise fail(key, f"must be a number > 0, got {value!r}")
    return float(value)


def _sex(value, fail) -> str:
    if value not in ("M", "F", "O"):
        raise fail("sex", f"must be M, F or O, got {value!r}")
    return value


def _local_time(value, fail) -> dt.datetime:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise fail(f"{value!r} is not an ISO 8601 date-time (2026-01-05T09:12:00)") from None
    if not isinstance(value, dt.datetime):
        raise fail(f"must be a date-time (2026-01-05T09:12:00), got {value!r}")
    if value.tzinfo is not None:
        raise fail("give the local time without a UTC offset (DICOM times are local)")
    return value
