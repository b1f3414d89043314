"""PETLINK word encoding (reference/formats.md)."""

from __future__ import annotations

import numpy as np
import pytest

from petrecon.errors import ParameterError
from petrecon.io import petlink


def test_time_tags_and_events_are_told_apart_by_the_top_bits():
    rng = np.random.default_rng(0)
    address = rng.integers(0, 4084 * 252 * 344, 1000)
    prompt = rng.random(1000) < 0.8
    times = rng.integers(0, 50, 1000)
    stream = petlink.interleave_time_tags(petlink.encode_event_words(address, prompt), times, 50)
    is_event = (stream & petlink.EVENT_FLAG) == 0
    tags = stream[~is_event]
    assert np.all(tags >> petlink.TAG_KIND_SHIFT == petlink.TIME_TAG_KIND)
    np.testing.assert_array_equal(tags & petlink.TIME_MASK, np.arange(50))
    # the events after tag t are those of millisecond t
    time_of_word = np.cumsum(~is_event) - 1
    events = stream[is_event]
    np.testing.assert_array_equal(np.sort(events & petlink.ADDRESS_MASK), np.sort(address))
    order = np.lexsort((address, times))
    recovered = np.lexsort((events & petlink.ADDRESS_MASK, time_of_word[is_event]))
    np.testing.assert_array_equal(time_of_word[is_event][recovered], times[order])
    assert np.count_nonzero(events & petlink.PROMPT_FLAG) == prompt.sum()


def test_out_of_range_values_are_refused():
    with pytest.raises(ParameterError):
        petlink.encode_event_words(np.array([2**30]), np.array([True]))
    with pytest.raises(ParameterError):
        petlink.interleave_time_tags(np.zeros(1, np.uint32), np.array([5]), 5)
