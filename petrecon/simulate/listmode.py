"""List-mode events from simulated sinogram counts: PETLINK 32-bit words with millisecond time tags.

The events are exactly the counts of the simulated sinograms: each count of
a (spanned, mashed) bin becomes one event whose span-1 address is drawn among
the bin's detector-pair LORs with probability proportional to the pair's
crystal weights (efficiencies for trues and scatter, singles for randoms;
:func:`petrecon.simulate.detection.choose_span1_addresses`). Histogramming
the words back into the layout (address -> span-1 sinogram ``s1``, view
``u``, bin ``b`` -> ``span1_sinogram_map()[s1]``, ``u // view_mashing``, ``b``)
gives the simulated sinograms exactly.

Event times follow the decay during the frame: density proportional to
``exp(-k lambda t)`` on ``[0, T)`` with ``k = 1`` for trues and scatter and
``k = 2`` for randoms (a product of two singles rates), drawn by inverting
the truncated exponential's distribution function, then floored to ms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from petrecon.geometry import SinogramLayout
from petrecon.io.atomic import atomic_output
from petrecon.io.petlink import TAG_KIND_SHIFT, TIME_MASK, TIME_TAG_KIND
from petrecon.io.petlink import encode_event_words, encode_time_tags, interleave_time_tags
from petrecon.simulate.detection import Span1Map, choose_span1_addresses


@dataclass(frozen=True)
class EventSource:
    """Counts of one kind of event and how they are drawn.

    Attributes
    ----------
    counts : numpy.ndarray
        Integer counts in the layout's shape.
    crystal_weights : numpy.ndarray
        ``(n_rings, n_crystals)`` weights choosing among a bin's detector pairs.
    rate_decay_per_s : float
        ``k lambda``: the rate of these events decays as ``exp(-k lambda t)``.
    is_prompt : bool
        Prompt (True) or delayed (False) coincidences.
    """

    counts: np.ndarray
    crystal_weights: np.ndarray
    rate_decay_per_s: float
    is_prompt: bool


def event_times_s(n: int, duration_s: float, rate_decay_per_s: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` times in ``[0, duration_s)`` with density proportional to ``exp(-rate_decay_per_s t)``.

    Examples
    --------
    >>> t = event_times_s(100000, 100.0, 0.0, np.random.default_rng(0))
    >>> bool(0 <= t.min() and t.max() < 100.0), round(float(t.mean()) / 50.0, 1)
    (True, 1.0)
    """
    u = rng.random(n)
    x = rate_decay_per_s * duration_s
    if x < 1e-9:
        times = u * duration_s
    else:
        times = -np.log1p(-u * -np.expm1(-x)) / rate_decay_per_s
    return np.minimum(times, np.nextafter(duration_s, 0.0))


EVENTS_PER_CHUNK = 16_000_000
"""Events drawn at a time (bounds the temporary memory to ~0.5 GB)."""


def listmode_words(layout: SinogramLayout, sources: list[EventSource], duration_s: float, rng: np.random.Generator,
                   mapping: Span1Map | None = None) -> np.ndarray:
    """A PETLINK word stream (time tag every ms, each followed by its events) of all ``sources``' counts."""
    n_events = sum(int(np.asarray(source.counts).sum(dtype=np.int64)) for source in sources)
    words = np.empty(n_events, np.uint32)
    times_ms = np.empty(n_events, np.int64)
    filled = 0
    for source in sources:
        counts = np.asarray(source.counts).ravel()
        ends = np.cumsum(counts, dtype=np.int64)
        first_bin = 0
        while first_bin < counts.size:
            done = ends[first_bin - 1] if first_bin else 0
            last_bin = max(first_bin + 1, int(np.searchsorted(ends, done + EVENTS_PER_CHUNK, side="right")))
            chunk = counts[first_bin:last_bin]
            bins = np.repeat(np.arange(first_bin, last_bin, dtype=np.int64), chunk.astype(np.int64))
            addresses = choose_span1_addresses(layout, bins, rng.random(bins.size), source.crystal_weights, mapping)
            stop = filled + bins.size
            words[filled:stop] = encode_event_words(addresses, np.full(bins.size, source.is_prompt))
            times_ms[filled:stop] = np.floor(event_times_s(bins.size, duration_s, source.rate_decay_per_s, rng) * 1000.0)
            filled, first_bin = stop, last_bin
    duration_ms = int(np.ceil(duration_s * 1000.0))
    return interleave_time_tags(words, times_ms, duration_ms)


