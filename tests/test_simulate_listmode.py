"""List-mode from the simulator: PETLINK words histogram back to the sinograms exactly."""

import numpy as np
import pytest

from petrecon.geometry import SinogramLayout, get_scanner
from petrecon.io.listmode import histogram_listmode
from petrecon.io.petlink import TIME_MASK
from petrecon.simulate.acquisition import simulate_study
from petrecon.simulate.listmode import event_times_s
from petrecon.volume import ImageGrid


@pytest.mark.parametrize("layout", [SinogramLayout(get_scanner("test"), 3, 7, 64, 1),
                                    SinogramLayout(get_scanner("test"), 5, 7, 64, 2)], ids=["span3", "span5-mash2"])
def test_listmode_histograms_back_to_the_simulated_sinograms_exactly(layout, monkeypatch):
    monkeypatch.setattr("petrecon.simulate.listmode.EVENTS_PER_CHUNK", 3000)  # several chunks per source
    study = simulate_study("uniform-cylinder", scanner=layout, injected_activity_bq=5e6, duration_s=2.0,
                           listmode=True, seed=7, grid=ImageGrid.centred((4, 4, 2), (40.0, 40.0, 16.0)),
                           progress=False)
    words = study.listmode_words
    assert words.dtype == np.uint32
    prompts = study.container.sinograms["prompts"]
    delays = study.container.sinograms["delays"]
    assert prompts.sum() > 10000 and delays.sum() > 100
    histogram = histogram_listmode(words, layout, progress=False)  # the product's histogrammer
    np.testing.assert_array_equal(histogram.prompts, prompts)
    np.testing.assert_array_equal(histogram.delays, delays)
    assert histogram.n_dropped == 0 and histogram.n_unmapped == 0
    tags = words[(words >> 29) == 0b100] & TIME_MASK
    np.testing.assert_array_equal(tags, np.arange(2000))  # one tag per ms of the 2 s frame
    # framing splits the counts: two halves add up to the whole, bin by bin
    halves = [histogram_listmode(words, layout, start_s=start, end_s=end, progress=False) for start, end in
              ((0.0, 1.0), (1.0, None))]
    np.testing.assert_array_equal(halves[0].prompts + halves[1].prompts, prompts)
    assert 0 < halves[0].prompts.sum() < prompts.sum()


def test_event_times_follow_the_decay_during_the_frame():
    rate = np.log(2) / 100.0  # half-life 100 s over a 100 s frame: twice as many events at the start
    times = event_times_s(400000, 100.0, rate, np.random.default_rng(0))
    first, second = np.count_nonzero(times < 50.0), np.count_nonzero(times >= 50.0)
    # Expected ratio (1 - 2^-0.5) / (2^-0.5 - 2^-1) = 1.414; binomial sd of the split ~ 0.0045.
    assert first / second == pytest.approx(np.sqrt(2.0), rel=0.01)
    assert times.max() < 100.0 and times.min() >= 0.0


def test_simulated_listmode_carries_a_siemens_header_with_the_patient_frame(tmp_path):
    """The .l.hdr beside a simulated .l gives recon the patient and bed position, as a scanner's header does."""
    from petrecon.io.study_input import open_listmode
    from petrecon.simulate.acquisition import simulate_to_file
    from petrecon.volume import ImageGrid

    _, paths = simulate_to_file(tmp_path / "cyl.h5", "uniform-cylinder", scanner="test", duration_s=1.0,
                                listmode=True, progress=False, patient_position="FFS", bed_position_mm=-250.0,
                                grid=ImageGrid.centred((8, 8, 4), (30.0, 30.0, 8.0)))
    assert [p.name for p in paths] == ["cyl.h5", "cyl.l", "cyl.l.hdr"]
    assert "%start horizontal bed position (mm) := -250" in paths[2].read_text()
    _, study = open_listmode(paths[1], scanner="test")
    assert study.attributes["patient_position"] == "FFS"
    assert (study.attributes["bed_position_mm"], study.attributes["bed_offset_mm"]) == (-250.0, 250.0)
