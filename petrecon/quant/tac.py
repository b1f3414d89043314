"""Time-activity curves: mean and SD of ROIs in every frame of a dynamic series, as a table and a plot.

A curve samples each frame at its reference time: the decay-weighted
mid-frame time for images decay-corrected to the series start
(``t_start + (1/lambda) ln(lambda T / (1 - exp(-lambda T)))``,
reference/quantification.md; the frame's DICOM FrameReferenceTime), the
plain mid-frame time when the half-life is unknown. Mean and SD (ddof = 1)
are over the ROI's voxels (centres inside the shape: :mod:`petrecon.quant.roi`);
ROIs are given as masks (spheres, boxes, label images) or as the command-line
specifications of :mod:`petrecon.quant.report`.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from petrecon.checks import check_voi_values
from petrecon.errors import ParameterError
from petrecon.io.atomic import atomic_output
from petrecon.volume import Volume

CSV_COLUMNS = ("roi", "frame", "start_s", "duration_s", "reference_time_s", "mean", "sd", "n_voxels")


@dataclass(frozen=True)
class TacPoint:
    """One ROI in one frame (values in the image's units, Bq/ml for activity images)."""

    roi: str
    frame: int
    start_s: float
    duration_s: float
    reference_time_s: float
    mean: float
    sd: float
    n_voxels: int


def time_activity_curves(volumes: Sequence[Volume], starts_s: Sequence[float], durations_s: Sequence[float],
                         rois: dict[str, np.ndarray], *, half_life_s: float | None = None) -> list[TacPoint]:
    """Mean and SD of every ROI in every frame, frame by frame (one point per ROI and frame).

    Parameters
    ----------
    volumes : sequence of Volume
        The frames, on one grid.
    starts_s, durations_s : sequence of float
        Each frame's start (from the series start) and duration.
    rois : dict of str to numpy.ndarray
        Boolean masks on the frames' grid, by name.
    half_life_s : float, optional
        For decay-weighted reference times; None: mid-frame.

    Examples
    --------
    >>> from petrecon.volume import ImageGrid
    >>> grid = ImageGrid.centred((4, 4, 4), (2.0, 2.0, 2.0))
    >>> frames = [Volume(np.full(grid.shape, v), grid) for v in (10.0, 20.0)]
    >>> points = time_activity_curves(frames, [0, 60], [60, 60], {"all": np.ones(grid.shape, bool)})
    >>> [(p.reference_time_s, p.mean) for p in points]
    [(30.0, 10.0), (90.0, 20.0)]
    """
    from petrecon.io.dicom import decay_weighted_frame_time_s

    if not (len(volumes) == len(starts_s) == len(durations_s)) or not volumes:
        raise ParameterError(f"{len(volumes)} frames need as many starts and durations "
                             f"({len(starts_s)}, {len(durations_s)})")
    points = []
    for name, mask in rois.items():
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != volumes[0].data.shape or not mask.any():
            raise ParameterError(f"ROI {name!r} must be a non-empty mask of shape {volumes[0].data.shape}")
        for index, (volume, start, duration) in enumerate(zip(volumes, starts_s, durations_s)):
            if volume.grid != volumes[0].grid:
                raise ParameterError(f"frame {index} is on another grid than frame 0")
            values = np.asarray(volume.data)[mask].astype(np.float64)
            check_voi_values(values, f"{name!r} in frame {index}")
            offset = decay_weighted_frame_time_s(duration, half_life_s) if half_life_s else duration / 2.0
            points.append(TacPoint(name, index, float(start), float(duration), float(start) + offset,
                                   float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else 0.0,
                                   int(values.size)))
    return points


@dataclass
class DynamicFrames:
    """Frames of a dynamic series read back: volumes, times (s from the series start) and the half-life."""

    volumes: list[Volume]
    starts_s: list[float]
    durations_s: list[float]
    half_life_s: float | None


def read_dynamic_frames(path: str | os.PathLike) -> DynamicFrames:
    """Frames of a dynamic PET DICOM series folder, or of a container with a frame table (``petrecon recon --frames``).

    DICOM: each frame's start is FrameReferenceTime minus the decay-weighted
    mid-frame offset of its ActualFrameDuration (DecayCorrection START).
    Container: the ``frames`` attribute (name, start_s, duration_s per frame).

    Raises
    ------
    FormatError
        A container without a frame table, or a series without frame times.
    """
    from petrecon.errors import FormatError
    from petrecon.io import read_container
    from petrecon.io.dicom import decay_weighted_frame_time_s, read_dynamic_pet_series

    path = Path(path)
    if path.is_dir():
        volumes = read_dynamic_pet_series(path)
        inputs = [v.metadata["suv_inputs"] for v in volumes]
        half_life_s = inputs[0]["radionuclide_half_life_s"]
        durations, starts = [], []
        for item in inputs:
            if item["actual_frame_duration_ms"] is None or item["frame_reference_time_ms"] is None:
                raise FormatError(path, "FrameReferenceTime", "and ActualFrameDuration are needed for each frame")
            durations.append(item["actual_frame_duration_ms"] / 1000.0)
            offset = decay_weighted_frame_time_s(durations[-1], half_life_s) if half_life_s else durations[-1] / 2
            starts.append(round(item["frame_reference_time_ms"] / 1000.0 - offset, 3))  # ms: the stored precision
        return DynamicFrames(volumes, starts, durations, half_life_s)
    container = read_container(path)
    table = container.attributes.get("frames")
    if not table:
        raise FormatError(path, "attributes/frames", "is missing: not a dynamic reconstruction")
    half_life_s = container.attributes.get("half_life_s")
    if half_life_s is None and "isotope" in container.attributes:
        from petrecon.isotopes import get_isotope

        half_life_s = get_isotope(str(container.attributes["isotope"])).half_life_s
    return DynamicFrames([container.volumes[row["name"]] for row in table], [float(r["start_s"]) for r in table],
                         [float(r["duration_s"]) for r in table], half_life_s)


def format_tac_csv(points: Sequence[TacPoint]) -> str:
    """The curves as CSV text, columns :data:`CSV_COLUMNS`.

    Examples
    --------
    >>> print(format_tac_csv([TacPoint("a", 0, 0.0, 10.0, 5.0, 2.0, 0.5, 7)]).strip())
    roi,frame,start_s,duration_s,reference_time_s,mean,sd,n_voxels
    a,0,0,10,5,2,0.5,7
    """
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for p in points:
        writer.writerow([p.roi, p.frame, f"{p.start_s:.6g}", f"{p.duration_s:.6g}", f"{p.reference_time_s:.6g}",
                         f"{p.mean:.6g}", f"{p.sd:.6g}", p.n_voxels])
    return text.getvalue()


def write_tac_csv(points: Sequence[TacPoint], path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write :func:`format_tac_csv` to ``path`` atomically."""
    path = Path(path)
    with atomic_output(path, overwrite=overwrite) as temporary:
        temporary.write_text(format_tac_csv(points))
    return path


def plot_tacs(points: Sequence[TacPoint], path: str | os.PathLike, *, units: str = "Bq/ml",
              overwrite: bool = False) -> Path:
    """PNG of the curves: mean +- SD at the reference times, one line per ROI, frames as horizontal bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from petrecon.quant.plot import save_png

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name in dict.fromkeys(p.roi for p in points):
        curve = [p for p in points if p.roi == name]
        times = np.array([p.reference_time_s for p in curve])
        left = times - np.array([p.start_s for p in curve])
        right = np.array([p.start_s + p.duration_s for p in curve]) - times
        ax.errorbar(times, [p.mean for p in curve], yerr=[p.sd for p in curve], xerr=[left, right], fmt="o-",
                    capsize=2, label=name)
    ax.set(xlabel="time from series start (s)", ylabel=f"ROI mean ({units})", title="time-activity curves")
    ax.grid(alpha=0.3)
    ax.legend()
    return save_png(fig, path, overwrite=overwrite)
