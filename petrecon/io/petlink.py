"""Siemens PETLINK 32-bit list-mode words (reference/formats.md; NiftyPET ``hst.cu``, STIR ``CListRecordECAT8_32bit``).

Word layout (little-endian uint32):

- event: bit 31 = 0; bit 30 = 1 for a prompt, 0 for a delayed coincidence;
  bits 0-29 = bin address into the span-1 sinogram of
  :meth:`petrecon.geometry.SinogramLayout.listmode_layout`,
  ``sinogram * n_views * n_bins + view * n_bins + bin``.
- elapsed-time tag: bits 31-29 = ``0b100``, bits 0-28 = milliseconds since the
  start of the acquisition. One arrives every millisecond; the events after
  tag ``t`` happened in ``[t, t + 1)`` ms.
- bucket singles: bits 31-29 = ``0b101``, bucket index in bits 19-28, value
  in bits 0-18 (singles rate / 8).
- any other tag (bits 31-29 = ``0b110`` or ``0b111``: gating, motion, bed) is
  skipped by readers.
"""

from __future__ import annotations

import numpy as np

from petrecon.errors import ParameterError

EVENT_FLAG = np.uint32(0x8000_0000)
PROMPT_FLAG = np.uint32(0x4000_0000)
ADDRESS_MASK = np.uint32(0x3FFF_FFFF)
TAG_KIND_SHIFT = 29
TIME_TAG_KIND = 0b100
SINGLES_TAG_KIND = 0b101
TIME_MASK = np.uint32(0x1FFF_FFFF)
SINGLES_BUCKET_SHIFT = 19
SINGLES_BUCKET_MASK = np.uint32(0x3FF)
SINGLES_VALUE_MASK = np.uint32(0x7FFFF)
SINGLES_SCALE = 8


def encode_event_words(address: np.ndarray, is_prompt: np.ndarray) -> np.ndarray:
    """Event words for span-1 bin addresses.

    Examples
    --------
    >>> [hex(w) for w in encode_event_words(np.array([5, 5]), np.array([True, False]))]
    ['0x40000005', '0x5']
    """
    address = np.asarray(address, dtype=np.int64)
    if address.size and (address.min() < 0 or address.max() > int(ADDRESS_MASK)):
        raise ParameterError(f"list-mode bin addresses must be in [0, {int(ADDRESS_MASK)}]")
    words = address.astype(np.uint32)
    return np.where(np.asarray(is_prompt, dtype=bool), words | PROMPT_FLAG, words).astype(np.uint32)


def encode_time_tags(elapsed_ms: np.ndarray) -> np.ndarray:
    """Elapsed-time tag words.

    Examples
    --------
    >>> hex(int(encode_time_tags(np.array([3]))[0]))
    '0x80000003'
    """
    elapsed_ms = np.asarray(elapsed_ms, dtype=np.int64)
    if elapsed_ms.size and (elapsed_ms.min() < 0 or elapsed_ms.max() > int(TIME_MASK)):
        raise ParameterError(f"time tags must be in [0, {int(TIME_MASK)}] ms")
    return (np.uint32(TIME_TAG_KIND << TAG_KIND_SHIFT) | elapsed_ms.astype(np.uint32)).astype(np.uint32)


def encode_singles_words(bucket: np.ndarray, singles_per_s: np.ndarray) -> np.ndarray:
    """Bucket-singles words; the rate is stored divided by :data:`SINGLES_SCALE` and rounded.

    Examples
    --------
    >>> hex(int(encode_singles_words(np.array([2]), np.array([800.0]))[0]))
    '0xa0100064'
    """
    bucket = np.asarray(bucket, dtype=np.int64)
    value = np.rint(np.asarray(singles_per_s, dtype=np.float64) / SINGLES_SCALE).astype(np.int64)
    if bucket.size and (bucket.min() < 0 or bucket.max() > int(SINGLES_BUCKET_MASK)):
        raise ParameterError(f"bucket indices must be in [0, {int(SINGLES_BUCKET_MASK)}]")
    if value.size and (value.min() < 0 or value.max() > int(SINGLES_VALUE_MASK)):
        raise ParameterError(f"bucket singles rates must be in [0, {int(SINGLES_VALUE_MASK) * SINGLES_SCALE}] /s")
    kind = np.uint32(SINGLES_TAG_KIND << TAG_KIND_SHIFT)
    return (kind | (bucket.astype(np.uint32) << np.uint32(SINGLES_BUCKET_SHIFT)) | value.astype(np.uint32)).astype(
        np.uint32)


def interleave_time_tags(event_words: np.ndarray, event_time_ms: np.ndarray, duration_ms: int) -> np.ndarray:
    """A PETLINK stream: a time tag for every millisecond ``0 .. duration_ms - 1``, each followed by its events.

    Parameters
    ----------
    event_words : numpy.ndarray
        uint32 event words (any order).
    event_time_ms : numpy.ndarray
        Integer millisecond of each event, in ``[0, duration_ms)``.
    duration_ms : int
        Length of the acquisition in ms.

    Examples
    --------
    >>> words = encode_event_words(np.array([7, 9]), np.array([True, True]))
    >>> [hex(w) for w in interleave_time_tags(words, np.array([1, 0]), 2)]
    ['0x80000000', '0x40000009', '0x80000001', '0x40000007']
    """
    event_time_ms = np.asarray(event_time_ms, dtype=np.int64)
    if event_words.shape != event_time_ms.shape:
        raise ParameterError("event_words and event_time_ms must have the same shape")
    if event_time_ms.size and (event_time_ms.min() < 0 or event_time_ms.max() >= duration_ms):
        raise ParameterError(f"event times must be in [0, {duration_ms}) ms")
    order = np.argsort(event_time_ms, kind="stable")
    events_per_ms = np.bincount(event_time_ms, minlength=duration_ms)
    stream = np.empty(event_words.size + duration_ms, dtype=np.uint32)
    tag_positions = np.arange(duration_ms) + np.concatenate(([0], np.cumsum(events_per_ms)[:-1]))
    is_tag = np.zeros(stream.size, dtype=bool)
    is_tag[tag_positions] = True
    stream[is_tag] = encode_time_tags(np.arange(duration_ms))
    stream[~is_tag] = np.asarray(event_words, dtype=np.uint32)[order]
    return stream
