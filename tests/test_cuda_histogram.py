"""PETLINK histogramming: the numpy reference on the CPU, the kernel on the host and on the GPU.

The rules are in :mod:`petrecon.cuda.histogram`. The reference is checked
against hand-built streams and against ``numpy.bincount`` of the events as
generated (not as decoded); the kernel is checked against the reference.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from petrecon.backend import gpu_available
from petrecon.cuda.histogram import (
    chunk_start_times,
    histogram_words_cuda,
    histogram_words_numpy,
    listmode_targets,
    span1_size,
)
from petrecon.errors import ParameterError
from petrecon.geometry import SinogramLayout, default_layout
from petrecon.io.petlink import (
    ADDRESS_MASK,
    TAG_KIND_SHIFT,
    encode_event_words,
    encode_singles_words,
    encode_time_tags,
    interleave_time_tags,
)

needs_gpu = pytest.mark.skipif(not gpu_available(), reason="needs CuPy and a CUDA GPU")


def mashed_layout() -> SinogramLayout:
    """The test scanner, span 3, views mashed by 2: every mapping step is exercised."""
    plain = default_layout("test")
    return SinogramLayout(plain.scanner, 3, plain.max_ring_difference, plain.n_radial_bins, 2)


def other_tags(kind: int, values: np.ndarray) -> np.ndarray:
    """Tag words of kind 0b110 or 0b111 (gating, motion, bed): to be skipped."""
    return (np.uint32(kind << TAG_KIND_SHIFT) | np.asarray(values, np.uint32)).astype(np.uint32)


def random_stream(layout: SinogramLayout, n_events: int, duration_ms: int, seed: int):
    """Words with a tag per ms, singles and other tags sprinkled in, and 1 % out-of-range addresses.

    Returns the words and, per event, its address, prompt flag and time (ms).
    """
    rng = np.random.default_rng(seed)
    size = span1_size(layout)
    addresses = rng.integers(0, size, n_events)
    addresses[: n_events // 100] = rng.integers(size, int(ADDRESS_MASK) + 1, n_events // 100)
    prompt = rng.random(n_events) < 0.8
    times = rng.integers(0, duration_ms, n_events)
    order = np.argsort(times, kind="stable")
    words = interleave_time_tags(encode_event_words(addresses, prompt), times, duration_ms)
    extra = np.concatenate([encode_singles_words(rng.integers(0, 200, 40), rng.uniform(0, 1e5, 40)),
                            other_tags(0b110, rng.integers(0, 2**29, 40)),
                            other_tags(0b111, rng.integers(0, 2**29, 40))])
    # Extra words may go anywhere: they carry no time and are no events.
    words = np.insert(words, rng.integers(0, words.size + 1, extra.size), extra)
    return words, addresses[order], prompt[order], times[order]


def expected_by_bincount(layout, addresses, prompt, times, start_ms, end_ms):
    """Counts of the events as generated: the selection, then numpy.bincount of their targets."""
    size = span1_size(layout)
    selected = (times >= start_ms) & (times < end_ms)
    n_dropped = int(np.count_nonzero(selected & (addresses >= size)))
    selected &= addresses < size
    n_bins = int(np.prod(layout.shape))
    counts = []
    for flag in (True, False):
        targets = listmode_targets(addresses[selected & (prompt == flag)], layout)
        counts.append(np.bincount(targets[targets >= 0], minlength=n_bins).reshape(layout.shape))
    return counts[0], counts[1], n_dropped


# ----- the numpy reference (CPU) -------------------------------------------------------------

def test_reference_follows_the_time_and_word_rules_on_a_hand_built_stream():
    layout = default_layout("test", span=1)
    size = span1_size(layout)
    prompt, delay = np.array([True]), np.array([False])
    words = np.concatenate([
        encode_event_words(np.array([11]), prompt),         # before any tag: time 0, counted
        encode_singles_words(np.array([3]), np.array([800.0])),
        encode_time_tags(np.array([3])),
        encode_event_words(np.array([12]), delay),          # time 3
        other_tags(0b110, [12]), other_tags(0b111, [11]),   # skipped, not events
        encode_event_words(np.array([size]), prompt),       # in window, out of range: dropped
        encode_time_tags(np.array([10])),
        encode_event_words(np.array([11, size]), np.array([True, True])),  # time 10: outside [0, 10)
    ])
    prompts, delays, n_dropped = histogram_words_numpy(words, layout, start_ms=0, end_ms=10)
    assert prompts.dtype == np.uint32 and prompts.shape == layout.shape
    assert prompts.ravel()[11] == 1 and prompts.sum() == 1
    assert delays.ravel()[12] == 1 and delays.sum() == 1
    assert n_dropped == 1
    later = histogram_words_numpy(words, layout, start_ms=3)
    assert (later[0].sum(), later[1].sum(), later[2]) == (1, 1, 2)


def test_listmode_targets_follow_the_ring_pairs_and_view_mashing():
    layout = mashed_layout()
    listmode = layout.listmode_layout()
    addresses = np.random.default_rng(0).integers(0, span1_size(layout), 5000)
    s1, view, radial = (addresses // (listmode.n_views * listmode.n_radial_bins),
                        (addresses // listmode.n_radial_bins) % listmode.n_views, addresses % listmode.n_radial_bins)
    pairs = listmode.ring_pairs()[s1]
    sinogram = layout.ring_pair_to_sinogram()[pairs[:, 0], pairs[:, 1]]
    expected = (sinogram * layout.n_views + view // 2) * layout.n_radial_bins + radial
    np.testing.assert_array_equal(listmode_targets(addresses, layout), expected)
    span1 = default_layout("test", span=1)
    np.testing.assert_array_equal(listmode_targets(addresses, span1), addresses)


@pytest.mark.parametrize("window", [(0, None), (7, 23)])
def test_reference_equals_bincount_of_the_generated_events(window):
    layout = mashed_layout()
    words, addresses, prompt, times = random_stream(layout, 20000, 30, seed=1)
    start_ms, end_ms = window
    got = histogram_words_numpy(words, layout, start_ms, end_ms)
    expected = expected_by_bincount(layout, addresses, prompt, times, start_ms, end_ms or 10**9)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    assert got[2] == expected[2] > 0


@pytest.mark.parametrize("window", [(-1, 5), (5, 5), (9, 2)])
def test_absurd_time_windows_are_rejected(window):
    with pytest.raises(ParameterError, match="time window"):
        histogram_words_numpy(np.zeros(3, np.uint32), default_layout("test"), *window)


def test_tof_layouts_are_rejected():
    import dataclasses

    from petrecon.geometry import TofSpec

    plain = default_layout("test")
    scanner = dataclasses.replace(plain.scanner, tof=TofSpec(n_bins=3, bin_width_ps=300.0, fwhm_ps=500.0))
    tof = SinogramLayout(scanner, 3, plain.max_ring_difference, plain.n_radial_bins, 1, use_tof=True)
    with pytest.raises(ParameterError, match="TOF"):
        histogram_words_numpy(np.zeros(3, np.uint32), tof)


# ----- the kernel source on the host (g++, one thread per block) ----------------------------

@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")
@pytest.mark.parametrize("chunk_words", [1, 7, 4096])
def test_histogram_kernel_source_on_the_host_equals_the_reference(chunk_words, tmp_path):
    from petrecon.cuda.host import compile_for_host

    host = compile_for_host(["histogram.cu"], tmp_path)
    layout = mashed_layout()
    listmode = layout.listmode_layout()
    words, *_ = random_stream(layout, 3000, 25, seed=2)
    words = np.concatenate([encode_event_words(np.array([5, 6]), np.array([True, False])), words])  # time 0
    n_chunks = (words.size + chunk_words - 1) // chunk_words
    chunk_last = np.empty(n_chunks, np.int32)
    prompts = np.zeros(layout.shape, np.uint32)
    delays = np.zeros(layout.shape, np.uint32)
    dropped = np.zeros(1, np.uint64)
    chunk_args = (words, np.int64(words.size), np.int64(chunk_words))
    # One thread per block: the host runs threads in turn, so the warp scan cannot be emulated.
    host.launch("petlink_chunk_last_time", (n_chunks,), 1, *chunk_args, chunk_last)
    host.launch("petlink_histogram", (n_chunks,), 1, *chunk_args, chunk_start_times(chunk_last), np.int64(0),
                np.int64(20), layout.span1_sinogram_map().astype(np.int32), listmode.n_views, listmode.n_radial_bins,
                np.int64(span1_size(layout)), layout.view_mashing, layout.n_views, prompts, delays, dropped)
    reference = histogram_words_numpy(words, layout, 0, 20)
    np.testing.assert_array_equal(prompts, reference[0])
    np.testing.assert_array_equal(delays, reference[1])
    assert int(dropped[0]) == reference[2] > 0


# ----- the GPU ----------------------------------------------------------------------------------

@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("window", [(0, None), (4, 17)])
def test_cuda_histogram_equals_bincount_across_chunks_without_tags(window):
    # 400 k events in 20 ms: ~7 chunks of 65536 words, most without a time tag.
    layout = mashed_layout()
    words, addresses, prompt, times = random_stream(layout, 400_000, 20, seed=3)
    prompts, delays, n_dropped = histogram_words_cuda(words, layout, *window)
    expected = expected_by_bincount(layout, addresses, prompt, times, window[0], window[1] or 10**9)
    np.testing.assert_array_equal(prompts.get(), expected[0])
    np.testing.assert_array_equal(delays.get(), expected[1])
    assert n_dropped == expected[2] > 0


@pytest.mark.gpu
@needs_gpu
def test_cuda_histogram_equals_the_reference_on_an_mmr_span11_stream():
    layout = default_layout("mmr", span=11)
    words, *_ = random_stream(layout, 300_000, 50, seed=4)
    got = histogram_words_cuda(words, layout, 10, 40)
    expected = histogram_words_numpy(words, layout, 10, 40)
    np.testing.assert_array_equal(got[0].get(), expected[0])
    np.testing.assert_array_equal(got[1].get(), expected[1])
    assert got[2] == expected[2]


@pytest.mark.gpu
@needs_gpu
def test_cuda_histogram_of_nothing_and_of_bad_words():
    layout = default_layout("test")
    prompts, delays, n_dropped = histogram_words_cuda(np.zeros(0, np.uint32), layout)
    assert int(prompts.sum()) == int(delays.sum()) == n_dropped == 0
    with pytest.raises(ParameterError, match="uint32"):
        histogram_words_cuda(np.zeros(4, np.int64), layout)
