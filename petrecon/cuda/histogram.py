"""Histogramming of PETLINK list-mode words into sinograms on the GPU (kernels/histogram.cu).

Semantics (the same for every petrecon histogrammer):

* the time is 0 ms before the first tag; an elapsed-time tag sets it to its
  value (ms);
* an event word (bit 31 = 0) is counted if ``start_ms <= time < end_ms``;
* its address ``a`` (bits 0-29) indexes the span-1 layout
  ``layout.listmode_layout()`` (reference/formats.md):
  sinogram ``s1 = a // (nv1 * nb)``, view ``u = (a // nb) % nv1``, bin
  ``b = a % nb``; it lands in sinogram ``layout.span1_sinogram_map()[s1]``
  (dropped if -1), view ``u // layout.view_mashing``, bin ``b``;
* in-window addresses ``>= nv1 * nb * n_span1_sinograms`` are dropped and
  counted (``n_dropped``);
* prompts (bit 30 = 1) and delays (bit 30 = 0) go to separate sinograms;
  other tag words (bucket singles ``0b101``, ``0b110``, ``0b111``) are
  skipped.

:func:`histogram_words_numpy` is the vectorised numpy statement of these
rules, the reference the GPU kernel is tested against.
"""

from __future__ import annotations

import numpy as np

from petrecon.backend import array_module, cupy
from petrecon.cuda.modules import get_kernel
from petrecon.errors import ParameterError
from petrecon.geometry import SinogramLayout
from petrecon.io.petlink import (
    ADDRESS_MASK,
    EVENT_FLAG,
    PROMPT_FLAG,
    TAG_KIND_SHIFT,
    TIME_MASK,
    TIME_TAG_KIND,
)

SOURCE = "histogram.cu"
CHUNK_WORDS = 1 << 16
"""Words per thread block: 2e8 words make ~3000 blocks, enough to fill any GPU."""
BLOCK_THREADS = 256
NO_END_MS = np.iinfo(np.int64).max


def _check(layout: SinogramLayout, start_ms: int, end_ms: int | None) -> tuple[int, int]:
    if layout.use_tof:
        raise ParameterError("list-mode histogramming into TOF sinograms is not supported; use a non-TOF layout")
    end = NO_END_MS if end_ms is None else int(end_ms)
    if int(start_ms) < 0 or end <= int(start_ms):
        raise ParameterError(f"time window must satisfy 0 <= start_ms < end_ms, got [{start_ms}, {end_ms})")
    return int(start_ms), end


def span1_size(layout: SinogramLayout) -> int:
    """Number of bins of the span-1 list-mode layout (mMR: 4084 x 252 x 344 = 354 M).

    Examples
    --------
    >>> from petrecon.geometry import default_layout
    >>> span1_size(default_layout("mmr"))
    354033792
    """
    return int(np.prod(layout.listmode_layout().shape))


