"""One pass over list-mode for a whole frame schedule vs one pass per frame (Biograph mMR, span 11).

Run: ``python -m pytest benchmarks/test_bench_dynamic.py --benchmark-only``.
The stream: 2e7 events (80 % prompts), span-1 addresses uniform over the mMR
sinogram, 200 events per 1-ms time tag (100 s), framed by the schedule
``6x10s,4x10s`` (10 frames). :func:`iter_listmode_frames` decodes each
chunk only for the frames it touches; the baseline calls
:func:`histogram_listmode` once per frame, reading the whole file each time.
Results in benchmarks/RESULTS.md.
"""

import numpy as np
import pytest

from petrecon.geometry import default_layout
from petrecon.io import petlink
from petrecon.io.listmode import histogram_listmode, iter_listmode_frames
from petrecon.recon.dynamic import parse_frame_schedule

EVENTS_PER_MS, DURATION_MS = 200, 100_000
SCHEDULE = "6x10s,4x10s"


@pytest.fixture(scope="module")
def stream(tmp_path_factory):
    layout = default_layout("mmr", span=1)
    rng = np.random.default_rng(1)
    n = EVENTS_PER_MS * DURATION_MS
    words = petlink.encode_event_words(rng.integers(0, int(np.prod(layout.shape)), n), rng.random(n) < 0.8)
    path = tmp_path_factory.mktemp("dynamic") / "mmr.l"
    petlink.interleave_time_tags(words, np.repeat(np.arange(DURATION_MS), EVENTS_PER_MS), DURATION_MS
                                 ).astype("<u4").tofile(path)
    histogram_listmode(np.zeros(10, np.uint32), default_layout("mmr"), progress=False)  # compile outside timing
    return path, n


def _one_pass(path, layout, windows):
    return [h.n_prompts + h.n_delays for h in iter_listmode_frames(path, layout, windows, progress=False)]


def _pass_per_frame(path, layout, windows):
    return [(lambda h: h.n_prompts + h.n_delays)(histogram_listmode(path, layout, start_s=start, end_s=end,
                                                                    progress=False)) for start, end in windows]


@pytest.mark.parametrize("method", [_one_pass, _pass_per_frame], ids=["one-pass", "pass-per-frame"])
def test_frame_schedule(benchmark, stream, method):
    path, n_events = stream
    layout = default_layout("mmr")
    windows = [(f.start_s, f.end_s) for f in parse_frame_schedule(SCHEDULE)]
    counts = benchmark.pedantic(method, args=(path, layout, windows), rounds=2, iterations=1)
    assert sum(counts) == n_events
    benchmark.extra_info["mevents_per_s"] = round(n_events / benchmark.stats.stats.min / 1e6, 1)
