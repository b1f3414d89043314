"""PETSIRD (ETSI raw data, PyPI ``petsird`` 0.12): scanner description to petrecon geometry, events to LORs.

Facts (reference/formats.md): a PETSIRD stream is a ``Header``
(``ScannerInformation``, optional ``ExamInformation``) then ``TimeBlock``s;
``EventTimeBlock`` holds ``prompt_events[type1][type2]`` and
``delayed_events``; times in ms. Detector elements are placed by rigid
transforms (module transform, then element transform) of a box;
``detection_bin = energy_idx + (element_idx + module_idx * n_elements) * n_energy``
(the package's helper code, which we follow).

Mapping to petrecon
-------------------
Only cylindrical ring scanners map onto a :class:`ScannerGeometry`: every
detecting element's box centre must lie on one radius, on equally spaced
rings (z) and at equally spaced angles with the same count per ring. Ring
index increases with z; crystal index ``c`` increases with the angle from
the one nearest to -pi/2 (:mod:`petrecon.geometry.scanner`); each crystal is
its own block, so the petrecon geometry puts it exactly where PETSIRD does.
The radius is that of the box centres (mean depth of interaction = half the
crystal length). petrecon rings are centred on z = 0; a PETSIRD scanner whose
rings are not is shifted (LOR endpoints keep the PETSIRD coordinates). PETSIRD has no coincidence window: it is recorded as 0.
Anything else raises :class:`~petrecon.errors.FormatError`. Events become
LOR endpoints (box centres, mm) for list-mode reconstruction, or span-1
list-mode addresses (:func:`crystal_pairs_to_listmode_address`) for
histogramming with :func:`petrecon.io.listmode.histogram_listmode`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from petrecon.errors import FormatError
from petrecon.geometry import ScannerGeometry, SinogramLayout, TofSpec
from petrecon.geometry.scanner import SPEED_OF_LIGHT_MM_PER_PS
from petrecon.io import petlink


@dataclass
class PetsirdScan:
    """Events of one module-type pair read from a PETSIRD file.

    Attributes
    ----------
    scanner : ScannerGeometry
        petrecon geometry derived from the PETSIRD scanner description.
    element_centres_mm : numpy.ndarray
        float64 ``(n_elements, 3)``, centre of each detecting element (index
        ``element_idx + module_idx * n_elements_per_module``).
    ring, crystal : numpy.ndarray
        int64 ``(n_elements,)``: each element's ring and crystal in ``scanner``.
    n_energy_bins : int
        Energy bins folded into the detection bins.
    elements, tof_index, time_ms, is_prompt : numpy.ndarray
        Per event: the two elements ``(n, 2)``, the TOF bin, the start of its
        time block (ms) and prompt (True) or delayed.
    model_name : str
        ``ScannerInformation.model_name``.
    angle_offset_rad : float
        Rotation of the PETSIRD crystals from petrecon's positions (see :func:`scanner_from_petsird`).
    """

    scanner: ScannerGeometry
    element_centres_mm: np.ndarray
    ring: np.ndarray
    crystal: np.ndarray
    n_energy_bins: int
    elements: np.ndarray
    tof_index: np.ndarray
    time_ms: np.ndarray
    is_prompt: np.ndarray
    model_name: str
    angle_offset_rad: float

    def lor_endpoints_mm(self) -> tuple[np.ndarray, np.ndarray]:
        """``xstart, xend``: float32 ``(n_events, 3)`` element centres of each event's two detections."""
        centres = self.element_centres_mm.astype(np.float32)
        return centres[self.elements[:, 0]], centres[self.elements[:, 1]]

    def listmode_addresses(self, layout: SinogramLayout) -> np.ndarray:
        """Span-1 list-mode address of each event in ``layout.listmode_layout()`` (-1 outside it)."""
        if layout.scanner.n_crystals_per_ring != self.scanner.n_crystals_per_ring or \
                layout.scanner.n_rings != self.scanner.n_rings:
            raise FormatError("petsird", "scanner_geometry", f"{self.scanner.n_rings} rings x "
                              f"{self.scanner.n_crystals_per_ring} crystals do not match layout scanner "
                              f"{layout.scanner.name}")
        first, second = self.elements[:, 0], self.elements[:, 1]
        crystal = self.layout_crystals(layout)
        return crystal_pairs_to_listmode_address(layout, self.ring[first], crystal[first], self.ring[second],
                                                 crystal[second])

    def layout_crystals(self, layout: SinogramLayout) -> np.ndarray:
        """The crystal of ``layout``'s scanner nearest in angle to each element (the scanner's own numbering).

        PETSIRD numbers nothing: its elements are placed by transforms. A
        registry scanner numbers its crystals as the real scanner does
        (:mod:`petrecon.geometry.scanner`), so elements are matched to those
        crystals by their angle about the axis.
        """
        n_crystals = self.scanner.n_crystals_per_ring
        first_element = np.zeros(n_crystals, np.int64)
        first_element[self.crystal[::-1]] = np.arange(self.crystal.size)[::-1]   # one element per crystal index
        centres = self.element_centres_mm[first_element]
        angle = np.arctan2(centres[:, 1], centres[:, 0])
        difference = np.angle(np.exp(1j * (angle[:, None] - layout.scanner.crystal_angles_rad()[None, :])))
        return np.argmin(np.abs(difference), axis=1).astype(np.int64)[self.crystal]

    def listmode_words(self, layout: SinogramLayout) -> np.ndarray:
        """A PETLINK word stream of the events (time tags per ms) for :func:`histogram_listmode`.

        Events outside the layout (radial range, ring difference) get an
        address beyond the span-1 sinogram, so the histogrammer counts them
        as dropped.
        """
        address = self.listmode_addresses(layout)
        span1 = layout.listmode_layout()
        outside = span1.n_sinograms * span1.n_views * span1.n_radial_bins
        address = np.where(address < 0, outside, address)
        duration_ms = int(self.time_ms.max()) + 1 if self.time_ms.size else 0
        words = petlink.encode_event_words(address, self.is_prompt)
        return petlink.interleave_time_tags(words, self.time_ms, duration_ms)


