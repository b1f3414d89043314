"""CPU list-mode histogramming of a synthetic Biograph mMR PETLINK stream (span 11 and span 1).

Run: ``python -m pytest benchmarks/test_bench_histogram.py --benchmark-only``.
The stream: 1e8 events with span-1 addresses drawn uniformly over the whole
mMR sinogram (4084 x 252 x 344: the cache-unfriendliest case), 80 % prompts,
one time tag per ms at 280 events/ms (a 60-min mMR scan holds ~1e9 events,
reference/formats.md), written to a ``.l`` file and histogrammed from the file
(in the page cache: this measures decoding and histogramming, not the disk).
Three rounds: the first in a process also pays a one-off ~1 s (the first
histogram's memory mapping and the thread start-up); events per second (of
the fastest round) go into ``extra_info``; results in benchmarks/RESULTS.md.
"""

import numpy as np
import pytest

from petrecon.geometry import default_layout
from petrecon.io import petlink
from petrecon.io.listmode import histogram_listmode

N_EVENTS = 100_000_000
EVENTS_PER_MS = 280


@pytest.fixture(scope="module")
def mmr_stream(tmp_path_factory):
    layout = default_layout("mmr", span=1)
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("listmode") / "mmr.l"
    n_addresses = int(np.prod(layout.shape))
    duration_ms = N_EVENTS // EVENTS_PER_MS
    with open(path, "wb") as f:
        for start in range(0, duration_ms, 10_000):       # 10 s of events per piece keeps memory small
            n_ms = min(10_000, duration_ms - start)
            n = n_ms * EVENTS_PER_MS
            words = petlink.encode_event_words(rng.integers(0, n_addresses, n), rng.random(n) < 0.8)
            stream = petlink.interleave_time_tags(words, np.repeat(np.arange(n_ms), EVENTS_PER_MS), n_ms)
            stream[stream >> 29 == 0b100] += np.uint32(start)  # tags count from the start of the scan
            stream.astype("<u4").tofile(f)
    histogram_listmode(np.zeros(10, np.uint32), layout, progress=False)  # numba compile outside the timing
    return path, duration_ms * EVENTS_PER_MS


@pytest.mark.parametrize("span", [11, 1])
def test_histogram_mmr_stream(benchmark, mmr_stream, span):
    path, n_events = mmr_stream
    layout = default_layout("mmr", span=span)
    result = benchmark.pedantic(histogram_listmode, args=(path, layout), kwargs={"progress": False}, rounds=3,
                                iterations=1)
    assert result.n_prompts + result.n_delays == n_events
    seconds = benchmark.stats.stats.min
    benchmark.extra_info["events"] = n_events
    benchmark.extra_info["mevents_per_s"] = round(n_events / seconds / 1e6, 1)
