"""SUV from a PET DICOM header, after the QIBA vendor-neutral SUV pseudo-code.

Facts from reference/quantification.md (section "SUV from DICOM"):

- SUV only when CorrectedImage (0028,0051) holds ATTN and DECY. DecayCorrection
  (0054,1102) START: the dose is decayed from injection to the scan reference
  time; ADMIN: the images are decay-corrected to the injection, the dose is not
  decayed; anything else is refused.
- Units (0054,1001) ``BQML``: scan reference time = SeriesDate/Time if not
  after AcquisitionDate/Time; otherwise the GE private scan date-time
  (0009,100D) of creator ``GEMS_PETD_01``; otherwise back-computed from the
  frame: AcquisitionDateTime - FrameReferenceTime/1000 + (1/lambda) ln(lambda T /
  (1 - exp(-lambda T))), T = ActualFrameDuration/1000.
- Injection: RadiopharmaceuticalStartDateTime (0018,1078) preferred; a
  time-only RadiopharmaceuticalStartTime (0018,1072) takes the scan date, one
  day earlier when it would fall after the scan (injection before midnight,
  scan after it), refused when that day earlier means more than
  ``MAX_MIDNIGHT_UPTAKE_H`` hours of uptake (a mistyped time, not midnight).
  Uptake times over :data:`petrecon.checks.MAX_UPTAKE_HALF_LIVES` half-lives
  are refused.
- ``CNTS`` (Philips): private SUV factor (7053,1000), else the Bq/ml scale
  (7053,1009) followed by the BQML logic. ``GML``: the values already are SUVbw.
- The half-life used is the header's RadionuclideHalfLife (0018,1075): the one
  the scanner decay-corrected with.

Time-tag mistakes of vendors cause SUV errors of ~30 % in popular software
(Fritsak et al., arXiv 2410.13348); every path above is a test in
tests/test_quant_suv_dicom.py. A header that cannot give a trustworthy SUV
raises :class:`petrecon.errors.FormatError` naming the tag, never a number.

Per-slice RescaleSlope is applied by whoever builds the Volume from the
slices; the factor here multiplies values in the header's Units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from petrecon.checks import check_uptake
from petrecon.errors import FormatError, ParameterError
from petrecon.quant.suv import Patient, decayed_dose_bq, normaliser
from petrecon.volume import Volume

GE_PRIVATE_CREATOR = "GEMS_PETD_01"
PHILIPS_PRIVATE_CREATOR = "Philips PET Private Group"
#: A time-only injection after the scan time is taken as the previous day only up to this uptake (hours).
MAX_MIDNIGHT_UPTAKE_H = 12.0


@dataclass(frozen=True)
class DicomSuv:
    """How to turn one PET series' values into SUV.

    Attributes
    ----------
    factor : float
        Multiplies image values (in ``units``, after RescaleSlope/Intercept) to give SUV.
    normalisation : str
        ``bw``, ``lbm-james``, ``lbm-janmahasatian``, ``bsa`` or ``ibw``.
    units : str
        The header's Units (BQML, CNTS or GML).
    scan_time_source : str
        Which rule gave the scan reference time (``series``, ``ge-private``,
        ``frame-back-computed``, ``not needed``).
    scan_time, injection_time : datetime or None
        The times used (None where not needed).
    decayed_dose_bq : float or None
        The dose at the decay-correction reference time (None where not needed).
    """

    factor: float
    normalisation: str
    units: str
    scan_time_source: str
    scan_time: datetime | None
    injection_time: datetime | None
    decayed_dose_bq: float | None


class _Header:
    """Tag access that raises FormatError naming the tag."""

    def __init__(self, dataset: Any, source: str) -> None:
        self.dataset = dataset
        self.source = source

    def error(self, field: str, message: str) -> FormatError:
        return FormatError(self.source, field, message)

    def optional(self, keyword: str, dataset: Any = None) -> Any:
        try:
            value = (self.dataset if dataset is None else dataset).get(keyword)
        except (ValueError, TypeError, OverflowError) as error:  # pydicom converts on access
            raise self.error(keyword, f"unreadable ({' '.join(str(error).split())})") from None
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return value

    def required(self, keyword: str, tag: str, why: str, dataset: Any = None) -> Any:
        value = self.optional(keyword, dataset)
        if value is None:
            raise self.error(f"{keyword} {tag}", f"is missing; needed for {why}")
        return value

    def positive(self, keyword: str, tag: str, why: str, dataset: Any = None) -> float:
        raw = self.required(keyword, tag, why, dataset)
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise self.error(f"{keyword} {tag}", f"is {str(raw)!r}, not a number; needed for {why}") from None
        if not value > 0 or not math.isfinite(value):
            raise self.error(f"{keyword} {tag}", f"is {value}; must be positive for {why}")
        return value

    def private(self, group: int, creator: str, element: int) -> Any:
        """Value of a private element by its creator; without a creator tag, the conventional block 0x10."""
        try:
            block = self.dataset.private_block(group, creator)
        except KeyError:
            tag = (group << 16) | (0x1000 | element)
            return self.dataset[tag].value if tag in self.dataset else None
        return block[element].value if element in block else None


def parse_dicom_date(text: str) -> datetime:
    """DICOM DA ``YYYYMMDD`` (also ``YYYY.MM.DD``) to a datetime at midnight.

    Examples
    --------
    >>> parse_dicom_date("20240102")
    datetime.datetime(2024, 1, 2, 0, 0)
    """
    digits = str(text).strip().replace(".", "").replace("-", "")
    return datetime.strptime(digits[:8], "%Y%m%d")


def parse_dicom_time(text: str) -> timedelta:
    """DICOM TM ``HHMMSS.FFFFFF`` (shorter forms and old ``HH:MM:SS`` too) as time since midnight.

    Examples
    --------
    >>> parse_dicom_time("140100.5").total_seconds()
    50460.5
    """
    text = str(text).strip().replace(":", "")
    whole, _, fraction = text.partition(".")
    if not whole.isdigit() or len(whole) not in (2, 4, 6):
        raise ValueError(f"not a DICOM time: {text!r}")
    hours, minutes, seconds = int(whole[:2]), int(whole[2:4] or 0), int(whole[4:6] or 0)
    if hours > 23 or minutes > 59 or seconds > 60:
        raise ValueError(f"not a time of day: {text!r}")
    return timedelta(hours=hours, minutes=minutes, seconds=seconds, microseconds=int(round(float(f"0.{fraction or 0}") * 1e6)))


def parse_dicom_datetime(text: str) -> datetime:
    """DICOM DT ``YYYYMMDDHHMMSS.FFFFFF[&ZZXX]`` to a naive datetime (a UTC offset is dropped).

    Examples
    --------
    >>> parse_dicom_datetime("20240101230000.00+0100")
    datetime.datetime(2024, 1, 1, 23, 0)
    """
    text = str(text).strip()
    for sign in "+-":
        if sign in text[8:]:
            text = text[: 8 + text[8:].index(sign)]
    return parse_dicom_date(text[:8]) + (parse_dicom_time(text[8:]) if len(text) > 8 else timedelta())


def _date_time(header: _Header, date_keyword: str, date_tag: str, time_keyword: str, time_tag: str,
               fallback_date: str | None = None) -> datetime:
    date = header.optional(date_keyword) or fallback_date
    if date is None:
        raise header.error(f"{date_keyword} {date_tag}", "is missing; needed for the decay time")
    time = header.required(time_keyword, time_tag, "the decay time")
    try:
        return parse_dicom_date(date) + parse_dicom_time(time)
    except ValueError as error:
        raise header.error(f"{date_keyword}/{time_keyword}", f"unreadable ({error})") from None


def _scan_time(header: _Header, half_life_s: float) -> tuple[datetime, str]:
    """QIBA scan reference time: series, else GE private, else back-computed from the frame."""
    series = _date_time(header, "SeriesDate", "(0008,0021)", "SeriesTime", "(0008,0031)")
    acquisition = _date_time(header, "AcquisitionDate", "(0008,0022)", "AcquisitionTime", "(0008,0032)",
                             fallback_date=header.optional("SeriesDate"))
    if series <= acquisition:
        return series, "series"
    ge_scan = header.private(0x0009, GE_PRIVATE_CREATOR, 0x0D)
    if ge_scan:
        try:
            return parse_dicom_datetime(ge_scan), "ge-private"
        except ValueError as error:
            raise header.error("GE private scan date-time (0009,100D)", f"unreadable ({error})") from None
    why = "back-computing the scan time (SeriesTime is after AcquisitionTime, no GE private scan time)"
    reference_ms = header.required("FrameReferenceTime", "(0054,1300)", why)
    duration_s = header.positive("ActualFrameDuration", "(0018,1242)", why) / 1000.0
    header.positive("DecayFactor", "(0054,1321)", why)
    decay_constant = math.log(2.0) / half_life_s
    decay_in_frame = decay_constant * duration_s
    mean_count_time_s = math.log(decay_in_frame / (1.0 - math.exp(-decay_in_frame))) / decay_constant
    scan = acquisition - timedelta(seconds=float(reference_ms) / 1000.0) + timedelta(seconds=mean_count_time_s)
    return scan, "frame-back-computed"


def _injection_time(header: _Header, drug: Any, scan: datetime) -> datetime:
    start_datetime = header.optional("RadiopharmaceuticalStartDateTime", drug)
    if start_datetime is not None:
        try:
            return parse_dicom_datetime(start_datetime)
        except ValueError as error:
            raise header.error("RadiopharmaceuticalStartDateTime (0018,1078)", f"unreadable ({error})") from None
    start_time = header.required("RadiopharmaceuticalStartTime", "(0018,1072)",
                                 "the decay time (no RadiopharmaceuticalStartDateTime (0018,1078))", drug)
    try:
        injection = datetime(scan.year, scan.month, scan.day) + parse_dicom_time(start_time)
    except ValueError as error:
        raise header.error("RadiopharmaceuticalStartTime (0018,1072)", f"unreadable ({error})") from None
    if injection > scan:  # injected before midnight, scanned after it
        injection -= timedelta(days=1)
        if scan - injection > timedelta(hours=MAX_MIDNIGHT_UPTAKE_H):
            raise header.error("RadiopharmaceuticalStartTime (0018,1072)",
                               f"{start_time} is after the scan time {scan.time().isoformat()} and no "
                               "RadiopharmaceuticalStartDateTime gives its date; the previous day would mean "
                               f"{(scan - injection).total_seconds() / 3600:.1f} h of uptake")
    return injection


def _patient(header: _Header, normalisation: str) -> Patient:
    weight_kg = header.positive("PatientWeight", "(0010,1030)", "the SUV")
    height_cm = sex = None
    if normalisation != "bw":
        height_cm = header.positive("PatientSize", "(0010,1020)", f"SUV{normalisation}") * 100.0
        if normalisation != "bsa":
            sex = str(header.required("PatientSex", "(0010,0040)", f"SUV{normalisation}")).strip().upper()
            if sex not in ("M", "F"):
                raise header.error("PatientSex (0010,0040)", f"is {sex!r}; SUV{normalisation} needs M or F")
    return Patient(weight_kg, height_cm, sex)


def _check_corrections(header: _Header) -> str:
    corrected = header.required("CorrectedImage", "(0028,0051)", "the SUV")
    corrected = {str(c).strip().upper() for c in ([corrected] if isinstance(corrected, str) else corrected)}
    for needed in ("ATTN", "DECY"):
        if needed not in corrected:
            raise header.error("CorrectedImage (0028,0051)",
                               f"lacks {needed} ({', '.join(sorted(corrected))}); no trustworthy SUV")
    decay_reference = str(header.required("DecayCorrection", "(0054,1102)", "the SUV")).strip().upper()
    if decay_reference not in ("START", "ADMIN"):
        raise header.error("DecayCorrection (0054,1102)", f"is {decay_reference!r}; SUV needs START or ADMIN")
    return decay_reference


def suv_from_dicom(dataset: Any, normalisation: str = "bw", *, source: str = "DICOM header") -> DicomSuv:
    """The SUV factor of a PET series from its (first slice's) header, after the QIBA logic.

    Parameters
    ----------
    dataset : pydicom.Dataset
        Header of a PET image (no pixel data needed); e.g.
        ``pydicom.Dataset.from_json(volume.metadata["dicom_header"])``.
    normalisation : str
        ``bw`` (default), ``lbm-james``, ``lbm-janmahasatian``, ``bsa`` or ``ibw``.
    source : str
        File name used in error messages.

    Raises
    ------
    FormatError
        Naming the tag, when the header cannot give a trustworthy SUV.

    Examples
    --------
    >>> from pydicom import Dataset
    >>> ds, drug = Dataset(), Dataset()
    >>> ds.Units, ds.CorrectedImage, ds.DecayCorrection = "BQML", ["ATTN", "DECY"], "START"
    >>> ds.SeriesDate = ds.AcquisitionDate = "20240101"
    >>> ds.SeriesTime, ds.AcquisitionTime, ds.PatientWeight = "140100", "140100", "70"
    >>> drug.RadionuclideTotalDose, drug.RadionuclideHalfLife = "370000000", "6586"
    >>> drug.RadiopharmaceuticalStartTime = "130100"
    >>> ds.RadiopharmaceuticalInformationSequence = [drug]
    >>> f"{suv_from_dicom(ds).factor:.5e}"
    '2.76340e-04'
    """
    header = _Header(dataset, source)
    units = str(header.required("Units", "(0054,1001)", "the SUV")).strip().upper()
    if units == "GML":
        return _scaled_from_bw(header, 1.0, normalisation, units)
    decay_reference = _check_corrections(header)
    scale = 1.0
    if units == "CNTS":
        philips_suv = header.private(0x7053, PHILIPS_PRIVATE_CREATOR, 0x00)
        if philips_suv is not None and float(philips_suv) > 0:
            return _scaled_from_bw(header, float(philips_suv), normalisation, units)
        philips_bqml = header.private(0x7053, PHILIPS_PRIVATE_CREATOR, 0x09)
        if philips_bqml is None or not float(philips_bqml) > 0:
            raise header.error("Philips private (7053,1000)/(7053,1009)",
                               "missing: Units CNTS need the SUV or Bq/ml scale factor")
        scale = float(philips_bqml)
    elif units != "BQML":
        raise header.error("Units (0054,1001)", f"is {units!r}; SUV needs BQML, CNTS (Philips) or GML")
    sequence = header.required("RadiopharmaceuticalInformationSequence", "(0054,0016)", "the dose")
    if len(sequence) == 0:
        raise header.error("RadiopharmaceuticalInformationSequence (0054,0016)", "is empty; needed for the dose")
    drug = sequence[0]
    dose_bq = header.positive("RadionuclideTotalDose", "(0018,1074)", "the SUV", drug)
    patient = _patient(header, normalisation)
    if decay_reference == "ADMIN":
        factor = scale * normaliser(patient, normalisation) / dose_bq
        return DicomSuv(factor, normalisation, units, "not needed", None, None, dose_bq)
    half_life_s = header.positive("RadionuclideHalfLife", "(0018,1075)", "decaying the dose", drug)
    scan, scan_source = _scan_time(header, half_life_s)
    injection = _injection_time(header, drug, scan)
    try:
        elapsed_s = check_uptake(injection, scan, half_life_s, "injection")
    except ParameterError as error:
        raise header.error("RadiopharmaceuticalStartDateTime (0018,1078)", str(error)) from None
    decayed = decayed_dose_bq(dose_bq, elapsed_s, half_life_s)
    factor = scale * normaliser(patient, normalisation) / decayed
    return DicomSuv(factor, normalisation, units, scan_source, scan, injection, decayed)


def _scaled_from_bw(header: _Header, suv_bw_factor: float, normalisation: str, units: str) -> DicomSuv:
    """Values already scaled to SUVbw (GML, Philips SUV factor): rescale to another normalisation."""
    factor = suv_bw_factor
    if normalisation != "bw":
        patient = _patient(header, normalisation)
        factor *= normaliser(patient, normalisation) / normaliser(patient, "bw")
    return DicomSuv(factor, normalisation, units, "not needed", None, None, None)


def suv_volume(volume: Volume, normalisation: str = "bw") -> Volume:
    """An SUV image from a PET Volume whose ``metadata["dicom_header"]`` is ``Dataset.to_json_dict()``.

    Raises
    ------
    FormatError
        If the metadata holds no DICOM header, or the header gives no trustworthy SUV.
    """
    from pydicom import Dataset

    source = str(volume.metadata.get("source", "volume"))
    header = volume.metadata.get("dicom_header")
    if header is None:
        raise FormatError(source, "metadata dicom_header", "is missing; the SUV needs the PET DICOM header")
    conversion = suv_from_dicom(Dataset.from_json(header), normalisation, source=source)
    metadata = {**volume.metadata, "units": f"SUV{normalisation}", "suv_factor": conversion.factor,
                "suv_scan_time_source": conversion.scan_time_source}
    return Volume(volume.data * conversion.factor, volume.grid, metadata)
