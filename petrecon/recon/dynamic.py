"""Dynamic reconstruction: a frame schedule, list-mode split into its frames, one calibrated volume per frame.

A schedule is written ``6x10s,4x60s,5x300s`` (``N x DURATION``, units ``s``,
``min``, ``h``; ``30s`` and ``2x1min`` also work): consecutive frames from
the acquisition start. The list-mode stream is read once
(:func:`petrecon.io.listmode.iter_listmode_frames`) and every frame becomes
a study container (the frame's prompts and delays plus the count-independent
parts of the base study: normalisation, attenuation factors, mu-map,
attributes) with its own ``frame_start_s``, ``duration_s`` and, when a
dead-time constant is known, ``live_fraction``; it is reconstructed by
:func:`petrecon.recon.study.reconstruct_study`, which decay-corrects over the
frame to the frame start and applies the live fraction. Each volume is then
decay-corrected from its frame start to the first frame's start by
``2^(t_start / T_half)``, so every frame is in Bq/ml at the series start
(DICOM DecayCorrection START, reference/formats.md). Its reference time is the
decay-weighted mid-frame ``t_start + (1/lambda) ln(lambda T / (1 - exp(-lambda T)))``
(reference/quantification.md; :func:`petrecon.io.dicom.decay_weighted_frame_time_s`).

Dead time from list-mode: each Siemens bucket's mean singles rate in the frame
(bucket-singles words) gives its live fraction with a non-paralysable counter
of dead time ``dead_time_s`` (:func:`petrecon.recon.corrections.live_fraction`);
a coincidence survives with the product of its two buckets' live fractions,
approximated by the square of their mean (the buckets' rates differ little in
one frame). The dead-time constant is the scanner's calibration, not in the
registry: without it dead time is not corrected, and the result says so.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from dataclasses import dataclass, field

import numpy as np

from petrecon.errors import ParameterError
from petrecon.io.container import Container
from petrecon.recon.protocol import ReconstructionProtocol
from petrecon.volume import Volume

LOG = logging.getLogger(__name__)

_UNITS_S = {"": 1.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
_ITEM = re.compile(r"^\s*(?:(\d+)\s*[x*]\s*)?(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)\s*$", re.IGNORECASE)
#: Sinograms of a base study that depend on the counts of one acquisition (not carried into frames).
COUNT_SINOGRAMS = ("prompts", "delays", "randoms", "scatter", "trues_expected")


@dataclass(frozen=True)
class Frame:
    """One frame of a schedule, seconds from the acquisition start."""

    start_s: float
    duration_s: float

    @property
    def end_s(self) -> float:
        """``start_s + duration_s``."""
        return self.start_s + self.duration_s

    def reference_time_s(self, half_life_s: float) -> float:
        """Decay-weighted mid-frame time from the acquisition start (DICOM FrameReferenceTime / 1000).

        Examples
        --------
        >>> round(Frame(60.0, 180.0).reference_time_s(6586.2), 3)
        149.858
        """
        from petrecon.io.dicom import decay_weighted_frame_time_s

        return self.start_s + decay_weighted_frame_time_s(self.duration_s, half_life_s)


def parse_frame_schedule(text: str) -> list[Frame]:
    """Frames of a schedule such as ``6x10s,4x60s,5x300s``, consecutive from time 0.

    Raises
    ------
    ParameterError
        If an item is not ``[N x]DURATION[unit]`` with ``N >= 1``, a duration
        > 0 and a unit among s, sec, m, min, h.

    Examples
    --------
    >>> [(f.start_s, f.duration_s) for f in parse_frame_schedule("2x10s,1min")]
    [(0.0, 10.0), (10.0, 10.0), (20.0, 60.0)]
    >>> len(parse_frame_schedule("6x10s,4x60s,5x300s")), parse_frame_schedule("30")[0].duration_s
    (15, 30.0)
    """
    frames: list[Frame] = []
    start = 0.0
    items = str(text).split(",")
    for item in items:
        match = _ITEM.match(item)
        unit = match.group(3).lower() if match else ""
        if match is None or unit not in _UNITS_S:
            raise ParameterError(f"frame schedule {text!r}: {item.strip()!r} is not [N x]DURATION[s|min|h] "
                                 f"(e.g. 6x10s,4x60s)")
        count = int(match.group(1) or 1)
        duration_s = float(match.group(2)) * _UNITS_S[unit]  # a bare number is seconds
        if count < 1 or not duration_s > 0:
            raise ParameterError(f"frame schedule {text!r}: {item.strip()!r} needs N >= 1 frames of > 0 s")
        for _ in range(count):
            frames.append(Frame(start, duration_s))
            start += duration_s
    return frames


def check_schedule(frames: list[Frame], acquisition_s: float, source: str | os.PathLike = "list-mode") -> None:
    """Refuse a schedule that runs past the data (1 ms of slack: time tags are whole milliseconds).

    Examples
    --------
    >>> check_schedule(parse_frame_schedule("2x10s"), 20.0)
    >>> check_schedule(parse_frame_schedule("3x10s"), 20.0)
    Traceback (most recent call last):
    ...
    petrecon.errors.ParameterError: frame schedule ends at 30 s, the list-mode data at 20 s
    """
    if frames and frames[-1].end_s > acquisition_s + 1e-3:
        raise ParameterError(f"frame schedule ends at {frames[-1].end_s:g} s, the {source} data at "
                             f"{acquisition_s:g} s")


@dataclass
class DynamicReconstruction:
    """Frames reconstructed from one acquisition.

    Attributes
    ----------
    frames : list of Frame
    volumes : list of Volume
        Bq/ml decay-corrected to the first frame's start (when decay is corrected).
    corrected : tuple of str
        DICOM CorrectedImage codes applied to every frame.
    frame_attributes : list of dict
        Per frame: prompts, delays, duration covered by time tags, live fraction.
    not_applied : dict of str to str
        Corrections not applied and why.
    """

    frames: list[Frame]
    volumes: list[Volume]
    corrected: tuple[str, ...]
    frame_attributes: list[dict] = field(default_factory=list)
    not_applied: dict[str, str] = field(default_factory=dict)


def live_fraction_from_singles(singles_per_s: dict, dead_time_s: float) -> float:
    """Coincidence live fraction of a frame: the square of the buckets' mean live fraction (module docstring).

    Examples
    --------
    >>> round(live_fraction_from_singles({0: 1e5, 1: 1e5}, 1e-6), 4)  # 1 - 0.1 per bucket, squared
    0.81
    """
    from petrecon.recon.corrections import live_fraction

    rates = np.array(list(singles_per_s.values()), dtype=np.float64)
    return float(np.mean(live_fraction(rates, dead_time_s))) ** 2


def reconstruct_listmode_frames(source, base: Container, frames: list[Frame],
                                protocol: ReconstructionProtocol = ReconstructionProtocol(), *,
                                mu: Volume | None = None, dead_time_s: float | None = None,
                                progress: bool = True) -> DynamicReconstruction:
    """Reconstruct every frame of ``frames`` from one pass over list-mode ``source``.

    Parameters
    ----------
    source : path-like or numpy.ndarray
        PETLINK file (``.l``/``.bf`` payload) or words.
    base : Container
        Layout, attributes (isotope, calibration) and count-independent
        sinograms (normalisation, attenuation factors) and volumes (mu-map)
        shared by all frames; its count sinograms (:data:`COUNT_SINOGRAMS`)
        are ignored.
    frames : list of Frame
        Consecutive, non-overlapping (:func:`parse_frame_schedule`).
    protocol : ReconstructionProtocol
        Applied to every frame. The corrections the frames cannot support
        must already be off (:func:`petrecon.io.study_input.plan_corrections`).
    mu : Volume, optional
        Explicit mu-map for attenuation (and scatter).
    dead_time_s : float, optional
        Bucket dead time for the live fractions (module docstring).
    progress : bool
        Progress bars.
    """
    from petrecon.io.listmode import iter_listmode_frames, last_time_tag_ms
    from petrecon.recon.study import half_life_s, reconstruct_study

    if not frames:
        raise ParameterError("the frame schedule is empty")
    check_schedule(frames, (last_time_tag_ms(source) + 1) / 1000.0, source if not isinstance(source, np.ndarray)
                   else "list-mode")
    not_applied: dict[str, str] = {}
    if protocol.corrections.dead_time and dead_time_s is None:
        not_applied["dead_time"] = "no bucket dead-time constant given: live fractions unknown"
        protocol = dataclasses.replace(protocol, corrections=dataclasses.replace(protocol.corrections,
                                                                                 dead_time=False))
    shared = {name: data for name, data in base.sinograms.items() if name not in COUNT_SINOGRAMS}
    windows = [(frame.start_s, frame.end_s) for frame in frames]
    volumes, frame_attributes, corrected = [], [], ()
    histograms = iter_listmode_frames(source, base.layout, windows, progress=progress)
    for frame, histogram in zip(frames, histograms):
        attributes = {**base.attributes, "frame_start_s": frame.start_s, "duration_s": frame.duration_s,
                      "n_prompts": histogram.n_prompts, "n_delays": histogram.n_delays,
                      "tagged_duration_s": histogram.duration_s}
        if dead_time_s is not None and protocol.corrections.dead_time:
            if not histogram.singles_per_s:
                raise ParameterError(f"frame {frame.start_s:g} s holds no bucket singles for its dead time; "
                                     "turn dead-time correction off")
            attributes["live_fraction"] = live_fraction_from_singles(histogram.singles_per_s, dead_time_s)
        study = Container({**shared, "prompts": histogram.prompts, "delays": histogram.delays},
                          volumes=dict(base.volumes), layout=base.layout, attributes=attributes)
        del histogram
        result = reconstruct_study(study, protocol, mu=mu, progress=False)
        volume = result.volume
        if protocol.corrections.decay:
            to_series_start = 2.0 ** (frame.start_s / half_life_s(study))
            volume = Volume((volume.data * np.float32(to_series_start)).astype(np.float32), volume.grid,
                            {**volume.metadata, "decay_from_frame_start": to_series_start})
        volume.metadata.update({"frame_start_s": frame.start_s, "frame_duration_s": frame.duration_s})
        volumes.append(volume)
        corrected = result.corrected
        frame_attributes.append({key: attributes[key] for key in ("frame_start_s", "duration_s", "n_prompts",
                                                                  "n_delays", "tagged_duration_s")
                                 } | ({"live_fraction": attributes["live_fraction"]}
                                      if "live_fraction" in attributes else {}))
        LOG.info("frame %g s + %g s: %d prompts", frame.start_s, frame.duration_s, attributes["n_prompts"])
    return DynamicReconstruction(frames, volumes, corrected, frame_attributes, not_applied)


def frames_container(result: DynamicReconstruction, attributes: dict, provenance: dict) -> Container:
    """The HDF5 layout of a dynamic reconstruction: volumes ``frame_000``, ... and the frame table.

    ``attributes["frames"]`` lists per frame ``name``, ``start_s``,
    ``duration_s``, ``reference_time_s`` (decay-weighted mid-frame, when the
    half-life is known), the counts and the live fraction;
    ``attributes["decay_correction"]`` is ``START`` (first frame's start) or
    ``NONE``.
    """
    half_life_s = attributes.get("half_life_s")
    if half_life_s is None and "isotope" in attributes:
        from petrecon.isotopes import get_isotope

        half_life_s = get_isotope(str(attributes["isotope"])).half_life_s
    table, volumes = [], {}
    for index, (frame, volume, extra) in enumerate(zip(result.frames, result.volumes, result.frame_attributes)):
        name = f"frame_{index:03d}"
        volumes[name] = volume
        reference = frame.reference_time_s(half_life_s) if half_life_s else frame.start_s + frame.duration_s / 2
        table.append({"name": name, "start_s": frame.start_s, "duration_s": frame.duration_s,
                      "reference_time_s": reference, **{k: v for k, v in extra.items()
                                                        if k not in ("frame_start_s", "duration_s")}})
    decay = "START" if "DECY" in result.corrected else "NONE"
    return Container(volumes=volumes, attributes={**attributes, "frames": table, "decay_correction": decay,
                                                  "corrected_image": list(result.corrected)},
                     provenance=provenance)