def write_listmode(path, words: np.ndarray, *, overwrite: bool = False) -> None:
    """Write words as a raw little-endian uint32 ``.l`` file, atomically."""
    with atomic_output(path, overwrite=overwrite) as temporary:
        np.asarray(words, dtype="<u4").tofile(temporary)


def write_listmode_header(path, data_file_name: str, attributes: dict, layout: SinogramLayout, *,
                          overwrite: bool = False) -> None:
    """Write the Interfile header of a simulated ``.l`` file, with the keys a Siemens list-mode header holds.

    ``attributes`` are a simulated study's: ``scanner``, ``duration_s``,
    ``isotope``, ``half_life_s``, ``patient_position`` and ``bed_position_mm``
    (reference/formats.md; :mod:`petrecon.geometry.patient`). The event
    words address ``layout``'s span-1 sinogram, described by
    :func:`petrecon.io.listmode.address_space_keys`, so that a histogrammer
    with another layout refuses the file instead of scrambling it.
    """
    from petrecon.io.interfile import BED_POSITION_KEY, PATIENT_ORIENTATION_KEY, format_interfile
    from petrecon.io.listmode import address_space_keys

    items = [("name of data file", data_file_name), ("originating system", attributes.get("scanner", "")),
             ("%LM event and tag words format (bits)", 32),
             *address_space_keys(layout),
             ("image duration (sec)", float(attributes["duration_s"])),
             ("isotope name", attributes.get("isotope", "")),
             ("isotope gamma halflife (sec)", float(attributes.get("half_life_s", 0.0))),
             (f"%{PATIENT_ORIENTATION_KEY}", attributes.get("patient_position", "HFS")),
             (f"%{BED_POSITION_KEY}", float(attributes.get("bed_position_mm", 0.0)))]
    with atomic_output(path, overwrite=overwrite) as temporary:
        temporary.write_text(format_interfile(items))


def concatenate_listmode(streams: list[np.ndarray]) -> np.ndarray:
    """One PETLINK stream from consecutive acquisitions: each stream's time tags shifted by those before it.

    A time-varying source is simulated as consecutive frames (each with its
    own phantom activities, decaying within the frame) whose list-mode words
    are joined here: stream ``i`` starts where stream ``i - 1`` ended (its
    last time tag + 1 ms). Event words are copied unchanged.

    Examples
    --------
    >>> from petrecon.io.petlink import TIME_MASK
    >>> one = interleave_time_tags(encode_event_words(np.array([3]), np.array([True])), np.array([1]), 2)
    >>> joined = concatenate_listmode([one, one])
    >>> [int(w & TIME_MASK) for w in joined if w >> 29 == 0b100]
    [0, 1, 2, 3]
    """
    pieces, offset_ms = [], 0
    for words in streams:
        words = np.asarray(words, dtype=np.uint32)
        is_tag = (words >> np.uint32(TAG_KIND_SHIFT)) == TIME_TAG_KIND
        shifted = words.copy()
        shifted[is_tag] = encode_time_tags((words[is_tag] & TIME_MASK).astype(np.int64) + offset_ms)
        pieces.append(shifted)
        if is_tag.any():
            offset_ms += int((words[is_tag] & TIME_MASK).max()) + 1
    return np.concatenate(pieces) if pieces else np.empty(0, np.uint32)
