"""Any supported input to a study :class:`~petrecon.io.Container`: :func:`open_study`.

Formats, recognised by content first, then by suffix (reference/formats.md):

==============================  ==============================================================
input                           read as
==============================  ==============================================================
petrecon HDF5 container         :func:`~petrecon.io.read_container` (HDF5 signature)
Interfile ``.hs`` / ``.s.hdr``  :func:`~petrecon.io.interfile.read_interfile_sinograms`
                                (text starting ``!INTERFILE``); a list-mode header is
                                histogrammed from its ``.l`` data file
Interfile main ``.mhdr``        every sinogram / normalisation data set it lists
PETLINK ``.l`` / ``.bf``        list-mode words, histogrammed on the fly
                                (:mod:`petrecon.io.listmode`)
Siemens DICOM wrapper ``.dcm``  :func:`~petrecon.io.siemens.read_wrapper`: list-mode or sinograms
Siemens export folder           :func:`~petrecon.io.siemens.open_export`: its one list-mode
                                object, else its sinograms, plus its normalisation
PETSIRD                         :func:`~petrecon.io.petsird_io.read_petsird` (yardl magic bytes),
                                events histogrammed like list-mode
==============================  ==============================================================

Sinogram names follow the Interfile ``scan data type description``
(``prompts``, ``delays``, ``randoms``, ``scatter``, ``normalisation``; a
single unnamed data set is ``prompts``). Study facts found in Interfile
headers become container attributes: ``duration_s`` (image duration),
``frame_start_s`` (image relative start time), ``isotope``, ``half_life_s``,
``injected_activity_bq``, ``injection_datetime``, ``patient_weight_kg``,
``radiopharmaceutical`` (the Interfile 3.3 key of the tracer's name).

Raw inputs rarely carry everything a quantitative reconstruction needs.
:func:`plan_corrections` switches off each correction the study cannot
support and says why, so the caller can warn and record it in the
provenance: nothing is dropped silently.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
import os
from pathlib import Path

import numpy as np

from petrecon.checks import check_correction, check_parameter, check_uptake
from petrecon.errors import FormatError, ParameterError
from petrecon.geometry import SCANNERS, SinogramLayout, default_layout
from petrecon.geometry.patient import bed_attributes
from petrecon.io.interfile import bed_position_mm, patient_position
from petrecon.io.container import Container, read_container

LOG = logging.getLogger(__name__)

#: Formats :func:`detect_format` returns.
FORMATS = ("container", "interfile", "interfile-main", "listmode", "siemens-dicom", "siemens-export", "petsird")

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_PETSIRD_MAGIC = b"yardl"
_SINOGRAM_NAMES = {"prompts": "prompts", "prompt": "prompts", "delays": "delays", "delayed": "delays",
                   "randoms": "randoms", "scatter": "scatter", "normalisation": "normalisation",
                   "normalization": "normalisation", "norm": "normalisation", "data1": "prompts"}
#: Correction switch -> (what the study must hold, in words).
_NEEDS = {"normalisation": "a normalisation sinogram",
          "attenuation": "attenuation factors or a mu-map (give --mumap-ct, --mumap-dixon or --mumap)",
          "randoms": "a randoms or delays sinogram",
          "scatter": "a scatter sinogram or a mu-map for single-scatter simulation",
          "dead_time": "a live fraction (bucket singles and a dead-time constant)",
          "decay": "the isotope (give --isotope)"}


def detect_format(path: str | os.PathLike) -> str:
    """Which of :data:`FORMATS` ``path`` holds (content first, then suffix).

    Raises
    ------
    FormatError
        If the path does not exist or is none of the supported formats.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "scan.hs"
    >>> _ = path.write_text("!INTERFILE :=\\n")
    >>> detect_format(path)
    'interfile'
    """
    path = Path(path)
    if path.is_dir():
        return "siemens-export"
    if not path.is_file():
        raise FormatError(path, "file", "does not exist")
    with open(path, "rb") as f:
        head = f.read(512)
    suffix = path.suffix.lower()
    if head.startswith(_HDF5_SIGNATURE):
        return "container"
    if head.startswith(_PETSIRD_MAGIC):
        return "petsird"
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").upper().lstrip(b"!%").startswith(b"INTERFILE") or \
            b"data set" in head.lower() and suffix == ".mhdr":
        return "interfile-main" if suffix == ".mhdr" else "interfile"
    if suffix in (".dcm", ".ima") or head[128:132] == b"DICM":
        return "siemens-dicom"
    if suffix in (".l", ".bf"):
        return "listmode"
    raise FormatError(path, "format", "is not a petrecon container (.h5), Interfile (.hs/.s.hdr/.mhdr), PETLINK "
                                      "list-mode (.l/.bf), Siemens DICOM raw data (.dcm or export folder) or PETSIRD")


def open_study(path: str | os.PathLike, *, scanner: str | SinogramLayout | None = None,
               frame: tuple[float, float | None] | None = None, normalisation: str | os.PathLike | None = None,
               progress: bool = True) -> Container:
    """Read any supported input (module docstring) as a study container, list-mode histogrammed.

    Parameters
    ----------
    path : path-like
        File or Siemens export folder.
    scanner : str or SinogramLayout, optional
        Registry scanner (its default layout) or a layout, for inputs that do
        not name their scanner (list-mode, PETSIRD); checked against
        Interfile headers.
    frame : (start_s, end_s), optional
        List-mode window in seconds from the acquisition start (``end_s``
        None: to the end); default the whole acquisition. Refused for
        sinogram inputs.
    normalisation : path-like, optional
        Normalisation sinogram: an Interfile sinogram header, a Siemens
        normalisation wrapper, or a container with a ``normalisation``
        sinogram (replaces the input's own).
    progress : bool
        Progress bars while histogramming.

    Returns
    -------
    Container
        Sinograms, layout and attributes; ``attributes["input_format"]``
        names the format, ``provenance["inputs_read"]`` lists the files read.

    Raises
    ------
    FormatError
        Unknown or broken input (names the file and the field).
    ParameterError
        A frame for a sinogram input, or a list-mode input without a scanner.
    """
    path = Path(path)
    kind = detect_format(path)
    if _is_listmode(path, kind):
        study = _listmode_study(path, scanner, frame, progress)
    elif frame is not None:
        raise ParameterError(f"{path}: a frame applies to list-mode input only; this is a {kind} input of sinograms")
    elif kind == "container":
        study = read_container(path)
        if study.layout is None or "prompts" not in study.sinograms:
            held = ", ".join(f"volume {name}" for name in study.volumes) or "nothing"
            raise FormatError(path, "/sinograms/prompts", f"is missing: the container holds {held}, not raw "
                                                          "data to reconstruct")
    elif kind == "interfile":
        study = _interfile_study(path, scanner)
    elif kind == "interfile-main":
        study = _main_header_study(path, scanner)
    elif kind == "siemens-dicom":
        study = _wrapper_study(path, scanner)
    else:
        study = _export_study(path, scanner)
    study.attributes["input_format"] = kind
    inputs = study.provenance.setdefault("inputs_read", [])
    if str(path) not in inputs:
        inputs.append(str(path))
    if normalisation is not None:
        attach_normalisation(study, Path(normalisation), scanner)
    return study


def plan_corrections(study: Container, protocol, *, mu_given: bool = False, listmode_frames: bool = False):
    """Switch off the corrections ``study`` cannot support; say which and why.

    Calibration is not planned here: without one a study cannot be
    quantified at all, and :func:`~petrecon.recon.study.reconstruct_study`
    refuses it.

    Parameters
    ----------
    study : Container
    protocol : ReconstructionProtocol
    mu_given : bool
        Whether an explicit mu-map accompanies the study.
    listmode_frames : bool
        ``study`` is the count-free base of list-mode frames, which will
        carry prompts and delays.

    Returns
    -------
    protocol : ReconstructionProtocol
        With the unsupported corrections off.
    not_applied : dict of str to str
        Correction -> why it is off.

    Examples
    --------
    >>> from petrecon.recon.protocol import ReconstructionProtocol
    >>> _, off = plan_corrections(Container(attributes={"isotope": "F18"}), ReconstructionProtocol())
    >>> sorted(off)
    ['attenuation', 'dead_time', 'normalisation', 'randoms', 'scatter']
    """
    sinograms, attributes = study.sinograms, study.attributes
    has_mu = mu_given or "mu_per_cm" in study.volumes
    available = {
        "normalisation": "normalisation" in sinograms,
        "attenuation": has_mu or "attenuation_factors" in sinograms,
        "randoms": listmode_frames or "randoms" in sinograms or "delays" in sinograms,
        "scatter": "scatter" in sinograms or has_mu,
        "dead_time": "live_fraction" in attributes,
        "decay": "half_life_s" in attributes or "isotope" in attributes,
    }
    corrections = protocol.corrections
    not_applied = {}
    for name, present in available.items():
        if getattr(corrections, name) and not present:
            not_applied[name] = f"the input lacks {_NEEDS[name]}"
    switched = dataclasses.replace(corrections, **{name: False for name in not_applied})
    return dataclasses.replace(protocol, corrections=switched), not_applied


# ------------------------------------------------------------------------------------------ readers
def _layout_for(scanner: str | SinogramLayout | None, path: Path, named: str | None = None) -> SinogramLayout:
    if isinstance(scanner, SinogramLayout):
        return scanner
    name = scanner or named
    if not name:
        raise ParameterError(f"{path}: the input does not name its scanner; give one (--scanner: "
                             f"{', '.join(SCANNERS)})")
    return default_layout(name, tof=False)


def open_listmode(path: str | os.PathLike, *, scanner: str | SinogramLayout | None = None,
                  normalisation: str | os.PathLike | None = None):
    """A list-mode input's event source and its study without counts (for framing it yourself).

    Parameters as :func:`open_study`; ``path`` is a ``.l``/``.bf`` file, an
    Interfile list-mode header, a Siemens list-mode wrapper or export
    folder, or a PETSIRD file.

    Returns
    -------
    source : Path or numpy.ndarray
        The PETLINK file (or, for PETSIRD, the events as PETLINK words).
    base : Container
        Layout, header attributes and the normalisation when given; no sinograms of counts.

    Raises
    ------
    FormatError
        If the input holds sinograms, not list-mode.
    """
    from petrecon.io.interfile import read_header, resolve_data_file
    from petrecon.io.listmode import check_listmode_header
    from petrecon.io.siemens import classify, open_export, read_wrapper

    path = Path(path)
    kind = detect_format(path)
    header = None
    words_path = path
    table_origin = None
    if kind == "interfile":
        header = read_header(path)
        if classify(header) == "listmode":
            words_path = resolve_data_file(header)
    elif kind == "listmode" and Path(f"{path}.hdr").is_file():   # a raw .l with its Interfile header beside it
        header = read_header(Path(f"{path}.hdr"))
    elif kind in ("siemens-dicom", "siemens-export"):
        found = open_export(path).listmode if kind == "siemens-export" else [read_wrapper(path)]
        if len(found) != 1 or found[0].kind != "listmode":
            raise FormatError(path, "kind", "is not one list-mode object")
        header, words_path = found[0].header, found[0].payload_path
        table_origin = found[0].table_position_origin_mm
        norms = open_export(path).norm if kind == "siemens-export" and normalisation is None else []
        normalisation = norms[0].dicom_path if len(norms) == 1 else normalisation
    if kind not in ("listmode", "petsird") and words_path == path:
        raise FormatError(path, "format", f"is a {kind} input of sinograms, not list-mode")
    named = header.text("scanner name", "").strip() or None if header is not None else None
    if kind == "petsird":
        from petrecon.io.petsird_io import read_petsird

        scan = read_petsird(path)
        layout = _layout_for(scanner, path, _registry_match(scan.scanner))
        source = scan.listmode_words(layout)
    else:
        layout = _layout_for(scanner, path, named)
        source = words_path
    check_listmode_header(header, layout)
    attributes = {**(header_attributes(header) if header is not None else {}), "input_format": kind,
                  "listmode_file": str(words_path)}
    if table_origin is not None:  # places the hardware mu-maps (petrecon.io.hardware_mumap)
        attributes["table_position_origin_mm"] = list(table_origin)
    base = Container(layout=layout, attributes=attributes,
                     provenance={"inputs_read": [str(path)] + ([str(words_path)] if words_path != path else [])})
    if normalisation is not None:
        attach_normalisation(base, Path(normalisation), scanner)
    return source, base


def _listmode_study(path: Path, scanner, frame, progress: bool) -> Container:
    from petrecon.io.listmode import histogram_listmode

    source, study = open_listmode(path, scanner=scanner)
    start_s, end_s = frame if frame is not None else (0.0, None)
    histogram = histogram_listmode(source, study.layout, start_s=start_s, end_s=end_s, progress=progress).check(path)
    study.sinograms.update({"prompts": histogram.prompts, "delays": histogram.delays})
    study.attributes.update({"frame_start_s": histogram.start_s, "duration_s": histogram.duration_s,
                             "n_prompts": histogram.n_prompts, "n_delays": histogram.n_delays,
                             "n_dropped": histogram.n_dropped, "n_unmapped": histogram.n_unmapped,
                             "bucket_singles_per_s": {str(k): v for k, v in histogram.singles_per_s.items()}})
    if "component_normalisation" in study.attributes:
        attach_normalisation(study, Path(study.attributes["component_normalisation"]), scanner,
                             bucket_singles_per_s=histogram.singles_per_s)
    return study


def _registry_match(petsird_scanner) -> str | None:
    """The registry scanner with the PETSIRD scanner's rings, crystals and radius (1 %), if any."""
    for name, candidate in SCANNERS.items():
        if (candidate.n_rings, candidate.n_crystals_per_ring) == (petsird_scanner.n_rings,
                                                                   petsird_scanner.n_crystals_per_ring) and \
                abs(candidate.radius_mm - petsird_scanner.radius_mm) < 0.01 * candidate.radius_mm:
            return name
    return None


def _is_listmode(path: Path, kind: str) -> bool:
    """Whether the input is list-mode (raw words, PETSIRD, or an Interfile / Siemens list-mode object)."""
    if kind in ("listmode", "petsird"):
        return True
    if kind == "interfile":
        from petrecon.io.interfile import read_header
        from petrecon.io.siemens import classify

        return classify(read_header(path)) == "listmode"
    if kind == "siemens-dicom":
        from petrecon.io.siemens import read_wrapper

        return read_wrapper(path).kind == "listmode"
    if kind == "siemens-export":
        from petrecon.io.siemens import open_export

        return bool(open_export(path).listmode)
    return False


def _interfile_study(path: Path, scanner) -> Container:
    from petrecon.io.interfile import read_header, read_interfile_sinograms

    header = read_header(path)
    sinograms = read_interfile_sinograms(path, scanner=_scanner_name(scanner), header=header)
    study = _sinogram_container(path, sinograms.data, sinograms.layout)
    study.attributes.update(header_attributes(header))
    return study


def _main_header_study(path: Path, scanner) -> Container:
    from petrecon.io.interfile import read_header, read_interfile_sinograms, read_main_header

    study = None
    for kind, member in read_main_header(path):
        sinograms = read_interfile_sinograms(member, scanner=_scanner_name(scanner))
        data = sinograms.data
        if "norm" in kind.lower() and len(data) == 1:
            data = {"normalisation": next(iter(data.values()))}
        if study is None:
            study = _sinogram_container(member, data, sinograms.layout)
            study.attributes.update(header_attributes(read_header(member)))
        elif sinograms.layout != study.layout:
            raise FormatError(member, "geometry", "differs from the first data set of the main header")
        else:
            study.sinograms.update(_sinogram_container(member, data, sinograms.layout).sinograms)
    if study is None:
        raise FormatError(path, "number of data sets", "lists no data set")
    return study


def _wrapper_study(path: Path, scanner) -> Container:
    from petrecon.io.siemens import read_wrapper

    wrapper = read_wrapper(path)
    if wrapper.kind != "sinogram":
        raise FormatError(path, "kind", f"is a {wrapper.kind} object; give list-mode or sinograms")
    sinograms = wrapper.read_sinograms(_scanner_name(scanner))
    study = _sinogram_container(path, sinograms.data, sinograms.layout)
    study.attributes.update(header_attributes(wrapper.header))
    return study


def _export_study(path: Path, scanner) -> Container:
    from petrecon.io.siemens import open_export

    export = open_export(path)
    if len(export.sinogram) != 1:
        raise FormatError(path, "objects", f"the export holds {len(export.listmode)} list-mode and "
                                           f"{len(export.sinogram)} sinogram objects; name one .dcm")
    study = _wrapper_study(export.sinogram[0].dicom_path, scanner)
    if len(export.norm) == 1:
        attach_normalisation(study, export.norm[0].dicom_path, scanner)
    elif export.norm:
        LOG.warning("%s: %d normalisation objects; none used (name one with --norm)", path, len(export.norm))
    return study


def attach_normalisation(study: Container, path: Path, scanner=None, *,
                         bucket_singles_per_s: dict | None = None) -> None:
    """Give ``study`` the normalisation of ``path`` (a sinogram, a ``petrecon norm`` file or a Siemens component file).

    A Siemens component-based normalisation (``.n.hdr`` or its DICOM
    wrapper, :mod:`petrecon.io.siemens_norm`) is expanded into the study
    layout's bin efficiencies
    (:func:`~petrecon.recon.corrections.component_norm.bin_efficiencies`,
    with the dead-time parameters when ``bucket_singles_per_s`` is given), its
    path kept in the attribute ``component_normalisation``; its scanner
    quantification factor becomes the study's
    ``calibration_bq_per_ml_per_unit`` unless the study has one
    (``calibration_source`` says where it came from); the attribute
    ``component_normalisation_dead_time`` says whether its dead-time
    parameters were applied (mMR buckets only). The file is listed in
    ``provenance["inputs_read"]``.
    """
    if is_siemens_component_file(path):
        from petrecon.io.siemens_norm import read_component_normalisation
        from petrecon.recon.corrections.component_norm import bin_efficiencies

        from petrecon.recon.corrections.component_norm import BUCKETS

        norm = read_component_normalisation(path, norm_scanner(scanner, study.layout))
        if bucket_singles_per_s and norm.scanner.name not in BUCKETS:
            LOG.warning("%s: dead time from bucket singles is known for %s only; the file's dead-time parameters "
                        "are not applied", path, ", ".join(BUCKETS))
            bucket_singles_per_s = None
        study.sinograms["normalisation"] = bin_efficiencies(norm, study.layout,
                                                            bucket_singles_per_s=bucket_singles_per_s)
        study.attributes["component_normalisation_dead_time"] = bool(bucket_singles_per_s)
        study.attributes["component_normalisation"] = str(path)
        if norm.quantification_factor is not None and "calibration_bq_per_ml_per_unit" not in study.attributes:
            study.attributes["calibration_bq_per_ml_per_unit"] = norm.quantification_factor
            study.attributes["calibration_source"] = f"{path}: scanner quantification factor (Bq*s/ECAT counts)"
    else:
        study.sinograms["normalisation"] = _normalisation_sinogram(path, study.layout, scanner)
    inputs = study.provenance.setdefault("inputs_read", [])
    if str(path) not in inputs:
        inputs.append(str(path))


def norm_scanner(scanner, layout: SinogramLayout | None) -> str | None:
    """The registry scanner a normalisation must belong to: the caller's, else the study layout's (TOF variant
    dropped: normalisation files describe the scanner, not its TOF binning)."""
    name = _scanner_name(scanner) or (layout.scanner.name if layout is not None else None)
    return None if name is None else name.removesuffix("-tof")


def is_siemens_component_file(path: Path) -> bool:
    """Whether ``path`` is a Siemens component-based normalisation (Interfile header or DICOM wrapper)."""
    from petrecon.io.interfile import is_component_normalisation, read_header
    from petrecon.io.siemens import read_wrapper

    kind = detect_format(path)
    if kind == "interfile":
        return is_component_normalisation(read_header(path))
    return kind == "siemens-dicom" and is_component_normalisation(read_wrapper(path).header)


def _normalisation_sinogram(path: Path, layout: SinogramLayout, scanner) -> np.ndarray:
    kind = detect_format(path)
    if kind == "container" and _is_component_normalisation(path):
        from petrecon.recon.corrections.normalisation_file import read_normalisation

        data, norm_layout = read_normalisation(path, layout).sinogram(), layout
    elif kind == "container":
        container = read_container(path)
        if "normalisation" not in container.sinograms:
            raise FormatError(path, "/sinograms/normalisation", "is missing")
        data, norm_layout = container.sinograms["normalisation"], container.layout
    elif kind in ("interfile", "siemens-dicom"):
        from petrecon.io.interfile import read_interfile_sinograms
        from petrecon.io.siemens import read_wrapper

        read = read_wrapper(path).read_sinograms if kind == "siemens-dicom" else \
            (lambda name: read_interfile_sinograms(path, scanner=name))
        sinograms = read(_scanner_name(scanner) or layout.scanner.name)
        data, norm_layout = _single(path, sinograms.data), sinograms.layout
    else:
        raise FormatError(path, "format", f"is {kind}; a normalisation is an Interfile or container sinogram")
    if norm_layout is None or norm_layout.shape != layout.shape:
        raise FormatError(path, "shape", f"normalisation {None if norm_layout is None else norm_layout.shape} "
                                         f"does not match the study's sinograms {layout.shape}")
    check_correction("normalisation", data, str(path))
    return np.asarray(data, np.float32)


def _is_component_normalisation(path: Path) -> bool:
    """Whether ``path`` is a file of ``petrecon norm`` (components) rather than a study container."""
    import h5py

    from petrecon.recon.corrections.normalisation_file import FORMAT_NAME

    try:
        with h5py.File(path, "r") as f:
            return f.attrs.get("format") == FORMAT_NAME
    except OSError:
        return False  # read_container names the fault


def _single(path: Path, data: dict[str, np.ndarray]) -> np.ndarray:
    if len(data) != 1:
        raise FormatError(path, "number of scan data types", f"a normalisation holds one data set, got {len(data)}")
    return next(iter(data.values()))


def _sinogram_container(path: Path, data: dict[str, np.ndarray], layout: SinogramLayout) -> Container:
    sinograms = {}
    for name, array in data.items():
        key = _SINOGRAM_NAMES.get(name.strip().lower())
        if key is None:
            LOG.warning("%s: scan data type %r is not used", path, name)
            continue
        sinograms[key] = array
    if "prompts" not in sinograms and "normalisation" not in sinograms:
        raise FormatError(path, "scan data type description", f"no prompts among {sorted(data)}")
    return Container(sinograms, layout=layout)


def _scanner_name(scanner) -> str | None:
    return scanner.scanner.name if isinstance(scanner, SinogramLayout) else scanner


def header_attributes(header) -> dict:
    """Study facts of an Interfile header (keys of reference/formats.md) as container attributes.

    Examples
    --------
    >>> from petrecon.io.interfile import parse_interfile
    >>> text = "!INTERFILE:=\\nimage duration (sec):=180\\nisotope name:=F-18\\npatient weight (kg):=70\\n"
    >>> header_attributes(parse_interfile(text, "h"))
    {'duration_s': 180.0, 'patient_weight_kg': 70.0, 'isotope': 'F-18'}
    """
    numbers = {"image duration (sec)": "duration_s", "image relative start time (sec)": "frame_start_s",
               "isotope gamma halflife (sec)": "half_life_s",
               "tracer activity at time of injection (bq)": "injected_activity_bq",
               "patient weight (kg)": "patient_weight_kg"}
    texts = {"isotope name": "isotope", "radiopharmaceutical": "radiopharmaceutical",
             "tracer injection date/time": "injection_datetime",
             "study date (yyyy:mm:dd)": "study_date", "study time (hh:mm:ss gmt+00:00)": "study_time"}
    attributes: dict = {}
    for key, name in numbers.items():
        if header.has(key):
            attributes[name] = header.number(key)
    for key, name in texts.items():
        if header.has(key) and header.text(key).strip():
            attributes[name] = header.text(key).strip()
    bed_mm, position = bed_position_mm(header), patient_position(header)
    if bed_mm is not None:
        attributes.update(bed_attributes(bed_mm))
    if position is not None:
        attributes["patient_position"] = position
    return attributes


#: SeriesDate/Time written when the input does not record its scan start (SUVs then need the true times).
NOMINAL_SCAN_DATETIME = dt.datetime(2000, 1, 1, 12, 0, 0)


def pet_series_fields(attributes: dict, *, injected_activity_bq: float | None = None,
                      injection_datetime: str | None = None, scan_datetime: str | None = None,
                      patient_weight_kg: float | None = None, reference: dict | None = None) -> tuple[dict, list[str]]:
    """Keywords of :func:`petrecon.io.dicom.write_pet_series` from a study's attributes (arguments win).

    Scan start: ``scan_datetime``, else the attribute ``acquisition_datetime``,
    else the Interfile study date and time, else the ``reference`` series'
    acquisition time (noted: the PET started after its CT or MR), else
    :data:`NOMINAL_SCAN_DATETIME` (noted). Injection: ``injection_datetime``,
    else the attribute, else, for a simulated study (attribute ``phantom``,
    whose ``frame_start_s`` counts from injection), the scan start minus
    ``frame_start_s``, else the scan start (noted: SUVs of that series are not
    valid). Datetimes are ISO 8601 or Interfile ``yyyy:mm:dd hh:mm:ss``.
    Tracer: the attribute ``radiopharmaceutical`` (``--tracer`` or the
    input's header), else :data:`petrecon.io.dicom.UNKNOWN_TRACER` (noted).

    Parameters
    ----------
    attributes : dict
        The study's attributes (the command line's facts over the input's).
    reference : dict, optional
        :func:`petrecon.io.dicom.series_reference` of the CT or MR series the
        PET is fused with: its study and frame-of-reference UIDs, and the
        patient's name, ID, birth date, sex, weight and height where the
        attributes do not give them.

    Returns
    -------
    fields : dict
        ``injected_dose_bq``, ``injection_datetime``, ``series_datetime``,
        ``radiopharmaceutical``; ``isotope``, ``half_life_s``,
        ``patient_weight_kg``, ``patient_size_m``, ``patient_sex`` and the
        reference's UIDs and patient identity when known.
    notes : list of str
        The assumptions made (to be shown to the user).

    Raises
    ------
    ParameterError
        Without an injected activity, or with an unreadable datetime.

    Examples
    --------
    >>> fields, notes = pet_series_fields({"injected_activity_bq": 2e8, "isotope": "F18", "phantom": "x",
    ...                                    "frame_start_s": 3600.0, "radiopharmaceutical": "FDG"})
    >>> fields["series_datetime"] - fields["injection_datetime"], len(notes)
    (datetime.timedelta(seconds=3600), 1)
    """
    from petrecon.io.dicom import UNKNOWN_TRACER

    notes = []
    reference = reference or {}
    dose = injected_activity_bq if injected_activity_bq is not None else attributes.get("injected_activity_bq")
    if dose is None or not float(dose) > 0 or not math.isfinite(float(dose)):
        raise ParameterError("the study does not record the injected activity a PET DICOM series needs; "
                             "give it (--injected-mbq)")
    scan_text = scan_datetime or attributes.get("acquisition_datetime")
    if scan_text is None and attributes.get("study_date") and attributes.get("study_time"):
        scan_text = f"{attributes['study_date']} {str(attributes['study_time']).split()[0]}"
    if scan_text is None and "acquisition_datetime" in reference:
        scan_text = reference["acquisition_datetime"]
        notes.append(f"scan start unknown: SeriesDate/Time set to the CT/MR series' {scan_text} (give --scan-time)")
    if scan_text is None:
        scan = NOMINAL_SCAN_DATETIME
        notes.append(f"scan start unknown: SeriesDate/Time set to {scan.isoformat()} (give --scan-time)")
    else:
        scan = _parse_datetime(scan_text)
    injection_text = injection_datetime or attributes.get("injection_datetime")
    if injection_text is not None:
        injection = _parse_datetime(injection_text)
    elif "phantom" in attributes and "frame_start_s" in attributes:
        injection = scan - dt.timedelta(seconds=float(attributes["frame_start_s"]))
    else:
        injection = scan
        notes.append("injection time unknown: set to the scan start, SUVs of this series are not valid "
                     "(give --injection-time)")
    tracer = attributes.get("radiopharmaceutical")
    if not tracer:
        tracer = UNKNOWN_TRACER
        notes.append(f"tracer unknown: Radiopharmaceutical set to {tracer!r} (give --tracer)")
    fields = {"injected_dose_bq": float(dose), "injection_datetime": injection, "series_datetime": scan,
              "radiopharmaceutical": str(tracer)}
    from petrecon.isotopes import get_isotope

    if "isotope" in attributes:
        fields["isotope"] = get_isotope(str(attributes["isotope"])).name
    if "half_life_s" in attributes:
        fields["half_life_s"] = float(attributes["half_life_s"])
    check_uptake(injection, scan, fields.get("half_life_s") or get_isotope(fields.get("isotope", "F18")).half_life_s,
                 "injection and scan times (--injection-time, --scan-time or the study's)")
    weight = patient_weight_kg if patient_weight_kg is not None else attributes.get("patient_weight_kg",
                                                                                  reference.get("patient_weight_kg"))
    if weight is not None:
        fields["patient_weight_kg"] = check_parameter("weight_kg", float(weight), label="patient weight (--weight-kg "
                                                                                       "or the study's)")
    height = attributes.get("patient_size_m", reference.get("patient_size_m"))
    if height is not None:
        fields["patient_size_m"] = check_parameter("height_m", float(height), label="patient height (--height-m "
                                                                                    "or the study's)")
    sex = attributes.get("patient_sex", reference.get("patient_sex"))
    if sex is not None:
        fields["patient_sex"] = str(sex)
    for key in ("study_instance_uid", "frame_of_reference_uid", "patient_name", "patient_id", "patient_birth_date"):
        if key in reference:
            fields[key] = reference[key]
    return fields, notes


def _parse_datetime(text: str) -> dt.datetime:
    """ISO 8601 or Interfile ``yyyy:mm:dd hh:mm:ss``."""
    text = str(text).strip()
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        pass
    try:
        return dt.datetime.strptime(text, "%Y:%m:%d %H:%M:%S")
    except ValueError:
        raise ParameterError(f"date/time {text!r} is neither ISO 8601 nor yyyy:mm:dd hh:mm:ss") from None
