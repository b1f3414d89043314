"""Streaming PETLINK list-mode decoding, time framing and CPU histogramming.

The word layout is in :mod:`petrecon.io.petlink` (reference/formats.md). The
histogram semantics (shared with the CUDA kernel, which must agree bin for
bin):

- the current time is 0 ms before any time tag; a time tag sets it to its
  value (ms); the time carries over chunk boundaries;
- an event word (bit 31 = 0) counts if ``start_ms <= current time < end_ms``;
  its address ``a`` indexes :meth:`SinogramLayout.listmode_layout` (span 1,
  unmashed): ``s1 = a // (nv1 * nb)``, ``u = (a // nb) % nv1``,
  ``b = a % nb``; it lands in sinogram ``span1_sinogram_map()[s1]`` (not
  counted if -1: ``n_unmapped``), view ``u // view_mashing``, bin ``b``;
- addresses ``>=`` the span-1 size are dropped and counted (``n_dropped``);
- bit 30 = 1 is a prompt, else a delayed coincidence;
- bucket-singles words (``0b101``) inside the frame are decoded (bucket,
  rate = value x 8 per second) and averaged per bucket; other tags
  (``0b110``, ``0b111``) are skipped;
- the frame's duration is the number of time tags inside it times 1 ms (one
  tag arrives every millisecond, reference/formats.md).

Implementation (numba, all threads): the file is read in chunks of
``chunk_words``; each chunk is decoded in parallel slices (a slice starts at
the time of the last time tag before it) into target indices of one
``[prompts | delays]`` uint32 array; batches of up to ``BATCH_EVENTS``
targets are scattered into buckets of 2**16 bins and accumulated bucket by
bucket, in ascending order inside each bucket, buckets shared between
threads: no write races, no per-thread histogram copies (a span-1 mMR
histogram is 1.4 GB per array), and the histogram sits on transparent huge
pages. Figures: benchmarks/RESULTS.md.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numba
import numpy as np

from petrecon.errors import FormatError, ParameterError
from petrecon.geometry import SinogramLayout
from petrecon.io import petlink
from petrecon.io.atomic import EXISTS

DEFAULT_CHUNK_WORDS = 1 << 22  # 16 MiB of words read at a time
#: Events of a frame that may address no sinogram bin (dropped or unmapped) before the data are refused.
MAX_LOST_FRACTION = 0.5
#: Events of a frame that may address beyond the span-1 sinogram (dropped) before the data are refused: every
#: address of a scanner's own list-mode lies inside its span-1 sinogram, so more than a stray corrupt word or
#: two per million means the words index another layout (a scrambled histogram), not this one.
MAX_DROPPED_FRACTION = 1e-6
#: The only word size petrecon decodes (``%LM event and tag words format`` of the Interfile header).
WORD_BITS = "32"
BATCH_EVENTS = 1 << 25  # decoded events histogrammed together (128 MiB of targets + 128 MiB sorted)
N_BUCKETS = int(petlink.SINGLES_BUCKET_MASK) + 1

# indices into the kernel's int64 state vector
_TIME, _DROPPED, _UNMAPPED, _TAGS, _SINGLES_WORDS, _OTHER_TAGS, _EVENTS_IN_FRAME = range(7)


@dataclass
class ListmodeHistogram:
    """Prompts and delays histogrammed from one list-mode frame.

    Attributes
    ----------
    prompts, delays : numpy.ndarray
        uint32 sinograms in ``layout.shape``.
    layout : SinogramLayout
        Layout of the sinograms.
    start_s, end_s : float
        Frame requested (``end_s`` is ``inf`` for "to the end").
    duration_s : float
        Time covered by the frame: time tags inside it x 1 ms.
    n_dropped : int
        Events in the frame whose address is outside the span-1 sinogram.
    n_unmapped : int
        Events in the frame whose ring pair the layout does not store.
    n_words : int
        Words read (events and tags, all times).
    n_events_in_frame : int
        Event words inside the frame (counted, dropped and unmapped).
    singles_per_s : dict of int to float
        Mean bucket singles rate (1/s) inside the frame, per bucket seen.
    n_other_tags : int
        Tag words skipped (gating, motion, bed position, ...).
    elapsed_s : float
        Wall time of reading, decoding and histogramming.
    """

    prompts: np.ndarray
    delays: np.ndarray
    layout: SinogramLayout
    start_s: float
    end_s: float
    duration_s: float
    n_dropped: int
    n_unmapped: int
    n_words: int
    n_events_in_frame: int
    singles_per_s: dict[int, float] = field(default_factory=dict)
    n_other_tags: int = 0
    elapsed_s: float = 0.0

    @property
    def n_prompts(self) -> int:
        """Prompts histogrammed."""
        return int(self.prompts.sum(dtype=np.int64))

    @property
    def n_delays(self) -> int:
        """Delayed coincidences histogrammed."""
        return int(self.delays.sum(dtype=np.int64))

    def check(self, source: str | os.PathLike) -> "ListmodeHistogram":
        """Refuse a histogram a physicist would not accept: no event in the frame, no prompt, more than
        :data:`MAX_DROPPED_FRACTION` of the events addressing beyond the span-1 sinogram, or most events
        addressing no sinogram bin (not list-mode of this scanner, or corrupt); returns itself."""
        frame = f"the frame {self.start_s:g} s .. {'end' if np.isinf(self.end_s) else f'{self.end_s:g} s'}"
        if self.n_events_in_frame == 0:
            raise FormatError(source, "events", f"none in {frame} ({self.n_words} words read)")
        if self.n_dropped > MAX_DROPPED_FRACTION * self.n_events_in_frame:
            span1 = self.layout.listmode_layout()
            raise FormatError(source, "events", f"{self.n_dropped} of the {self.n_events_in_frame} events in {frame} "
                                                f"address no bin of the {self.layout.scanner.name} span-1 sinogram "
                                                f"({span1.n_sinograms} x {span1.n_views} x {span1.n_radial_bins}): "
                                                "list-mode of another scanner or layout (--scanner?) or corrupt")
        lost = (self.n_dropped + self.n_unmapped) / self.n_events_in_frame
        if lost > MAX_LOST_FRACTION:
            raise FormatError(source, "events", f"{100 * lost:.2f} % of the {self.n_events_in_frame} events in "
                                                f"{frame} address no bin of the {self.layout.scanner.name} sinogram: "
                                                "not PETLINK list-mode of this scanner (--scanner?) or corrupt")
        if self.n_prompts == 0:
            raise FormatError(source, "events", f"no prompt in {frame}")
        return self

    def summary_lines(self) -> list[str]:
        """Human-readable summary (what ``petrecon histogram`` prints)."""
        end = "end" if np.isinf(self.end_s) else f"{self.end_s:g} s"
        return [
            f"frame            {self.start_s:g} s .. {end} ({self.duration_s:.3f} s of time tags)",
            f"words read       {self.n_words}",
            f"events in frame  {self.n_events_in_frame}",
            f"prompts          {self.n_prompts}",
            f"delays           {self.n_delays}",
            f"dropped          {self.n_dropped} (address outside the span-1 sinogram)",
            f"unmapped         {self.n_unmapped} (ring pair not in the layout)",
            f"singles buckets  {len(self.singles_per_s)}",
            f"rate             {self.n_words / max(self.elapsed_s, 1e-9) / 1e6:.1f} M words/s "
            f"({self.elapsed_s:.2f} s reading, decoding and histogramming)",
        ]


def check_word_format(header) -> None:
    """Refuse a list-mode Interfile header (None: no header) whose words are not the 32-bit PETLINK words."""
    if header is None:
        return
    bits = header.text("lm event and tag words format", WORD_BITS).strip()
    if bits != WORD_BITS:
        raise FormatError(header.path, "%LM event and tag words format",
                          f"is {bits}; petrecon decodes {WORD_BITS}-bit PETLINK words only")


#: Header keys that describe the list-mode address space only in a header that says ``%axial compression := 1``.
SPAN1_ONLY_KEYS = ("%axial compression", "%number of segments", "%segment table", "%total number of sinograms")


def address_space_keys(layout: SinogramLayout) -> list[tuple[str, object]]:
    """The Siemens list-mode header keys that describe the span-1 sinogram the event words of ``layout`` address.

    ``%number of projections`` (radial bins) and ``%number of views`` are
    the keys of a Siemens list-mode header (STIR
    ``InterfileListmodeHeaderSiemens``); ``%axial compression`` (1),
    ``%maximum ring difference``, ``%number of segments``, ``%segment table``
    and ``%total number of sinograms`` those of its sinogram headers
    (reference/formats.md). The segment table fixes the rings (its first
    entry) and the ring pairs.

    Examples
    --------
    >>> from petrecon.geometry import default_layout
    >>> dict(address_space_keys(default_layout("mmr")))["%total number of sinograms"]
    4084
    """
    span1 = layout.listmode_layout()
    return [("%number of projections", span1.n_radial_bins), ("%number of views", span1.n_views),
            ("%axial compression", 1), ("%maximum ring difference", span1.max_ring_difference),
            ("%number of segments", len(span1.segment_table)), ("%segment table", list(span1.segment_table)),
            ("%total number of sinograms", span1.n_sinograms)]


def check_listmode_header(header, layout: SinogramLayout) -> None:
    """Refuse list-mode whose header (None: no header) says its words are not 32-bit PETLINK words, or address a
    span-1 sinogram other than ``layout``'s (:func:`address_space_keys`; keys the header lacks are not checked).

    Histogramming words of one address space into another drops nothing and scrambles everything: the
    address ``sinogram * views * bins + view * bins + bin`` decodes to other bins.

    Raises
    ------
    FormatError
        Naming the header file and the first key that differs.
    """
    check_word_format(header)
    if header is None:
        return
    # A scanner's list-mode header also carries the sinogram keys of its own histogramming (the mMR's say
    # "%axial compression := 11" with the span-11 segment table) while its words address span 1: those keys
    # describe the address space only where the header says span 1.
    describes_span1 = header.has("%axial compression") and header.integer("%axial compression") == 1
    for key, expected in address_space_keys(layout):
        if not header.has(key) or (key in SPAN1_ONLY_KEYS and not describes_span1):
            continue
        found = header.integer_list(key) if isinstance(expected, list) else header.integer(key)
        if found != expected:
            raise FormatError(header.path, key, f"is {found}: the words address another sinogram than the "
                                                f"{layout.scanner.name} layout's span-1 sinogram ({expected}); "
                                                "histogram with the layout the list-mode was acquired in")


def iter_listmode_chunks(path: str | os.PathLike, chunk_words: int = DEFAULT_CHUNK_WORDS) -> Iterator[np.ndarray]:
    """Yield the words of a PETLINK file in chunks of at most ``chunk_words`` (uint32, native order).

    The file is read sequentially into one buffer that every chunk reuses
    (no fresh memory, so no page faults, per chunk: 0.5 s of 1.8 s for 1e8
    events on the mMR benchmark): a chunk is valid until the next one is
    asked for; copy it to keep it.

    Raises
    ------
    FormatError
        If the file is missing or its size is not a whole number of 32-bit words.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.l"
    >>> np.arange(10, dtype="<u4").tofile(path)
    >>> [chunk.tolist() for chunk in iter_listmode_chunks(path, chunk_words=4)]
    [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    """
    path = Path(path)
    if chunk_words < 1:
        raise ParameterError(f"chunk_words must be >= 1, got {chunk_words}")
    if not path.is_file():
        raise FormatError(path, "file", "does not exist")
    size = path.stat().st_size
    if size % 4:
        raise FormatError(path, "size", f"{size} bytes is not a whole number of 32-bit list-mode words "
                                        f"(truncated by {size % 4} bytes?)")
    buffer = np.empty(min(chunk_words, size // 4), dtype="<u4")
    with open(path, "rb") as f:
        while True:
            n_bytes = f.readinto(memoryview(buffer).cast("B"))
            if not n_bytes:
                return
            yield buffer[: n_bytes // 4].astype(np.uint32, copy=False)


def histogram_listmode(path_or_words: str | os.PathLike | np.ndarray, layout: SinogramLayout, *,
                       start_s: float = 0.0, end_s: float | None = None, chunk_words: int = DEFAULT_CHUNK_WORDS,
                       progress: bool = True) -> ListmodeHistogram:
    """Histogram a PETLINK stream (file or word array) into ``layout``'s sinograms.

    Parameters
    ----------
    path_or_words : path-like or numpy.ndarray
        A ``.l`` file of little-endian uint32 words, or the words themselves.
    layout : SinogramLayout
        Target layout (any span and view mashing; non-TOF).
    start_s, end_s : float
        Frame ``[start_s, end_s)`` in seconds from the start of the
        acquisition; ``end_s=None`` means to the end. Resolved to whole ms.
    chunk_words : int
        Words decoded per pass (memory bound of the reader).
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    ListmodeHistogram

    Raises
    ------
    ParameterError
        Bad frame or a TOF layout.
    FormatError
        Unreadable or truncated file.

    Examples
    --------
    >>> from petrecon.geometry import default_layout
    >>> layout = default_layout("test", span=1)
    >>> words = petlink.interleave_time_tags(petlink.encode_event_words(np.array([0, 0, 70]),
    ...                                      np.array([True, False, True])), np.array([0, 0, 1]), 2)
    >>> h = histogram_listmode(words, layout, progress=False)
    >>> int(h.prompts[0, 0, 0]), int(h.delays[0, 0, 0]), int(h.prompts[0, 1, 6]), h.duration_s
    (1, 1, 1, 0.002)
    """
    if layout.use_tof:
        raise ParameterError("list-mode histogramming into TOF layouts is not supported (PETLINK mMR words carry "
                             "no TOF bin)")
    start_ms, end_ms = frame_ms(start_s, end_s)
    started = time.perf_counter()
    histogrammer = _Histogrammer(layout, start_ms, end_ms)
    chunks, total = _chunks(path_or_words, chunk_words)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="histogram", unit="word", unit_scale=True)
    n_words = 0
    try:
        for chunk in chunks:
            histogrammer.add(chunk)
            n_words += chunk.size
            if bar is not None:
                bar.update(chunk.size)
        histogrammer.finish()
    finally:
        if bar is not None:
            bar.close()
    return histogrammer.result(layout, n_words, time.perf_counter() - started)


def iter_listmode_frames(path_or_words: str | os.PathLike | np.ndarray, layout: SinogramLayout,
                         frames_s: list[tuple[float, float]], *, chunk_words: int = DEFAULT_CHUNK_WORDS,
                         progress: bool = True) -> Iterator[ListmodeHistogram]:
    """Histogram consecutive frames in one pass over a PETLINK stream, yielding each frame as it completes.

    The frames ``[start_s, end_s)`` must be in time order and must not
    overlap (a dynamic schedule). A chunk is decoded only by the frames its
    time span touches (its first time is the last tag before it, its last the
    last tag in it), and a frame is yielded as soon as a time tag at or after
    its end has been read: at most two frames' sinograms are held at once, so
    each frame can be reconstructed while the next one is histogrammed.
    Each frame is histogrammed exactly as :func:`histogram_listmode` with
    that window would (``n_words`` counts the words that frame decoded).

    Examples
    --------
    >>> from petrecon.geometry import default_layout
    >>> layout = default_layout("test", span=1)
    >>> words = petlink.interleave_time_tags(petlink.encode_event_words(np.arange(5), np.ones(5, bool)),
    ...                                      np.array([0, 1, 1, 2, 3]), 4)
    >>> [h.n_prompts for h in iter_listmode_frames(words, layout, [(0, 0.002), (0.002, 0.004)], progress=False)]
    [3, 2]
    """
    if layout.use_tof:
        raise ParameterError("list-mode histogramming into TOF layouts is not supported")
    windows = [frame_ms(start, end) for start, end in frames_s]
    for (_, previous_end), (start, _) in zip(windows, windows[1:]):
        if start < previous_end:
            raise ParameterError("list-mode frames must be in time order and must not overlap")
    chunks, total = _chunks(path_or_words, chunk_words)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="histogram frames", unit="word", unit_scale=True)
    active: dict[int, list] = {}  # frame index -> [histogrammer, words decoded, seconds spent]
    # one pair of batch buffers for all frames (fresh ones cost page faults): each chunk is finished at once
    buffers = [np.empty(min(chunk_words, max(total, 1)), dtype=np.uint32) for _ in range(2)]
    next_frame, carried_ms = 0, 0
    try:
        for chunk in chunks:
            last_ms = _last_time_ms(chunk, carried_ms)
            for index in range(next_frame, len(windows)):
                start_ms, end_ms = windows[index]
                if start_ms > last_ms:
                    break
                if end_ms <= carried_ms:
                    continue
                if index not in active:
                    active[index] = [_Histogrammer(layout, start_ms, end_ms), 0, 0.0]
                    active[index][0].targets, active[index][0].ordered = buffers
                entry = active[index]
                started = time.perf_counter()
                entry[0].counters[_TIME] = carried_ms  # frames skip chunks: the time carries over them
                entry[0].add(chunk)
                entry[0].finish()
                entry[1] += chunk.size
                entry[2] += time.perf_counter() - started
            carried_ms = last_ms
            if bar is not None:
                bar.update(chunk.size)
            while next_frame < len(windows) and windows[next_frame][1] <= carried_ms:
                yield _finished(active.pop(next_frame, None), layout, windows[next_frame])
                next_frame += 1
        while next_frame < len(windows):
            yield _finished(active.pop(next_frame, None), layout, windows[next_frame])
            next_frame += 1
    finally:
        if bar is not None:
            bar.close()


def last_time_tag_ms(path_or_words: str | os.PathLike | np.ndarray, tail_words: int = 1 << 20) -> int:
    """Value of the last time tag of a PETLINK stream (ms), reading only its tail (-1 if it has none).

    Examples
    --------
    >>> last_time_tag_ms(petlink.interleave_time_tags(np.zeros(0, np.uint32), np.zeros(0, np.int64), 5))
    4
    """
    if isinstance(path_or_words, np.ndarray):
        return _last_time_ms(np.asarray(path_or_words, dtype=np.uint32), -1)
    path = Path(path_or_words)
    if not path.is_file():
        raise FormatError(path, "file", "does not exist")
    n_words = path.stat().st_size // 4
    with open(path, "rb") as f:
        end = n_words
        while end > 0:
            start = max(0, end - tail_words)
            f.seek(start * 4)
            found = _last_time_ms(np.frombuffer(f.read((end - start) * 4), dtype="<u4"), -1)
            if found >= 0:
                return found
            end = start
    return -1


def _finished(entry: list | None, layout: SinogramLayout, window: tuple[int, int]) -> ListmodeHistogram:
    """The histogram of a frame once the stream has passed its end (empty if no chunk reached it)."""
    histogrammer, n_words, elapsed_s = entry or [_Histogrammer(layout, *window), 0, 0.0]
    started = time.perf_counter()
    histogrammer.finish()
    return histogrammer.result(layout, n_words, elapsed_s + time.perf_counter() - started)


def _last_time_ms(words: np.ndarray, carried_ms: int) -> int:
    """Value of the last time tag in ``words``, else ``carried_ms``."""
    tags = np.flatnonzero((words >> np.uint32(29)) == 0b100)
    return int(words[tags[-1]] & petlink.TIME_MASK) if tags.size else carried_ms


_NO_END = np.iinfo(np.int64).max


def frame_ms(start_s: float, end_s: float | None) -> tuple[int, int]:
    """A frame in seconds as whole milliseconds ``[start_ms, end_ms)``; ``end_s=None`` is open-ended.

    Examples
    --------
    >>> frame_ms(10, 70.5)
    (10000, 70500)
    """
    if not np.isfinite(start_s) or start_s < 0:
        raise ParameterError(f"frame start must be a finite time >= 0 s, got {start_s}")
    start_ms = int(round(start_s * 1000.0))
    if end_s is None:
        return start_ms, _NO_END
    if not end_s > start_s:
        raise ParameterError(f"frame end ({end_s} s) must be after its start ({start_s} s)")
    return start_ms, int(round(min(end_s, 1e15) * 1000.0))


def parse_frame(text: str) -> tuple[float, float | None]:
    """Parse ``START_S:END_S`` (``END_S`` may be empty for "to the end").

    Examples
    --------
    >>> parse_frame("0:60"), parse_frame("120:")
    ((0.0, 60.0), (120.0, None))
    """
    start, separator, end = str(text).partition(":")
    try:
        if not separator:
            raise ValueError
        return float(start), (float(end) if end.strip() else None)
    except ValueError:
        raise ParameterError(f"frame must be START_S:END_S (seconds), got {text!r}") from None


def _chunks(path_or_words, chunk_words: int) -> tuple[Iterator[np.ndarray], int]:
    if isinstance(path_or_words, np.ndarray):
        words = np.ascontiguousarray(path_or_words, dtype=np.uint32)
        if words.ndim != 1:
            raise ParameterError(f"list-mode words must be a 1-D array, got shape {words.shape}")
        return (words[i:i + chunk_words] for i in range(0, words.size, chunk_words)), words.size
    path = Path(path_or_words)
    total = path.stat().st_size // 4 if path.is_file() else 0
    return iter_listmode_chunks(path, chunk_words), total


def histogram_listmode_to_container(source: str | os.PathLike, layout: SinogramLayout, out: str | os.PathLike, *,
                                    start_s: float = 0.0, end_s: float | None = None, progress: bool = True,
                                    overwrite: bool = False) -> ListmodeHistogram:
    """Histogram list-mode (``.l``/``.bf`` file, Siemens DICOM wrapper, or export folder) into an HDF5 container.

    The container holds sinograms ``prompts`` and ``delays`` (uint32, the
    layout's shape), attributes (frame, duration, counts, mean bucket singles)
    and the provenance (input SHA-256, layout, frame). What ``petrecon
    histogram`` runs. The table position ``%start horizontal bed position (mm)``
    of the Interfile header (the DICOM wrapper's, else ``<file>.hdr`` next to a
    raw ``.l``) becomes the attributes ``bed_position_mm`` and, for
    whole-body studies, ``bed_offset_mm`` (:func:`petrecon.geometry.patient.bed_attributes`).
    """
    from petrecon.io.container import Container, make_provenance, write_container
    from petrecon.geometry.patient import bed_attributes
    from petrecon.io.interfile import bed_position_mm, read_header

    source = Path(source)
    words_path = source
    header = read_header(Path(f"{source}.hdr")) if Path(f"{source}.hdr").is_file() else None
    if source.is_dir():
        from petrecon.io.siemens import open_export

        found = open_export(source).listmode
        if len(found) != 1:
            raise FormatError(source, "list-mode", f"the export holds {len(found)} list-mode objects; name one .dcm")
        words_path, header = found[0].payload_path, found[0].header
    elif source.suffix.lower() in (".dcm", ".ima"):
        from petrecon.io.siemens import read_wrapper

        wrapper = read_wrapper(source)
        if wrapper.kind != "listmode":
            raise FormatError(source, "kind", f"is a {wrapper.kind} object, not list-mode")
        words_path, header = wrapper.payload_path, wrapper.header
    if Path(out).exists() and not overwrite:
        raise FormatError(out, "file", EXISTS)
    check_listmode_header(header, layout)
    result = histogram_listmode(words_path, layout, start_s=start_s, end_s=end_s, progress=progress).check(source)
    attributes = {"frame_start_s": result.start_s, "frame_end_s": None if np.isinf(result.end_s) else result.end_s,
                  "duration_s": result.duration_s, "n_prompts": result.n_prompts, "n_delays": result.n_delays,
                  "n_dropped": result.n_dropped, "n_unmapped": result.n_unmapped,
                  "bucket_singles_per_s": {str(k): v for k, v in result.singles_per_s.items()}}
    bed_mm = bed_position_mm(header) if header is not None else None
    if bed_mm is not None:
        attributes.update(bed_attributes(bed_mm))
    provenance = make_provenance(protocol={"operation": "histogram", "span": layout.span,
                                           "max_ring_difference": layout.max_ring_difference,
                                           "frame_s": [start_s, end_s]},
                                 scanner=layout.scanner.name, input_files=[words_path])
    write_container(out, Container({"prompts": result.prompts, "delays": result.delays}, layout=layout,
                                   attributes=attributes, provenance=provenance), overwrite=overwrite)
    return result


_BUCKET_SHIFT = 16  # 65536 uint32 bins (256 KiB) per bucket: one bucket's histogram range stays in L2


def zeros_on_huge_pages(n: int) -> np.ndarray:
    """A zeroed uint32 array of ``n`` values, on transparent huge pages where Linux offers them.

    The histogram (2.8 GB for mMR span 1 prompts + delays) is written at
    random: with 4 KiB pages nearly every increment also misses the TLB.
    Huge pages cut the accumulate step of the span-1 benchmark 3x
    (benchmarks/RESULTS.md). Elsewhere this is ``np.zeros``.

    Examples
    --------
    >>> a = zeros_on_huge_pages(5)
    >>> a.dtype, int(a.sum())
    (dtype('uint32'), 0)
    """
    import mmap

    n_bytes = max(int(n), 1) * 4
    if not hasattr(mmap, "MADV_HUGEPAGE") or n_bytes < (1 << 21):
        return np.zeros(n, dtype=np.uint32)
    memory = mmap.mmap(-1, n_bytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    try:
        memory.madvise(mmap.MADV_HUGEPAGE)
    except OSError:
        pass  # huge pages disabled: the mapping still works, with normal pages
    return np.frombuffer(memory, dtype=np.uint32, count=n)


class _Histogrammer:
    """Cache-conscious histogramming of chunks into one uint32 array ``[prompts | delays]``.

    Per chunk: decode every word to its target index in parallel slices (each
    slice starts from the time of the last time tag before it), counting
    targets per bucket of 2**16 bins, into a batch buffer. Per batch (up to
    ``BATCH_EVENTS`` targets, many chunks: the denser the batch, the more
    increments share a cache line): scatter the targets into bucket order,
    then increment the histogram bucket by bucket (:func:`_accumulate`),
    buckets shared out between threads (no write races). Call
    :meth:`finish` after the last chunk.
    """

    def __init__(self, layout: SinogramLayout, start_ms: int, end_ms: int) -> None:
        span1 = layout.listmode_layout()
        self.sinogram_map = layout.span1_sinogram_map().astype(np.int64)
        self.geometry = np.array([span1.n_views, span1.n_radial_bins, layout.n_views, layout.view_mashing,
                                  span1.n_sinograms * span1.n_views * span1.n_radial_bins], dtype=np.int64)
        self.n_bins = int(np.prod(layout.shape))
        if 2 * self.n_bins >= 0xFFFF_FFFF:  # targets are uint32 with 0xFFFFFFFF meaning "not counted"
            raise ParameterError(f"layout of {self.n_bins} bins is too large for one list-mode histogram")
        self.histogram = zeros_on_huge_pages(2 * self.n_bins)
        self.n_buckets = ((2 * self.n_bins - 1) >> _BUCKET_SHIFT) + 1
        self.frame = np.array([start_ms, end_ms], dtype=np.int64)
        self.n_slices = max(1, numba.get_num_threads())
        self.counters = np.zeros(len(_COUNTERS), dtype=np.int64)
        self.singles_sum = np.zeros(N_BUCKETS, dtype=np.float64)
        self.singles_n = np.zeros(N_BUCKETS, dtype=np.int64)
        self.targets = np.empty(0, dtype=np.uint32)
        self.ordered = np.empty(0, dtype=np.uint32)
        self.fill = 0
        self.slice_bounds: list[np.ndarray] = []
        self.slice_counts: list[np.ndarray] = []

    def add(self, words: np.ndarray) -> None:
        if words.size == 0:
            return
        if self.fill + words.size > self.targets.size:
            self.finish()
            if words.size > self.targets.size:
                self.targets = np.empty(max(words.size, BATCH_EVENTS), dtype=np.uint32)
                self.ordered = np.empty_like(self.targets)  # reused by every batch: no page faults after the first
        n_slices = min(self.n_slices, words.size)
        bounds = np.linspace(0, words.size, n_slices + 1).astype(np.int64)
        start_times = _slice_start_times(words, bounds, self.counters[_TIME])
        bucket_counts = np.zeros((n_slices, self.n_buckets), dtype=np.int64)
        counters = np.zeros((n_slices, len(_COUNTERS)), dtype=np.int64)
        singles_sum = np.zeros((n_slices, N_BUCKETS), dtype=np.float64)
        singles_n = np.zeros((n_slices, N_BUCKETS), dtype=np.int64)
        _decode(words, bounds, start_times, self.sinogram_map, self.geometry, self.frame, self.n_bins,
                self.targets[self.fill:self.fill + words.size], bucket_counts, counters, singles_sum, singles_n)
        self.slice_bounds.append(bounds + self.fill)
        self.slice_counts.append(bucket_counts)
        self.fill += words.size
        self.counters[_TIME] = counters[-1, _TIME]
        self.counters[1:] += counters[:, 1:].sum(axis=0)
        self.singles_sum += singles_sum.sum(axis=0)
        self.singles_n += singles_n.sum(axis=0)

    def result(self, layout: SinogramLayout, n_words: int, elapsed_s: float) -> ListmodeHistogram:
        """The frame's histogram and counters (call after :meth:`finish`)."""
        state, singles_n = self.counters, self.singles_n
        seen = np.flatnonzero(singles_n)
        start_ms, end_ms = (int(v) for v in self.frame)
        return ListmodeHistogram(
            prompts=self.histogram[:self.n_bins].reshape(layout.shape),
            delays=self.histogram[self.n_bins:].reshape(layout.shape), layout=layout,
            start_s=start_ms / 1000.0, end_s=np.inf if end_ms == _NO_END else end_ms / 1000.0,
            duration_s=int(state[_TAGS]) / 1000.0, n_dropped=int(state[_DROPPED]), n_unmapped=int(state[_UNMAPPED]),
            n_words=n_words, n_events_in_frame=int(state[_EVENTS_IN_FRAME]),
            singles_per_s={int(b): float(self.singles_sum[b] / singles_n[b]) for b in seen},
            n_other_tags=int(state[_OTHER_TAGS]), elapsed_s=elapsed_s)

    def finish(self) -> None:
        """Histogram the decoded batch."""
        if not self.slice_counts:
            return
        starts = np.concatenate([bounds[:-1] for bounds in self.slice_bounds])
        ends = np.concatenate([bounds[1:] for bounds in self.slice_bounds])
        bucket_counts = np.concatenate(self.slice_counts, axis=0)
        bucket_start = np.zeros(self.n_buckets + 1, dtype=np.int64)
        np.cumsum(bucket_counts.sum(axis=0), out=bucket_start[1:])
        # write position of each (slice, bucket): slices in stream order inside each bucket
        positions = bucket_start[:-1][None, :] + np.cumsum(bucket_counts, axis=0) - bucket_counts
        ordered = self.ordered[:int(bucket_start[-1])]
        _scatter(self.targets, starts, ends, positions, ordered)
        _accumulate(ordered, bucket_start, self.histogram)
        self.fill = 0
        self.slice_bounds, self.slice_counts = [], []


_COUNTERS = (_TIME, _DROPPED, _UNMAPPED, _TAGS, _SINGLES_WORDS, _OTHER_TAGS, _EVENTS_IN_FRAME)


@numba.njit(cache=True, nogil=True)
def _slice_start_times(words, bounds, carried_ms):  # pragma: no cover - compiled
    """Current time at the start of each slice: the last time tag before it, else the carried time."""
    times = np.empty(bounds.size - 1, dtype=np.int64)
    times[0] = carried_ms
    for k in range(1, bounds.size - 1):
        times[k] = -1
        for i in range(bounds[k] - 1, bounds[k - 1] - 1, -1):
            if words[i] >> 29 == 0b100:
                times[k] = words[i] & 0x1FFF_FFFF
                break
        if times[k] < 0:
            times[k] = times[k - 1]
    return times


@numba.njit(parallel=True, cache=True, nogil=True)
def _decode(words, bounds, start_times, sinogram_map, geometry, frame, n_bins, targets, bucket_counts, counters,
            singles_sum, singles_n):  # pragma: no cover - compiled
    nv1, nb, nv, view_mashing, n_addresses = geometry[0], geometry[1], geometry[2], geometry[3], geometry[4]
    start_ms, end_ms = frame[0], frame[1]
    views_x_bins1 = nv1 * nb
    views_x_bins = nv * nb
    inverse = 1.0 / views_x_bins1
    for k in numba.prange(bounds.size - 1):
        t = start_times[k]
        in_frame = dropped = unmapped = tags = singles_words = other = 0
        counts = bucket_counts[k]
        counting = start_ms <= t < end_ms
        for i in range(bounds[k], bounds[k + 1]):
            w = np.int64(words[i])
            target = np.int64(0xFFFF_FFFF)
            if w < 0x8000_0000:
                if counting:
                    in_frame += 1
                    a = w & 0x3FFF_FFFF
                    if a >= n_addresses:
                        dropped += 1
                    else:
                        # a < 2**30: the float quotient is off by at most one
                        s1 = np.int64(a * inverse)
                        rest = a - s1 * views_x_bins1
                        if rest < 0:
                            s1 -= 1
                            rest += views_x_bins1
                        elif rest >= views_x_bins1:
                            s1 += 1
                            rest -= views_x_bins1
                        s = sinogram_map[s1]
                        if s < 0:
                            unmapped += 1
                        else:
                            if view_mashing == 1:
                                target = s * views_x_bins + rest
                            else:
                                u = rest // nb
                                target = s * views_x_bins + (u // view_mashing) * nb + (rest - u * nb)
                            target += n_bins * (1 - ((w >> 30) & 1))  # delays after prompts, no branch
                            counts[target >> _BUCKET_SHIFT] += 1
            else:
                kind = w >> 29
                if kind == 0b100:
                    t = w & 0x1FFF_FFFF
                    counting = start_ms <= t < end_ms
                    if counting:
                        tags += 1
                elif kind == 0b101:
                    if counting:
                        bucket = (w >> 19) & 0x3FF
                        singles_sum[k, bucket] += (w & 0x7FFFF) * 8.0
                        singles_n[k, bucket] += 1
                        singles_words += 1
                else:
                    other += 1
            targets[i] = target
        counters[k, _TIME] = t
        counters[k, _EVENTS_IN_FRAME] = in_frame
        counters[k, _DROPPED] = dropped
        counters[k, _UNMAPPED] = unmapped
        counters[k, _TAGS] = tags
        counters[k, _SINGLES_WORDS] = singles_words
        counters[k, _OTHER_TAGS] = other


@numba.njit(parallel=True, cache=True, nogil=True)
def _scatter(targets, starts, ends, positions, ordered):  # pragma: no cover - compiled
    for k in numba.prange(starts.size):
        position = positions[k].copy()
        for i in range(starts[k], ends[k]):
            target = targets[i]
            if target != 0xFFFF_FFFF:
                bucket = target >> _BUCKET_SHIFT
                ordered[position[bucket]] = target
                position[bucket] += 1


@numba.njit(parallel=True, cache=True, nogil=True)
def _accumulate(ordered, bucket_start, histogram):  # pragma: no cover - compiled
    """Increment the histogram bucket by bucket; inside a bucket, in ascending blocks of 256 bins.

    A counting sort on bits 8-15 first makes the increments of a bucket walk
    its 256 KiB range upwards, which the hardware prefetcher follows (random
    order costs one memory latency per event).
    """
    for bucket in numba.prange(bucket_start.size - 1):
        low = bucket_start[bucket]
        high = bucket_start[bucket + 1]
        if high - low < 64:
            for j in range(low, high):
                histogram[ordered[j]] += 1
            continue
        position = np.zeros(257, dtype=np.int64)
        for j in range(low, high):
            position[((ordered[j] >> 8) & 0xFF) + 1] += 1
        for block in range(256):
            position[block + 1] += position[block]
        sorted_targets = np.empty(high - low, dtype=np.uint32)
        for j in range(low, high):
            block = (ordered[j] >> 8) & 0xFF
            sorted_targets[position[block]] = ordered[j]
            position[block] += 1
        for j in range(high - low):
            histogram[sorted_targets[j]] += 1