def crystal_pairs_to_listmode_address(layout: SinogramLayout, ring1, crystal1, ring2, crystal2) -> np.ndarray:
    """Span-1 address ``sinogram * nv * nb + view * nb + bin`` of crystal pairs (-1 if not in the layout).

    The inverse of :meth:`SinogramLayout.view_crystals` (unmashed) and the
    span-1 ring pairs: ``(ring1, crystal1)`` is taken as the ``c_a`` end and
    ``(ring2, crystal2)`` as the ``c_b`` end; an unordered pair is stored
    once, with view ``u < n_crystals / 2``, so the two ends swap when the
    view falls in the other half.

    Examples
    --------
    >>> from petrecon.geometry import default_layout
    >>> layout = default_layout("test", span=1)
    >>> c1, c2 = layout.view_crystals(np.array([5]))
    >>> int(crystal_pairs_to_listmode_address(layout, 2, c1[0, 0, 10], 3, c2[0, 0, 10]) % (56 * 64))
    330
    """
    n = layout.scanner.n_crystals_per_ring
    ring1, crystal1, ring2, crystal2 = (np.asarray(a, dtype=np.int64) for a in (ring1, crystal1, ring2, crystal2))

    def view_and_offset(crystal_a, crystal_b):
        t = (crystal_b - crystal_a + n // 2) % n
        t = np.where(t >= n // 2, t - n, t)
        return (crystal_b + 1 - np.floor_divide(t, 2)) % n, t

    view, t = view_and_offset(crystal1, crystal2)
    swap = view >= n // 2
    ring1, ring2 = np.where(swap, ring2, ring1), np.where(swap, ring1, ring2)
    crystal1, crystal2 = np.where(swap, crystal2, crystal1), np.where(swap, crystal1, crystal2)
    view, t = view_and_offset(crystal1, crystal2)
    span1 = layout.listmode_layout()
    radial_bin = t + span1.n_radial_bins // 2
    sinogram = span1.ring_pair_to_sinogram()[ring1, ring2]
    inside = (radial_bin >= 0) & (radial_bin < span1.n_radial_bins) & (sinogram >= 0) & (view < n // 2)
    address = (sinogram * span1.n_views + view) * span1.n_radial_bins + radial_bin
    return np.where(inside, address, -1)


def scanner_from_petsird(scanner_information, type_of_module: int = 0, path: str | os.PathLike = "petsird"):
    """petrecon geometry of one module type of a PETSIRD ``ScannerInformation``.

    Returns
    -------
    scanner : ScannerGeometry
    centres : numpy.ndarray
        ``(n_elements, 3)`` element centres (mm).
    ring, crystal : numpy.ndarray
        Each element's ring and crystal index.
    angle_offset_rad : float
        Rotation of the PETSIRD crystals from petrecon's crystal positions
        (crystal ``c`` sits at ``-pi/2 + 2 pi c / n + angle_offset_rad``).

    Raises
    ------
    FormatError
        If the elements do not form equally spaced rings of equally spaced crystals.
    """
    geometry = scanner_information.scanner_geometry
    if not 0 <= type_of_module < len(geometry.replicated_modules):
        raise FormatError(path, "scanner_geometry.replicated_modules", f"has no module type {type_of_module}")
    replicated = geometry.replicated_modules[type_of_module]
    elements = replicated.object.detecting_elements
    corners = np.array([corner.c for corner in elements.object.shape.corners], dtype=np.float64)
    box_centre = np.append(corners.mean(axis=0), 1.0)
    centres = []
    for module_transform in replicated.transforms:
        module = np.vstack([np.asarray(module_transform.matrix, np.float64), [0, 0, 0, 1]])
        for element_transform in elements.transforms:
            element = np.vstack([np.asarray(element_transform.matrix, np.float64), [0, 0, 0, 1]])
            centres.append((module @ element @ box_centre)[:3])
    centres = np.array(centres)
    radius = np.hypot(centres[:, 0], centres[:, 1])
    if centres.size == 0 or np.ptp(radius) > 1e-3 * radius.mean():
        raise FormatError(path, "scanner_geometry", "detecting elements are not on one cylinder")
    z_values, ring = np.unique(np.round(centres[:, 2], 3), return_inverse=True)
    n_rings = z_values.size
    spacing = np.diff(z_values)
    if n_rings > 1 and np.ptp(spacing) > 1e-3 * spacing.mean():
        raise FormatError(path, "scanner_geometry", "rings are not equally spaced")
    n_crystals = centres.shape[0] // n_rings
    if n_crystals * n_rings != centres.shape[0] or np.any(np.bincount(ring) != n_crystals) or n_crystals % 2:
        raise FormatError(path, "scanner_geometry", "rings do not hold the same even number of crystals")
    pitch = 2 * np.pi / n_crystals
    position = (np.arctan2(centres[:, 1], centres[:, 0]) + np.pi / 2) / pitch
    offset = float(np.angle(np.mean(np.exp(2j * np.pi * position))) / (2 * np.pi))  # common rotation, in pitches
    position = position - offset
    crystal = np.rint(position).astype(np.int64) % n_crystals
    if np.max(np.abs(position - np.rint(position))) > 0.05 or \
            np.unique(ring * n_crystals + crystal).size != centres.shape[0]:
        raise FormatError(path, "scanner_geometry", "crystals are not equally spaced around the rings")
    energy_edges = np.asarray(scanner_information.event_energy_bin_edges[type_of_module].edges, np.float64)
    tof = None
    tof_edges = np.asarray(scanner_information.tof_bin_edges[type_of_module][type_of_module].edges, np.float64)
    if tof_edges.size > 2:
        to_ps = 2.0 / SPEED_OF_LIGHT_MM_PER_PS
        tof = TofSpec(n_bins=tof_edges.size - 1, bin_width_ps=float(np.mean(np.diff(tof_edges))) * to_ps,
                      fwhm_ps=float(scanner_information.tof_resolution[type_of_module][type_of_module]) * to_ps)
    ring_spacing = float(spacing.mean()) if n_rings > 1 else 1.0
    scanner = ScannerGeometry(
        name="petsird", description=f"PETSIRD scanner {scanner_information.model_name!r}", n_rings=n_rings,
        n_crystals_per_ring=n_crystals, crystals_per_block=1, gap_crystals_per_block=0,
        radius_mm=float(radius.mean()), ring_spacing_mm=ring_spacing, virtual_ring_positions=(),
        energy_window_kev=(float(energy_edges[0]), float(energy_edges[-1])), coincidence_window_ns=0.0, tof=tof,
        default_image_shape=(n_crystals // 2, n_crystals // 2, 2 * n_rings - 1),
        default_voxel_size_mm=(float(2 * radius.mean() / (n_crystals // 2)),) * 2 + (ring_spacing / 2,),
        angular_offset_rad=float((offset - 0.5) * pitch))
    return scanner, centres, ring, crystal, offset * pitch


def read_petsird(path: str | os.PathLike, *, type_of_module: int = 0) -> PetsirdScan:
    """Read a binary PETSIRD file: scanner geometry and the prompts/delays of one module type.

    Raises
    ------
    FormatError
        Unreadable stream, non-cylindrical scanner, or event indices out of range.
    """
    import petsird

    path = Path(path)
    if not path.is_file():
        raise FormatError(path, "file", "does not exist")
    pairs, tof, times, prompt = [], [], [], []
    try:
        with petsird.BinaryPETSIRDReader(str(path)) as reader:
            header = reader.read_header()
            scanner, centres, ring, crystal, offset = scanner_from_petsird(header.scanner, type_of_module, path)
            n_energy = len(header.scanner.event_energy_bin_edges[type_of_module].edges) - 1
            for block in reader.read_time_blocks():
                if not isinstance(block, petsird.TimeBlock.EventTimeBlock):
                    continue
                value = block.value
                for events, is_prompt in ((value.prompt_events, True), (value.delayed_events, False)):
                    chosen = _events_of(events, type_of_module)
                    for event in chosen:
                        pairs.append(tuple(event.detection_bins[:2]))
                        tof.append(event.tof_idx)
                    times += [value.time_interval.start] * len(chosen)
                    prompt += [is_prompt] * len(chosen)
    except FormatError:
        raise
    except Exception as error:  # the yardl reader raises many types on a damaged stream
        raise FormatError(path, "stream", f"is not a readable PETSIRD binary file ({type(error).__name__}: {error})"
                          ) from None
    elements = np.array(pairs, dtype=np.int64).reshape(-1, 2) // max(n_energy, 1)
    if elements.size and elements.max() >= centres.shape[0]:
        raise FormatError(path, "detection_bins", f"index {elements.max()} beyond {centres.shape[0]} elements")
    return PetsirdScan(scanner, centres, ring.astype(np.int64), crystal, n_energy, elements,
                       np.array(tof, dtype=np.int64), np.array(times, dtype=np.int64), np.array(prompt, dtype=bool),
                       str(header.scanner.model_name), offset)


def _events_of(events, type_of_module: int) -> list:
    """The events list for the pair (type_of_module, type_of_module) of a lower-triangular list, or []."""
    if not events or len(events) <= type_of_module or len(events[type_of_module]) <= type_of_module:
        return []
    return list(events[type_of_module][type_of_module] or [])
