"""The per-patient report of ``petrecon batch`` (``OUT/<id>/report.html``) and the cohort's ``OUT/index.html``.

Per study: coronal and sagittal maximum-intensity projections of the SUV image
with every VOI outlined (its sphere, or the box's extent) and labelled
(``mips.png``); one transverse slice through the hottest lesion with the PET in
colour over the CT or the Dixon water image resampled to the PET grid
(``fused.png``); the SUV table (organs, lesions with T/B, status) of each
quantified image (the protocol's, the harmonised one); the patient, injection
and protocol facts. The PNGs are written beside the page and embedded in it
(:mod:`petrecon.report.html`), so the page stands alone. Axes are the
patient's, DICOM LPS (mm), whatever the patient position: the image axes are
mapped through :mod:`petrecon.geometry.patient` (each gantry axis is one
patient axis, with a sign and the bed offset), and drawn the way radiologists
read them: head up in the MIPs, anterior up in the transverse slice, the
patient's right on the viewer's left (L increasing to the right). The VOIs
are drawn where their DICOM coordinates are. Each figure takes well under a
second (matplotlib Agg at 100 dpi).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from petrecon.geometry.patient import gantry_to_patient_affine, volume_patient_frame
from petrecon.quant.lesions import organ_spec
from petrecon.quant.report import parse_roi
from petrecon.report import html
from petrecon.report.figures import pyplot, save_figure
from petrecon.volume import Volume

REPORT_NAME = "report.html"
MIPS_NAME = "mips.png"
FUSED_NAME = "fused.png"
INDEX_NAME = "index.html"
_COLOURS = {"organ": "tab:green", "lesion": "tab:red", "roi": "tab:blue"}


def voi_outlines(vois) -> list[tuple[str, str, np.ndarray, float]]:
    """``(name, kind, centre in patient LPS mm, radius mm)`` of every VOI of a :class:`~petrecon.quant.lesions.VoiSet`.

    Organs and lesions are their spheres (the lesion's search sphere); a box
    is drawn as the sphere through its corners' half-extent.
    """
    specs = [(name, "organ", organ_spec(centre, name)) for name, centre in vois.organs.items()]
    specs += [(name, "lesion", search) for name, search in vois.lesions.items()]
    specs += [(spec, "roi", spec) for spec in vois.rois]
    outlines = []
    for name, kind, spec in specs:
        shape, values = parse_roi(spec)
        if shape == "sphere":
            centre, radius = np.array(values[:3]), values[3]
        else:
            low, high = np.array(values[:3]), np.array(values[3:])
            centre, radius = (low + high) / 2, float(np.max(high - low)) / 2
        outlines.append((name, kind, centre, float(radius)))
    return outlines


def patient_axes(volume: Volume) -> list[np.ndarray]:
    """Voxel centres of the image axes in patient coordinates: axis 0 along L, 1 along P, 2 along S (mm).

    Every patient position maps each gantry axis onto the same-numbered LPS
    axis, with a sign and the bed offset (:func:`~petrecon.geometry.patient.gantry_to_patient_affine`);
    the centres may therefore decrease along an axis.

    Examples
    --------
    >>> from petrecon.volume import ImageGrid
    >>> volume = Volume(np.zeros((2, 2, 3)), ImageGrid.centred((2, 2, 3), (1.0, 1.0, 2.0)),
    ...                 {"patient_position": "HFS", "bed_position_mm": 10.0})
    >>> patient_axes(volume)[2].tolist()
    [12.0, 10.0, 8.0]
    """
    affine = gantry_to_patient_affine(*volume_patient_frame(volume.metadata))
    return [affine[axis, axis] * volume.grid.voxel_centres_mm(axis) + affine[axis, 3] for axis in range(3)]


def _plane(volume: Volume, data: np.ndarray, horizontal: int, vertical: int) -> tuple[np.ndarray, list[float]]:
    """A 2-D plane (``data``'s axes: image axes ``horizontal`` < ``vertical``) with rows along ``vertical``, both
    patient coordinates increasing along the array, and its imshow extent in LPS mm (``origin="lower"``)."""
    centres = patient_axes(volume)
    for axis, patient_axis in enumerate((horizontal, vertical)):
        if centres[patient_axis][0] > centres[patient_axis][-1]:
            data = np.flip(data, axis=axis)
    extent = []
    for patient_axis in (horizontal, vertical):
        half = volume.grid.voxel_size_mm[patient_axis] / 2
        extent += [float(centres[patient_axis].min()) - half, float(centres[patient_axis].max()) + half]
    return data.T, extent


def mips_png(volume: Volume, outlines, path: str | os.PathLike, *, title: str, overwrite: bool = False) -> Path:
    """Coronal (along P) and sagittal (along L) MIPs, head up, with the VOI ``outlines`` drawn and labelled."""
    plt = pyplot()
    data = np.asarray(volume.data, np.float32)
    top = float(np.percentile(data, 99.9)) or 1.0
    fig, axes = plt.subplots(1, 2, figsize=(10, 5.5))
    views = ((axes[0], 1, 0, "coronal MIP", "L (mm): patient's left to the right"),
             (axes[1], 0, 1, "sagittal MIP", "P (mm): posterior to the right"))
    for ax, along, horizontal, name, label in views:
        plane, extent = _plane(volume, data.max(axis=along), horizontal, 2)
        shown = ax.imshow(plane, origin="lower", extent=extent, cmap="gray_r", vmin=0, vmax=top)
        ax.set(title=name, xlabel=label, ylabel="S (mm): head up")
        for voi, kind, centre, radius in outlines:
            colour = _COLOURS[kind]
            ax.add_patch(plt.Circle((centre[horizontal], centre[2]), radius, fill=False, color=colour, lw=1.2))
            ax.annotate(voi, (centre[horizontal], centre[2] + radius), color=colour, fontsize=8, ha="center",
                        va="bottom", annotation_clip=False)
    fig.colorbar(shown, ax=list(axes), fraction=0.03, label=volume.metadata.get("units", ""))
    fig.suptitle(title)
    return save_figure(fig, path, overwrite)


def fused_png(volume: Volume, anatomy: Volume | None, s_mm: float, path: str | os.PathLike, *, title: str,
              overwrite: bool = False) -> Path:
    """The transverse slice nearest ``s_mm`` (patient S), anterior up: PET in colour (transparent below 10 % of
    its maximum) over the anatomical image on the same grid, or the PET alone."""
    plt = pyplot()
    centres = patient_axes(volume)
    k = int(np.argmin(np.abs(centres[2] - s_mm)))
    pet, extent = _plane(volume, np.asarray(volume.data, np.float32)[:, :, k], 0, 1)
    top = float(np.percentile(np.asarray(volume.data), 99.9)) or 1.0
    fig, ax = plt.subplots(figsize=(6, 5.5))
    if anatomy is not None:
        under, _ = _plane(volume, np.asarray(anatomy.data, np.float32)[:, :, k], 0, 1)
        ax.imshow(under, origin="lower", extent=extent, cmap="gray", vmin=float(np.percentile(under, 1)),
                  vmax=float(np.percentile(under, 99.5)) or 1.0)
    shown = ax.imshow(np.ma.masked_less(pet, 0.1 * top), origin="lower", extent=extent, cmap="hot", vmin=0,
                      vmax=top, alpha=0.6 if anatomy is not None else 1.0)
    ax.set_ylim(extent[3], extent[2])  # anterior (low P) up
    ax.set(xlabel="L (mm): patient's left to the right", ylabel="P (mm): anterior up")
    fig.colorbar(shown, ax=ax, fraction=0.04, label=volume.metadata.get("units", ""))
    over = f" over {anatomy.metadata.get('label', 'the anatomy')}" if anatomy is not None else ""
    fig.suptitle(f"{title}: PET{over}, S = {float(centres[2][k]):.1f} mm")
    return save_figure(fig, path, overwrite)


def hottest_lesion_s_mm(volume: Volume, records: Sequence[Mapping]) -> float:
    """Patient S (mm) of the hottest measured lesion's maximum, else of the image's hottest voxel."""
    lesions = [r for r in records if r["kind"] == "lesion" and r.get("max_position_mm") is not None]
    if lesions:
        return float(max(lesions, key=lambda r: r["suv_max"])["max_position_mm"][2])
    index = np.unravel_index(int(np.argmax(volume.data)), volume.data.shape)
    return float(patient_axes(volume)[2][index[2]])


def _number(value, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def suv_table(records: Sequence[Mapping], *, caption: str) -> html.Html:
    """The SUV table of one image: one row per VOI."""
    header = ["VOI", "kind", "SUVmax", "SUVmean", "SUVpeak", "volume (ml)", "T/B max", "T/B peak", "reference",
              "status"]
    rows = [[r["voi"], r["kind"], _number(r["suv_max"]), _number(r["suv_mean"]), _number(r["suv_peak"]),
             _number(r["volume_ml"]), _number(r["tb_max"]), _number(r["tb_peak"]), r["reference"] or "",
             r["status"]] for r in records]
    return html.table(header, rows, caption=caption)


def write_patient_report(folder: str | os.PathLike, *, title: str, facts: Mapping[str, object],
                         images: Sequence[tuple[str, Volume, Sequence[Mapping]]], vois,
                         anatomy: Volume | None = None, overwrite: bool = False) -> Path:
    """Write ``report.html``, ``mips.png`` and ``fused.png`` into ``folder``.

    Parameters
    ----------
    title : str
        Page title (study and patient).
    facts : mapping
        Patient, injection and protocol facts, shown as a two-column table.
    images : sequence of (name, SUV volume, records)
        The quantified images (:func:`petrecon.quant.lesions.measure_vois` records); the figures show the first.
    vois : VoiSet
        The study's VOIs, outlined on the MIPs.
    anatomy : Volume, optional
        CT or Dixon water image on the first image's grid, under the fused slice.
    """
    folder = Path(folder)
    name, volume, records = images[0]
    mips = mips_png(volume, voi_outlines(vois), folder / MIPS_NAME, title=f"{title} ({name})",
                    overwrite=overwrite)
    fused = fused_png(volume, anatomy, hottest_lesion_s_mm(volume, records), folder / FUSED_NAME, title=name,
                      overwrite=overwrite)
    tables = [suv_table(image_records, caption=f"{image_name} ({image.metadata.get('units', '')})")
              for image_name, image, image_records in images]
    page = html.document(
        title,
        html.section("Patient and protocol", html.key_value_table(facts)),
        html.section("SUV", *tables),
        html.section("Images", html.png_figure(mips, "MIPs with VOIs",
                                               caption="coronal and sagittal MIPs; organs green, lesion search "
                                                       "spheres red, ROIs blue"),
                     html.png_figure(fused, "fused transverse slice",
                                     caption="transverse slice through the hottest lesion")))
    return html.write_html(folder / REPORT_NAME, page, overwrite=overwrite)


def write_index(out_dir: str | os.PathLike, rows: Sequence[Mapping[str, object]], *, title: str,
                overwrite: bool = False) -> Path:
    """``index.html``: one row per study (``rows``: ``study``, ``patient``, ``scanner``, ``protocol``,
    ``status``, ``report`` (a path relative to ``out_dir`` or empty), ``note``)."""
    lines = ["<table>", "<tr><th>study</th><th>patient</th><th>scanner</th><th>protocol</th><th>status</th>"
                        "<th>report</th><th>note</th></tr>"]
    for row in rows:
        link = html.Html(f'<a href="{html.escape(row["report"])}">report</a>') if row.get("report") else ""
        cells = [row.get(k, "") for k in ("study", "patient", "scanner", "protocol", "status")]
        lines.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells)
                     + f"<td>{html.escape(link)}</td><td>{html.escape(row.get('note', ''))}</td></tr>")
    lines.append("</table>")
    page = html.document(title, html.section("Studies", html.Html("\n".join(lines))),
                         html.paragraph("The cohort's table: ", html.Html('<a href="quantification.csv">'
                                                                          "quantification.csv</a>")))
    return html.write_html(Path(out_dir) / INDEX_NAME, page, overwrite=overwrite)