def listmode_targets(addresses: np.ndarray, layout: SinogramLayout) -> np.ndarray:
    """Flat index into ``layout.shape`` of span-1 list-mode addresses; -1 where the ring pair is not stored.

    Parameters
    ----------
    addresses : ndarray of int
        Addresses below :func:`span1_size`.
    layout : SinogramLayout
        Target (non-TOF) layout.

    Examples
    --------
    >>> from petrecon.geometry import default_layout
    >>> layout = default_layout("test", span=1)
    >>> listmode_targets(np.array([0, 5, 64 * 56 + 3]), layout).tolist()
    [0, 5, 3587]
    """
    listmode = layout.listmode_layout()
    n_views_1, n_bins = listmode.n_views, listmode.n_radial_bins
    addresses = np.asarray(addresses, dtype=np.int64)
    sinogram = layout.span1_sinogram_map()[addresses // (n_views_1 * n_bins)]
    view = (addresses // n_bins) % n_views_1 // layout.view_mashing
    target = (sinogram * layout.n_views + view) * n_bins + addresses % n_bins
    return np.where(sinogram >= 0, target, -1)


def histogram_words_numpy(words: np.ndarray, layout: SinogramLayout, start_ms: int = 0,
                          end_ms: int | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """Reference histogram of PETLINK words with numpy (module docstring for the rules).

    Returns
    -------
    prompts, delays : ndarray of uint32, shape ``layout.shape``
    n_dropped : int
        In-window events whose address lies beyond the span-1 sinogram.

    Examples
    --------
    >>> from petrecon.geometry import default_layout
    >>> from petrecon.io.petlink import encode_event_words, encode_time_tags
    >>> layout = default_layout("test", span=1)
    >>> words = np.concatenate([encode_event_words(np.array([7]), np.array([True])),
    ...                         encode_time_tags(np.array([5])),
    ...                         encode_event_words(np.array([7, 8]), np.array([True, False]))])
    >>> prompts, delays, dropped = histogram_words_numpy(words, layout, start_ms=1)
    >>> int(prompts.sum()), int(delays.ravel()[8]), dropped
    (1, 1, 0)
    """
    start_ms, end_ms = _check(layout, start_ms, end_ms)
    words = np.asarray(words, dtype=np.uint32).ravel()
    is_time = (words >> np.uint32(TAG_KIND_SHIFT)) == TIME_TAG_KIND
    last_tag = np.maximum.accumulate(np.where(is_time, np.arange(words.size), -1))
    time_ms = np.where(last_tag >= 0, words[np.maximum(last_tag, 0)] & TIME_MASK, 0).astype(np.int64)
    counted = ((words & EVENT_FLAG) == 0) & (time_ms >= start_ms) & (time_ms < end_ms)
    addresses = (words & ADDRESS_MASK).astype(np.int64)
    in_range = addresses < span1_size(layout)
    n_dropped = int(np.count_nonzero(counted & ~in_range))
    counted &= in_range
    targets = listmode_targets(addresses[counted], layout)
    prompt = (words[counted] & PROMPT_FLAG) != 0
    size = int(np.prod(layout.shape))
    prompts, delays = (np.bincount(targets[(targets >= 0) & chosen], minlength=size).astype(np.uint32)
                       .reshape(layout.shape) for chosen in (prompt, ~prompt))
    return prompts, delays, n_dropped


def chunk_start_times(chunk_last_ms, initial_ms: int = 0):
    """Time in effect at the start of each chunk: the last tag of the closest earlier chunk with one.

    Parameters
    ----------
    chunk_last_ms : ndarray of int32 (numpy or CuPy)
        Value of the last time tag of every chunk, -1 for chunks without one.
    initial_ms : int
        The time before the first tag.

    Examples
    --------
    >>> chunk_start_times(np.array([-1, 7, -1, -1, 9, -1], np.int32)).tolist()
    [0, 0, 7, 7, 7, 9]
    """
    xp = array_module(chunk_last_ms)
    has_tag = chunk_last_ms >= 0
    earlier_tagged = xp.cumsum(has_tag) - has_tag.astype(xp.int64)
    first = xp.full(1, initial_ms, dtype=xp.int32)
    starts = xp.concatenate([first, chunk_last_ms[has_tag].astype(xp.int32)])[earlier_tagged]
    return xp.ascontiguousarray(starts, dtype=xp.int32)


def histogram_words_cuda(words, layout: SinogramLayout, start_ms: int = 0, end_ms: int | None = None, *,
                         initial_ms: int = 0, out: tuple | None = None):
    """Histogram PETLINK words into prompt and delay sinograms on the GPU.

    Parameters
    ----------
    words : cupy.ndarray or numpy.ndarray of uint32, 1-D
        A PETLINK word stream, or one piece of it.
    layout : SinogramLayout
        Target layout, non-TOF; list-mode addresses index its
        :meth:`~petrecon.geometry.SinogramLayout.listmode_layout`.
    start_ms, end_ms : int
        Time window ``[start_ms, end_ms)``; ``end_ms=None`` means no end.
    initial_ms : int
        Time before the first tag of ``words``: 0 at the acquisition start;
        for a later piece of a stream read in pieces, the last time tag of
        the pieces before it.
    out : (prompts, delays), optional
        uint32 CuPy sinograms of ``layout.shape`` to add the counts to
        (streaming); new zeroed ones by default.

    Returns
    -------
    prompts, delays : cupy.ndarray of uint32, shape ``layout.shape``
    n_dropped : int
        In-window events of ``words`` whose address lies beyond the span-1 sinogram.
    """
    start_ms, end_ms = _check(layout, start_ms, end_ms)
    cp = cupy()
    words = cp.asarray(words)
    if words.dtype != cp.uint32 or words.ndim != 1:
        raise ParameterError(f"PETLINK words must be a 1-D uint32 array, got {words.dtype} of shape {words.shape}")
    words = cp.ascontiguousarray(words)
    listmode = layout.listmode_layout()
    if out is None:
        prompts, delays = cp.zeros(layout.shape, dtype=cp.uint32), cp.zeros(layout.shape, dtype=cp.uint32)
    else:
        prompts, delays = out
        if not all(isinstance(a, cp.ndarray) and a.dtype == cp.uint32 and a.shape == layout.shape
                   and a.flags.c_contiguous for a in (prompts, delays)):
            raise ParameterError(f"out must be two C-contiguous uint32 CuPy arrays of shape {layout.shape}")
    n_dropped = cp.zeros(1, dtype=cp.uint64)
    n_chunks = (words.size + CHUNK_WORDS - 1) // CHUNK_WORDS
    if n_chunks == 0:
        return prompts, delays, 0
    chunk_args = (words, np.int64(words.size), np.int64(CHUNK_WORDS))
    chunk_last_ms = cp.empty(n_chunks, dtype=cp.int32)
    get_kernel(SOURCE, "petlink_chunk_last_time")((n_chunks,), (BLOCK_THREADS,), (*chunk_args, chunk_last_ms))
    span1_map = cp.asarray(layout.span1_sinogram_map(), dtype=cp.int32)
    get_kernel(SOURCE, "petlink_histogram")(
        (n_chunks,), (BLOCK_THREADS,),
        (*chunk_args, chunk_start_times(chunk_last_ms, initial_ms), np.int64(start_ms), np.int64(end_ms),
         span1_map, np.int32(listmode.n_views), np.int32(listmode.n_radial_bins), np.int64(span1_size(layout)),
         np.int32(layout.view_mashing), np.int32(layout.n_views), prompts, delays, n_dropped))
    return prompts, delays, int(n_dropped.get()[0])
