"""Dynamic frames: schedules, one-pass list-mode framing, frame-by-frame reconstruction, dynamic DICOM, CLI."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from petrecon.cli import main
from petrecon.errors import FormatError, ParameterError
from petrecon.geometry import default_layout
from petrecon.io import read_container, write_container
from petrecon.io.listmode import histogram_listmode, iter_listmode_frames
from petrecon.io.study_input import open_listmode, open_study
from petrecon.quant.roi import sphere_mask
from petrecon.recon.dynamic import Frame, check_schedule, parse_frame_schedule, reconstruct_listmode_frames
from petrecon.recon.osem import OsemProtocol
from petrecon.recon.protocol import CorrectionSettings, ReconstructionProtocol
from petrecon.recon.study import reconstruct_study
from petrecon.simulate.acquisition import simulate_study
from petrecon.simulate.listmode import concatenate_listmode, write_listmode
from petrecon.simulate.phantom import phantom_from_dict
from petrecon.volume import ImageGrid

BACKGROUND_BQ_PER_ML = 2000.0
SPHERE_BQ_PER_ML = (20000.0, 10000.0, 5000.0)   # the uptake curve: one value per 10 s segment
SEGMENT_S = 10.0
SPHERE_CENTRE_MM, SPHERE_RADIUS_MM = (25.0, 0.0, 0.0), 15.0
GRID = ImageGrid.centred((32, 32, 15), (6.0, 6.0, 2.0))
# scatter is not simulated (scatter=False): the model has nothing to estimate; everything else is corrected
PROTOCOL = ReconstructionProtocol(osem=OsemProtocol(4, 8, 5.0), image_shape=GRID.shape, voxel_size_mm=GRID.voxel_size_mm,
                                  corrections=CorrectionSettings(scatter=False, dead_time=False))


def _phantom(sphere_bq_per_ml: float):
    return phantom_from_dict({"regions": [
        {"activity": BACKGROUND_BQ_PER_ML, "material": "water", "shapes": [
            {"type": "cylinder", "centre_mm": [0.0, 0.0, 0.0], "radius_mm": 60.0, "length_mm": 200.0}]},
        {"activity": sphere_bq_per_ml, "material": "water", "shapes": [
            {"type": "sphere", "centre_mm": list(SPHERE_CENTRE_MM), "radius_mm": SPHERE_RADIUS_MM}]}]})


@pytest.fixture(scope="module")
def acquisition(tmp_path_factory):
    """A sphere whose uptake falls 20 -> 10 -> 5 kBq/ml over three 10 s segments in a 2 kBq/ml cylinder.

    Each segment is simulated analytically on its own (activity at its start = the curve value decayed from
    time 0, decaying within it) and the list-mode streams are joined; all segments share the normalisation
    (efficiency spread 0: only the gaps), so one base study serves every frame.
    """
    folder = tmp_path_factory.mktemp("dynamic")
    streams, studies = [], []
    for index, sphere in enumerate(SPHERE_BQ_PER_ML):
        study = simulate_study(_phantom(sphere), scanner="test", isotope="F18", duration_s=SEGMENT_S,
                               frame_start_s=index * SEGMENT_S, seed=index + 1, listmode=True, scatter=False,
                               efficiency_spread=0.0, grid=GRID, supersampling=1, progress=False)
        streams.append(study.listmode_words)
        studies.append(study.container)
    words = concatenate_listmode(streams)
    write_listmode(folder / "dyn.l", words)
    base = studies[0]
    write_container(folder / "base.h5", base)
    return {"folder": folder, "words": words, "studies": studies, "base": base,
            "calibration": 1.0 / base.attributes["sensitivity_cps_per_bq_per_ml_mm"]}


def _frame_base(acquisition):
    _, base = open_listmode(acquisition["folder"] / "dyn.l", scanner="test",
                            normalisation=acquisition["folder"] / "base.h5")
    base.attributes.update({"isotope": "F18", "calibration_bq_per_ml_per_unit": acquisition["calibration"]})
    base.sinograms["attenuation_factors"] = acquisition["base"].sinograms["attenuation_factors"]  # exact chords
    return base


# ---------------------------------------------------------------------------------------------- schedules
@pytest.mark.parametrize("text, durations", [
    ("6x10s,4x60s,5x300s", [10.0] * 6 + [60.0] * 4 + [300.0] * 5),
    ("30s", [30.0]), ("2x1min", [60.0, 60.0]), ("2 x 0.5min, 1h", [30.0, 30.0, 3600.0]), ("45", [45.0])])
def test_schedules_parse_into_consecutive_frames(text, durations):
    frames = parse_frame_schedule(text)
    assert [f.duration_s for f in frames] == durations
    assert [f.start_s for f in frames] == list(np.cumsum([0.0] + durations[:-1]))


@pytest.mark.parametrize("text", ["", "6x", "x10s", "0x10s", "10 parsecs", "6x10s,,4x60s", "-5s", "0s", "abc"])
def test_bad_schedules_are_parameter_errors(text):
    with pytest.raises(ParameterError, match="frame schedule"):
        parse_frame_schedule(text)


def test_a_schedule_longer_than_the_data_is_refused(acquisition):
    check_schedule(parse_frame_schedule("3x10s"), 30.0)
    with pytest.raises(ParameterError, match="ends at 40 s, the list-mode data at 30 s"):
        reconstruct_listmode_frames(acquisition["words"], _frame_base(acquisition), parse_frame_schedule("4x10s"),
                                    PROTOCOL, progress=False)


def test_one_pass_framing_equals_one_window_at_a_time(acquisition):
    layout = default_layout("test")
    windows = [(0.0, 7.5), (7.5, 19.0), (19.0, 30.0)]
    # chunks of 50000 words: many chunks per frame, and chunks that straddle frame boundaries
    framed = list(iter_listmode_frames(acquisition["words"], layout, windows, chunk_words=50_000, progress=False))
    for (start, end), histogram in zip(windows, framed):
        alone = histogram_listmode(acquisition["words"], layout, start_s=start, end_s=end, progress=False)
        np.testing.assert_array_equal(histogram.prompts, alone.prompts)
        np.testing.assert_array_equal(histogram.delays, alone.delays)
        assert histogram.duration_s == pytest.approx(end - start)
    with pytest.raises(ParameterError, match="overlap"):
        next(iter_listmode_frames(acquisition["words"], layout, [(0.0, 10.0), (5.0, 20.0)], progress=False))


# ---------------------------------------------------------------------------------------------- physics
@pytest.fixture(scope="module")
def dynamic(acquisition):
    return reconstruct_listmode_frames(acquisition["words"], _frame_base(acquisition), parse_frame_schedule("3x10s"),
                                       PROTOCOL, progress=False)


def test_decay_corrected_frames_add_up_to_the_static_reconstruction(acquisition, dynamic):
    static = open_study(acquisition["folder"] / "dyn.l", scanner="test",
                        normalisation=acquisition["folder"] / "base.h5", progress=False)
    static.attributes.update(_frame_base(acquisition).attributes | {"duration_s": static.attributes["duration_s"]})
    static.sinograms["attenuation_factors"] = acquisition["base"].sinograms["attenuation_factors"]
    whole = reconstruct_study(static, PROTOCOL, progress=False).volume
    x, y, z = np.meshgrid(*(GRID.voxel_centres_mm(a) for a in range(3)), indexing="ij")
    body = (np.hypot(x, y) < 50.0) & (np.abs(z) < 10.0)
    frames_bq_s = sum(float(v.data[body].mean()) * f.duration_s for f, v in zip(dynamic.frames, dynamic.volumes))
    static_bq_s = float(whole.data[body].mean()) * 30.0
    # Both images come from the same events, so Poisson noise cancels to first order; what remains is OSEM's
    # non-linearity at the frames' lower counts. Bound it by the Poisson noise of the smallest frame's counts
    # in the body ROI: 3 / sqrt(N_min), N_min ~ 3.4e5 prompts -> 0.5 %.
    n_min = min(extra["n_prompts"] for extra in dynamic.frame_attributes)
    print(f"frames {frames_bq_s:.6g} Bq s/ml, static {static_bq_s:.6g}: {frames_bq_s / static_bq_s - 1:+.4%}")
    assert frames_bq_s == pytest.approx(static_bq_s, rel=3.0 / math.sqrt(n_min))
    assert dynamic.corrected == ("NORM", "ATTN", "RAN", "DECY")


def test_a_time_varying_sphere_is_recovered_frame_by_frame(dynamic):
    mask = sphere_mask(GRID, SPHERE_CENTRE_MM, 9.0)  # 6 mm inside the sphere edge: no partial volume at 5 mm FWHM
    system_fwhm_mm = math.hypot(5.0, 4.0)            # post-filter and the simulated resolution (~4 mm)
    independent = max(1.0, mask.sum() * np.prod(GRID.voxel_size_mm) / system_fwhm_mm**3)
    for truth, volume in zip(SPHERE_BQ_PER_ML, dynamic.volumes):
        values = volume.data[mask]
        # noise of the ROI mean: voxel SD over the number of independent resolution cells in the ROI, 3 sigma
        tolerance = 3.0 * float(values.std(ddof=1)) / math.sqrt(independent)
        print(f"sphere truth {truth:g}: mean {float(values.mean()):.1f}, 3 sigma {tolerance:.1f}")
        assert float(values.mean()) == pytest.approx(truth, abs=tolerance)
    means = [float(v.data[mask].mean()) for v in dynamic.volumes]
    assert means[0] > means[1] > means[2]


def test_dead_time_from_bucket_singles_scales_each_frame(acquisition):
    from petrecon.io.petlink import encode_singles_words

    # 1e5 singles/s in two buckets, once per ms: with tau = 1 us each bucket is 90 % live, a coincidence 81 %
    words = acquisition["words"]
    is_tag = (words >> 29) == 0b100
    singles = encode_singles_words(np.array([0, 1]), np.array([1e5, 1e5]))
    with_singles = np.insert(words, np.repeat(np.flatnonzero(is_tag) + 1, 2), np.tile(singles, int(is_tag.sum())))
    # one OSEM sub-iteration without randoms suffices: the live fraction only scales the system model
    fast = dataclasses.replace(PROTOCOL, osem=OsemProtocol(1, 1, 5.0),
                               corrections=CorrectionSettings(scatter=False, randoms=False, dead_time=False))
    protocol = dataclasses.replace(fast, corrections=dataclasses.replace(fast.corrections, dead_time=True))
    base = _frame_base(acquisition)
    frames = [Frame(0.0, 10.0)]
    plain = reconstruct_listmode_frames(with_singles, base, frames, fast, progress=False)
    corrected = reconstruct_listmode_frames(with_singles, base, frames, protocol, dead_time_s=1e-6, progress=False)
    assert corrected.frame_attributes[0]["live_fraction"] == pytest.approx(0.81, abs=1e-3)  # singles scale 8/s
    assert "DTIM" in corrected.corrected and "DTIM" not in plain.corrected
    ratio = corrected.volumes[0].data.sum() / plain.volumes[0].data.sum()
    assert ratio == pytest.approx(1 / 0.81, rel=2e-3)  # OSEM is scale-equivariant in m: 1/L exactly, up to float
    uncorrected = reconstruct_listmode_frames(with_singles, base, frames, protocol, progress=False)
    assert "dead_time" in uncorrected.not_applied


# ---------------------------------------------------------------------------------------------- DICOM
def test_dynamic_dicom_round_trip_keeps_frame_times_and_values(tmp_path):
    import datetime

    import pydicom

    from petrecon.io.dicom import decay_weighted_frame_time_s, read_dynamic_pet_series, read_pet_series, \
        write_dynamic_pet_series
    from petrecon.volume import Volume

    grid = ImageGrid.centred((6, 5, 4), (3.0, 3.0, 2.0))
    rng = np.random.default_rng(1)
    frames = [Volume(rng.random(grid.shape, dtype=np.float32) * 1e4, grid, {"units": "Bq/ml"}) for _ in range(3)]
    starts, durations = [0.0, 30.0, 90.0], [30.0, 60.0, 120.0]
    scan = datetime.datetime(2026, 3, 2, 10, 0, 0)
    write_dynamic_pet_series(frames, tmp_path / "dyn", frame_start_s=starts, frame_duration_s=durations,
                             injected_dose_bq=3e8, injection_datetime=scan, series_datetime=scan, isotope="F18")
    back = read_dynamic_pet_series(tmp_path / "dyn")
    assert len(back) == 3
    for volume, original, start, duration in zip(back, frames, starts, durations):
        # int16 with a per-slice slope: within half a step of the slice maximum
        np.testing.assert_allclose(volume.data, original.data, atol=1e4 / 32767)
        inputs = volume.metadata["suv_inputs"]
        assert inputs["actual_frame_duration_ms"] == duration * 1000
        reference_s = start + decay_weighted_frame_time_s(duration, 6586.2)
        assert inputs["frame_reference_time_ms"] == pytest.approx(reference_s * 1000, abs=1e-3)
        assert inputs["acquisition_time"].startswith((scan + datetime.timedelta(seconds=start)).strftime("%H%M%S"))
        assert inputs["series_time"].startswith("100000") and inputs["decay_correction"] == "START"
    first = pydicom.dcmread(sorted((tmp_path / "dyn").iterdir())[0])
    assert first.NumberOfTimeSlices == 3 and list(first.SeriesType) == ["DYNAMIC", "IMAGE"]
    with pytest.raises(FormatError, match="NumberOfTimeSlices"):
        read_pet_series(tmp_path / "dyn")


# ---------------------------------------------------------------------------------------------- command line
def test_recon_frames_writes_hdf5_dicom_and_tacs(acquisition, tmp_path, capsys):
    folder = acquisition["folder"]
    common = ["--scanner", "test", "--isotope", "F18", "--norm", str(folder / "base.h5"), "--mumap",
              str(folder / "base.h5"), "--calibration", repr(acquisition["calibration"]), "--no", "scatter",
              "--injected-mbq", "50", "--iterations", "1", "--subsets", "2", "--quiet"]
    assert main(["recon", str(folder / "dyn.l"), "--frames", "3x10s", "--out", str(tmp_path / "dyn.h5"),
                 "--dicom", str(tmp_path / "dyn"), *common]) == 0
    output = capsys.readouterr()
    assert "3 frames" in output.out and "dead_time correction off" in output.err
    container = read_container(tmp_path / "dyn.h5")
    assert [row["start_s"] for row in container.attributes["frames"]] == [0.0, 10.0, 20.0]
    assert container.attributes["decay_correction"] == "START"
    assert container.provenance["corrected_image"] == ["NORM", "ATTN", "RAN", "DECY"]
    assert "dead_time" in container.provenance["corrections_not_applied"]

    roi = "sphere:25,0,0,9"
    assert main(["tac", str(tmp_path / "dyn.h5"), "--roi", roi, "--csv", str(tmp_path / "tac.csv"),
                 "--plot", str(tmp_path / "tac.png")]) == 0
    assert main(["tac", str(tmp_path / "dyn"), "--roi", roi]) == 0
    from_h5 = (tmp_path / "tac.csv").read_text().splitlines()
    assert len(from_h5) == 4 and (tmp_path / "tac.png").read_bytes()[:4] == b"\x89PNG"
    # the DICOM series gives the same curve: same frame times, values to int16 precision
    printed = capsys.readouterr().out.splitlines()
    from_dicom = [line for line in printed if line.startswith('"sphere')][-3:]
    for h5_row, dicom_row in zip(from_h5[1:], from_dicom):
        h5_values, dicom_values = h5_row.split(",")[-5:], dicom_row.split(",")[-5:]
        assert float(dicom_values[0]) == pytest.approx(float(h5_values[0]), abs=1e-3)   # reference time
        assert float(dicom_values[1]) == pytest.approx(float(h5_values[1]), rel=1e-3)   # mean

    assert main(["recon", str(folder / "dyn.l"), "--frames", "4x10s", "--out", str(tmp_path / "long.h5"),
                 *common]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error == "petrecon: error: frame schedule ends at 40 s, the " + str(folder / "dyn.l") + " data at 30 s"
