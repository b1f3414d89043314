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
``injected_activity_bq``, ``injection_datetime``, ``patient_weight_kg``.

Raw inputs rarely carry everything a quantitative reconstruction needs.
:func:`plan_corrections` switches off each correction the study cannot
support and says why, so the caller can warn and record it in the
provenance: nothing is dropped silently.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import numpy as np

from petrecon.errors import FormatError, ParameterError
from petrecon.geometry import SCANNERS, SinogramLayout, default_layout
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
        names the format, ``provenance["inputs"]`` lists the files read.

    Raises
    ------
    FormatError
        Unknown or broken input (names the file and the field).
    ParameterError
        A frame for a sinogram input, or a list-mode input without a scanner.
    """
    path = Path(path)
    kind = detect_format(path)
    if kind == "container":
        study = read_container(path)
    elif kind in ("listmode", "petsird"):
        study = _listmode_study(path, path, kind, scanner, frame, progress)
    elif kind == "interfile":
        study = _interfile_study(path, scanner, frame, progress)
    elif kind == "interfile-main":
        study = _main_header_study(path, scanner, frame)
    elif kind == "siemens-dicom":
        study = _wrapper_study(path, scanner, frame, progress)
    else:
        study = _export_study(path, scanner, frame, progress)
    if frame is not None and kind not in ("listmode", "petsird") and "frame_from_listmode" not in study.attributes:
        raise ParameterError(f"{path}: a frame applies to list-mode input only; this is a {kind} input")
    study.attributes.pop("frame_from_listmode", None)
    study.attributes["input_format"] = kind
    study.provenance.setdefault("inputs_read", []).append(str(path))
    if normalisation is not None:
        study.sinograms["normalisation"] = _normalisation_sinogram(Path(normalisation), study.layout, scanner)
        study.provenance["inputs_read"].append(str(normalisation))
    return study


def plan_corrections(study: Container, protocol, *, mu_given: bool = False):
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

    Returns
    -------
    protocol : ReconstructionProtocol
        With the unsupported corrections off.
    not_applied : dict of str to str
        Correction -> why it is off (also logged as a warning).

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
        "randoms": "randoms" in sinograms or "delays" in sinograms,
        "scatter": "scatter" in sinograms or has_mu,
        "dead_time": "live_fraction" in attributes,
        "decay": "half_life_s" in attributes or "isotope" in attributes,
    }
    corrections = protocol.corrections
    not_applied = {}
    for name, present in available.items():
        if getattr(corrections, name) and not present:
            not_applied[name] = f"the input has no {_NEEDS[name]}"
            LOG.warning("%s correction off: %s", name, not_applied[name])
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


def _listmode_study(path: Path, words_path: Path, kind: str, scanner, frame, progress: bool,
                    named: str | None = None) -> Container:
    from petrecon.io.listmode import histogram_listmode

    start_s, end_s = frame if frame is not None else (0.0, None)
    if kind == "petsird":
        from petrecon.io.petsird_io import read_petsird

        scan = read_petsird(words_path)
        layout = _layout_for(scanner, path, _registry_match(scan.scanner))
        source = scan.listmode_words(layout)
    else:
        layout = _layout_for(scanner, path, named)
        source = words_path
    histogram = histogram_listmode(source, layout, start_s=start_s, end_s=end_s, progress=progress)
    if histogram.n_events_in_frame == 0:
        raise FormatError(path, "events", f"none in the frame {start_s:g} s .. "
                                          f"{'end' if end_s is None else f'{end_s:g} s'}")
    attributes = {"frame_start_s": histogram.start_s, "duration_s": histogram.duration_s,
                  "n_prompts": histogram.n_prompts, "n_delays": histogram.n_delays,
                  "n_dropped": histogram.n_dropped, "n_unmapped": histogram.n_unmapped,
                  "bucket_singles_per_s": {str(k): v for k, v in histogram.singles_per_s.items()},
                  "listmode_file": str(words_path), "frame_from_listmode": True}
    return Container({"prompts": histogram.prompts, "delays": histogram.delays}, layout=layout,
                     attributes=attributes)


def _registry_match(petsird_scanner) -> str | None:
    """The registry scanner with the PETSIRD scanner's rings, crystals and radius (1 %), if any."""
    for name, candidate in SCANNERS.items():
        if (candidate.n_rings, candidate.n_crystals_per_ring) == (petsird_scanner.n_rings,
                                                                   petsird_scanner.n_crystals_per_ring) and \
                abs(candidate.radius_mm - petsird_scanner.radius_mm) < 0.01 * candidate.radius_mm:
            return name
    return None


def _interfile_study(path: Path, scanner, frame, progress: bool) -> Container:
    from petrecon.io.interfile import read_header, read_interfile_sinograms, resolve_data_file
    from petrecon.io.siemens import classify

    header = read_header(path)
    if classify(header) == "listmode":
        study = _listmode_study(path, resolve_data_file(header), "listmode", scanner, frame, progress,
                                header.text("scanner name", "").strip() or None)
    else:
        sinograms = read_interfile_sinograms(path, scanner=_scanner_name(scanner), header=header)
        study = _sinogram_container(path, sinograms.data, sinograms.layout)
    study.attributes = {**header_attributes(header), **study.attributes}
    return study


def _main_header_study(path: Path, scanner, frame) -> Container:
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


def _wrapper_study(path: Path, scanner, frame, progress: bool) -> Container:
    from petrecon.io.siemens import read_wrapper

    wrapper = read_wrapper(path)
    if wrapper.kind == "listmode":
        study = _listmode_study(path, wrapper.payload_path, "listmode", scanner, frame, progress,
                                wrapper.header.text("scanner name", "").strip() or None)
    elif wrapper.kind == "sinogram":
        sinograms = wrapper.read_sinograms(_scanner_name(scanner))
        study = _sinogram_container(path, sinograms.data, sinograms.layout)
    else:
        raise FormatError(path, "kind", f"is a {wrapper.kind} object; give list-mode or sinograms")
    study.attributes = {**header_attributes(wrapper.header), **study.attributes}
    return study


def _export_study(path: Path, scanner, frame, progress: bool) -> Container:
    from petrecon.io.siemens import open_export

    export = open_export(path)
    if len(export.listmode) > 1 or (not export.listmode and len(export.sinogram) != 1):
        raise FormatError(path, "objects", f"the export holds {len(export.listmode)} list-mode and "
                                           f"{len(export.sinogram)} sinogram objects; name one .dcm")
    study = _wrapper_study((export.listmode or export.sinogram)[0].dicom_path, scanner, frame, progress)
    if len(export.norm) == 1:
        norm = export.norm[0].read_sinograms(_scanner_name(scanner) or study.layout.scanner.name).data
        study.sinograms["normalisation"] = _single(export.norm[0].dicom_path, norm)
    return study


def _normalisation_sinogram(path: Path, layout: SinogramLayout, scanner) -> np.ndarray:
    kind = detect_format(path)
    if kind == "container":
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
    return np.asarray(data, np.float32)


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
    texts = {"isotope name": "isotope", "tracer injection date/time": "injection_datetime"}
    attributes: dict = {}
    for key, name in numbers.items():
        if header.has(key):
            attributes[name] = header.number(key)
    for key, name in texts.items():
        if header.has(key) and header.text(key).strip():
            attributes[name] = header.text(key).strip()
    return attributes
