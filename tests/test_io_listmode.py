"""PETLINK list-mode streaming, time framing and histogramming (exact counts from encoder-built streams)."""

from __future__ import annotations

import numpy as np
import pytest

from petrecon.errors import FormatError, ParameterError
from petrecon.geometry import default_layout
from petrecon.io import petlink
from petrecon.io.listmode import histogram_listmode, iter_listmode_chunks, parse_frame


def _reference_histogram(address, prompt, time_ms, layout, start_ms=0, end_ms=np.inf):
    """Straightforward numpy histogram of events with known addresses and times (the specification)."""
    span1 = layout.listmode_layout()
    nv1, nb = span1.n_views, span1.n_radial_bins
    keep = (time_ms >= start_ms) & (time_ms < end_ms) & (address < span1.n_sinograms * nv1 * nb)
    address, prompt = address[keep], prompt[keep]
    sinogram = layout.span1_sinogram_map()[address // (nv1 * nb)]
    view = (address // nb) % nv1 // layout.view_mashing
    bins = address % nb
    mapped = sinogram >= 0
    out = []
    for wanted in (True, False):
        chosen = mapped & (prompt == wanted)
        histogram = np.zeros(layout.shape, np.int64)
        np.add.at(histogram, (sinogram[chosen], view[chosen], bins[chosen]), 1)
        out.append(histogram)
    return out


def _stream(layout, n_events=20000, duration_ms=40, seed=0, out_of_range=0):
    rng = np.random.default_rng(seed)
    n_span1 = layout.listmode_layout().n_sinograms * layout.listmode_layout().n_views * layout.n_radial_bins
    address = rng.integers(0, n_span1, n_events)
    address[:out_of_range] = n_span1 + rng.integers(0, 1000, out_of_range)
    prompt = rng.random(n_events) < 0.7
    time_ms = rng.integers(0, duration_ms, n_events)
    words = petlink.interleave_time_tags(petlink.encode_event_words(address, prompt), time_ms, duration_ms)
    return words, address, prompt, time_ms


@pytest.mark.parametrize("span, mashing", [(1, 1), (3, 1), (5, 2)])
def test_histogram_equals_the_event_by_event_reference(span, mashing):
    from dataclasses import replace

    layout = replace(default_layout("test", span=span), view_mashing=mashing)
    words, address, prompt, time_ms = _stream(layout, out_of_range=37)
    result = histogram_listmode(words, layout, progress=False, chunk_words=4099)  # odd chunks: time carries over
    prompts, delays = _reference_histogram(address, prompt, time_ms, layout)
    np.testing.assert_array_equal(result.prompts, prompts)
    np.testing.assert_array_equal(result.delays, delays)
    assert result.n_dropped == 37
    assert result.prompts.dtype == np.uint32 and result.prompts.shape == layout.shape
    assert result.duration_s == pytest.approx(0.040)


def test_framing_splits_counts_exactly():
    layout = default_layout("test")
    words, address, prompt, time_ms = _stream(layout, duration_ms=100)
    whole = histogram_listmode(words, layout, progress=False)
    first = histogram_listmode(words, layout, start_s=0.0, end_s=0.03, progress=False)
    second = histogram_listmode(words, layout, start_s=0.03, progress=False)
    np.testing.assert_array_equal(first.prompts + second.prompts, whole.prompts)
    np.testing.assert_array_equal(first.delays + second.delays, whole.delays)
    assert first.n_prompts == np.count_nonzero(prompt & (time_ms < 30))
    assert (first.duration_s, second.duration_s) == (pytest.approx(0.03), pytest.approx(0.07))
    expected, _ = _reference_histogram(address, prompt, time_ms, layout, 30, 100)
    np.testing.assert_array_equal(second.prompts, expected)


def test_singles_are_averaged_and_other_tags_skipped():
    layout = default_layout("test", span=1)
    event = petlink.encode_event_words(np.array([5]), np.array([True]))
    singles = petlink.encode_singles_words(np.array([3, 3, 7]), np.array([800.0, 1600.0, 80.0]))
    gating = np.array([0xC000_0001, 0xE000_0123], dtype=np.uint32)  # kinds 0b110, 0b111
    words = np.concatenate([petlink.encode_time_tags([0]), event, singles, gating, event])
    result = histogram_listmode(words, layout, progress=False)
    assert result.n_prompts == 2 and result.n_delays == 0
    assert result.singles_per_s == {3: 1200.0, 7: 80.0}
    assert result.n_other_tags == 2


def test_events_before_the_first_tag_are_at_time_zero():
    layout = default_layout("test", span=1)
    words = np.concatenate([petlink.encode_event_words(np.array([1, 2]), np.array([True, True])),
                            petlink.encode_time_tags([5]), petlink.encode_event_words(np.array([3]), np.array([1]))])
    assert histogram_listmode(words, layout, end_s=0.001, progress=False).n_prompts == 2
    assert histogram_listmode(words, layout, start_s=0.005, progress=False).n_prompts == 1


def test_file_reading_streams_and_matches_the_array(tmp_path):
    layout = default_layout("test")
    words, *_ = _stream(layout)
    path = tmp_path / "scan.l"
    words.astype("<u4").tofile(path)
    chunks = [chunk.copy() for chunk in iter_listmode_chunks(path, chunk_words=1000)]  # the buffer is reused
    assert max(chunk.size for chunk in chunks) == 1000
    np.testing.assert_array_equal(np.concatenate(chunks), words)
    from_file = histogram_listmode(path, layout, progress=False, chunk_words=777)
    np.testing.assert_array_equal(from_file.prompts, histogram_listmode(words, layout, progress=False).prompts)


def test_truncated_file_and_bad_frames_are_refused(tmp_path):
    path = tmp_path / "cut.l"
    path.write_bytes(b"\x00" * 10)
    with pytest.raises(FormatError, match="cut.l: size"):
        histogram_listmode(path, default_layout("test"), progress=False)
    with pytest.raises(FormatError, match="does not exist"):
        list(iter_listmode_chunks(tmp_path / "missing.l"))
    with pytest.raises(ParameterError):
        histogram_listmode(np.zeros(3, np.uint32), default_layout("test"), start_s=5, end_s=2, progress=False)
    with pytest.raises(ParameterError):
        parse_frame("12")
    with pytest.raises(ParameterError, match="TOF"):
        histogram_listmode(np.zeros(3, np.uint32), default_layout("mct-tof"), progress=False)


def test_listmode_of_another_layout_is_refused_not_scrambled(tmp_path, capsys):
    """List-mode simulated on a 4-ring copy of the test scanner addresses a smaller span-1 sinogram: every address
    is in range of the 8-ring layout (nothing dropped), so only the header's keys can tell; both entry points refuse."""
    import dataclasses

    from petrecon.cli import main
    from petrecon.geometry import SinogramLayout, get_scanner
    from petrecon.io.study_input import open_listmode
    from petrecon.simulate.acquisition import simulate_to_file
    from petrecon.volume import ImageGrid

    reduced = SinogramLayout(dataclasses.replace(get_scanner("test"), n_rings=4), 1, 3, 64, 1)
    _, paths = simulate_to_file(tmp_path / "reduced.h5", "uniform-cylinder", scanner=reduced, duration_s=0.2,
                                listmode=True, progress=False, grid=ImageGrid.centred((8, 8, 4), (30.0, 30.0, 8.0)))
    words = np.fromfile(paths[1], "<u4")
    histogram = histogram_listmode(words, default_layout("test"), progress=False)
    assert histogram.n_dropped == 0 < histogram.n_prompts  # the guess the header check prevents
    header = paths[2].read_text()
    assert "%number of projections := 64" in header and "%segment table := {4,3,3,2,2,1,1}" in header
    assert main(["histogram", str(paths[1]), "--scanner", "test", "--out", str(tmp_path / "s.h5"), "--quiet"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "reduced.l.hdr" in error and "%maximum ring difference" in error
    with pytest.raises(FormatError, match="maximum ring difference"):
        open_listmode(paths[1], scanner="test")
    _, study = open_listmode(paths[1], scanner=reduced)  # the layout the words address is accepted
    assert study.layout == reduced


def test_more_than_a_stray_address_beyond_the_span1_sinogram_is_refused():
    layout = default_layout("test")
    size = layout.listmode_layout().n_sinograms * layout.listmode_layout().n_views * layout.n_radial_bins
    address = np.arange(20000) % size
    address[:3] = size + 5  # 3 of 20 000 events beyond the span-1 sinogram: far more than a stray word
    words = petlink.interleave_time_tags(petlink.encode_event_words(address, np.ones(address.size, bool)),
                                         np.zeros(address.size, np.int64), 1)
    with pytest.raises(FormatError, match="3 of the 20000 events .* address no bin"):
        histogram_listmode(words, layout, progress=False).check("scan.l")


def test_a_scanner_listmode_header_with_its_span11_sinogram_keys_is_accepted(tmp_path):
    """A real mMR .l.hdr lists its own span-11 histogramming keys (STIR's InterfileListmodeHeaderSiemens notes);
    the words still address span 1, so only the projections, views and ring difference are compared."""
    from petrecon.geometry import default_layout
    from petrecon.io.interfile import parse_interfile
    from petrecon.io.listmode import check_listmode_header

    layout = default_layout("mmr")
    text = ("!INTERFILE:=\n%LM event and tag words format (bits):=32\n%number of projections:=344\n"
            "%number of views:=252\n%axial compression:=11\n%maximum ring difference:=60\n%number of segments:=11\n"
            "%segment table:={127,115,115,93,93,71,71,49,49,27,27}\n%total number of sinograms:=837\n")
    check_listmode_header(parse_interfile(text, tmp_path / "scan.l.hdr"), layout)   # accepted
    with pytest.raises(FormatError, match="number of projections"):
        check_listmode_header(parse_interfile(text.replace("344", "200"), tmp_path / "scan.l.hdr"), layout)
