"""`petrecon demo`: the NEMA IEC phantom simulated, reconstructed, analysed and written; its outputs feed
`petrecon nema` and `petrecon suv` exactly as the README shows.

The demo runs once (module fixture) on a very small mMR copy so the suite stays fast: 12 rings around the
sphere plane, 160 radial bins (334 mm, the 294 mm phantom fits), views mashed by 4, 84 x 84 voxels of 4 mm.
The default sampling (28 rings, 2 mm voxels) takes about a minute and is measured in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import json
import re

import h5py
import numpy as np
import pytest

from petrecon.cli import build_parser, main
from petrecon.demo import DemoSampling, clinical_protocol, reduced_mmr_sampling, run_demo
from petrecon.errors import ParameterError
from petrecon.io import read_container
from petrecon.io.dicom import read_pet_series
from petrecon.volume import ImageGrid

BACKGROUND_ROI = "sphere:0,95,0,15"  # background between the 13 and 10 mm spheres' side and the body's edge


def _tiny_sampling() -> DemoSampling:
    reduced = reduced_mmr_sampling(n_rings=12, n_radial_bins=160, view_mashing=4, image_size=84)
    grid = ImageGrid.centred((84, 84, reduced.grid.shape[2]), (4.0, 4.0, reduced.grid.voxel_size_mm[2]))
    return DemoSampling(reduced.layout, grid, "tiny mMR copy for tests", True)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "petrecon-demo"
    return run_demo(out, sampling=_tiny_sampling(), progress=False)


def _cli_json(capsys, *argv: str):
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_background_is_the_true_concentration_and_recovery_rises_with_sphere_size(demo):
    nema = demo.nema
    # the chain's calibration (0.25 % on a cylinder) + partial volume of the background ROIs near the spheres
    # and walls (2 %, tests/test_quant_nema_reconstructed.py) + Poisson noise of ~3.9e8 prompts averaged over
    # 60 ROIs (N ~2 % per ROI: 0.3 %): 3 %
    assert nema.background_mean == pytest.approx(demo.truth_background_bq_per_ml, rel=0.03)
    assert nema.sphere_activity == pytest.approx(10.0 * demo.truth_background_bq_per_ml)  # EARL 10:1 fill
    rc_a50 = [s.rc_mean_a50 for s in nema.spheres]
    assert [s.diameter_mm for s in nema.spheres] == [10, 13, 17, 22, 28, 37]
    assert all(b > a for a, b in zip(rc_a50, rc_a50[1:]))  # partial volume falls with size
    # 4 mm voxels, 5 mm filter, 68Ga: the 37 mm sphere's A50 mean keeps 70-95 % (0.85 measured), the 10 mm
    # sphere's hottest voxel under 60 % (0.34)
    assert 0.70 < rc_a50[-1] < 0.95 and nema.spheres[0].rc_max < 0.6
    assert nema.lung_residual_percent < 40.0  # cold insert, not converged after 4 x 8 (tests of nema: 29 %)
    assert set(nema.earl) == {"earl1", "earl2"}
    assert demo.corrected == ("NORM", "ATTN", "RAN", "SCAT", "DECY")  # no dead time is simulated


def test_outputs_are_written_and_hold_the_truth_the_protocol_and_provenance(demo):
    paths = demo.paths
    for key in ("report", "container", "mip", "slice", "recovery", "rois"):
        assert paths[key].is_file() and paths[key].stat().st_size > 1000, key
    container = read_container(paths["container"])
    assert set(container.volumes) == {"activity_bq_per_ml", "truth_bq_per_ml"}
    assert container.attributes["primary_volume"] == "activity_bq_per_ml"
    assert container.attributes["protocol"]["osem"] == {"n_iterations": 4, "n_subsets": 8, "post_filter_fwhm_mm": 5.0}
    assert container.provenance["software_version"] and container.provenance["phantom"] == "nema-iec"
    truth = container.volumes["truth_bq_per_ml"]
    assert float(truth.data.max()) == pytest.approx(demo.nema.sphere_activity, rel=1e-3)  # voxels inside the sphere hold it exactly
    volume = container.volumes["activity_bq_per_ml"]
    assert volume.metadata["units"] == "Bq/ml" and volume.metadata["nema_truth"]["activity_ratio"] == 10.0
    with h5py.File(paths["container"]) as f:
        assert f["volumes/activity_bq_per_ml"].attrs["affine"][0, 0] == pytest.approx(4.0)


def test_dicom_series_is_the_reconstruction_and_says_how_it_was_made(demo):
    series = read_pet_series(demo.paths["dicom"])
    volume = read_container(demo.paths["container"]).volumes["activity_bq_per_ml"]
    assert series.grid == volume.grid
    # int16 with one slope per slice: within half a step (slice max / 32767 / 2)
    step = np.abs(volume.data).max(axis=(0, 1)) / 32767
    assert np.all(np.abs(series.data - volume.data) <= 0.51 * step[None, None, :] + 1e-3)
    inputs = series.metadata["suv_inputs"]
    assert inputs["corrected_image"] == list(demo.corrected) and inputs["decay_correction"] == "START"
    assert inputs["radionuclide_half_life_s"] == pytest.approx(4069.8, rel=1e-4)  # 68Ga, quantification.md
    assert inputs["patient_weight_kg"] == pytest.approx(9.36, abs=0.01)  # the phantom's water (9.3607 kg)
    assert inputs["actual_frame_duration_ms"] == 600_000
    assert series.metadata["provenance"]["nema_truth"]["activity_ratio"] == 10.0


def test_petrecon_nema_on_the_dicom_series_and_the_container_repeats_the_demo_analysis(demo, capsys):
    from_dicom = _cli_json(capsys, "nema", str(demo.paths["dicom"]), "--json")
    from_h5 = _cli_json(capsys, "nema", str(demo.paths["container"]), "--json")
    for record in (from_dicom, from_h5):
        assert record["activity_ratio"] == 10.0 and record["sphere_activity"] == pytest.approx(demo.nema.sphere_activity)
        # int16 storage moves a voxel by at most 1.5e-5 of its slice's maximum: RCs agree to 1e-3
        for sphere, expected in zip(record["spheres"], demo.nema.spheres):
            assert sphere["rc_max"] == pytest.approx(expected.rc_max, abs=1e-3)
            assert sphere["rc_mean_a50"] == pytest.approx(expected.rc_mean_a50, abs=1e-3)
        assert record["earl"]["earl1"]["passes"] == demo.nema.earl["earl1"]["passes"]
    assert from_h5["background_mean"] == pytest.approx(demo.nema.background_mean, rel=1e-9)  # the same volume
    assert main(["nema", str(demo.paths["container"])]) == 0
    assert "EARL1:" in capsys.readouterr().out


def test_petrecon_suv_on_the_dicom_series_gives_the_phantom_suvs(demo, capsys):
    records = _cli_json(capsys, "suv", str(demo.paths["dicom"]), "--roi", demo.roi_example, "--roi", BACKGROUND_ROI,
                        "--json")
    sphere, background = records
    inputs = read_pet_series(demo.paths["dicom"]).metadata["suv_inputs"]
    # injection at the scan start (a filled phantom): SUVbw = Bq/ml x weight (g) / dose (QIBA)
    factor = inputs["patient_weight_kg"] * 1000.0 / inputs["radionuclide_total_dose_bq"]
    largest = demo.nema.spheres[-1]
    assert sphere["suv_max"] == pytest.approx(largest.max * factor, rel=1e-3)  # int16 storage
    # a uniform fill of the phantom's water would read SUV 1; the background holds 5.3 of the 51.9 kBq/ml x ml:
    # SUV = truth x weight / dose = 0.956, within the background test's 3 %
    assert background["suv_mean"] == pytest.approx(demo.truth_background_bq_per_ml * factor, rel=0.03)
    assert 0.9 < demo.truth_background_bq_per_ml * factor < 1.0
    from_h5 = _cli_json(capsys, "suv", str(demo.paths["container"]), "--roi", demo.roi_example, "--json")[0]
    assert from_h5["suv_max"] == pytest.approx(sphere["suv_max"], rel=1e-3)  # same header, float32 vs int16


def test_report_is_self_contained_html_with_figures_tables_and_parameters(demo):
    page = demo.paths["report"].read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert page.count('src="data:image/png;base64,') == 4  # recovery, ROI placement, sphere plane, MIP
    assert not re.search(r"<script|<link|src=\"http|href=\"http", page)  # nothing external, no JS
    for text in ("RCmax", "RCmean (A50)", "RCpeak", "Q_H (%)", "N (%)", "lung residual", "EARL1", "EARL2",
                 "background mean", "tiny mMR copy for tests", "AW-OSEM", "time: reconstruct", "prompts (counts)",
                 "petrecon</th>"):
        assert text in page, text
    for sphere in demo.nema.spheres:
        assert f"{sphere.rc_max:.3f}" in page


def test_existing_outputs_are_refused_before_any_work(demo):
    with pytest.raises(ParameterError, match="overwrite"):
        run_demo(demo.output_dir, sampling=_tiny_sampling(), progress=False)


def test_command_line_runs_the_demo_with_its_options(tmp_path, capsys, monkeypatch):
    import petrecon.demo

    monkeypatch.setattr(petrecon.demo, "reduced_mmr_sampling", _tiny_sampling)  # the CPU default, made tiny
    out = tmp_path / "cli-demo"
    assert main(["demo", "--out", str(out), "--no-full", "--iterations", "1", "--subsets", "2", "--fwhm-mm", "6",
                 "--activity-mbq", "20", "--duration-s", "60", "--seed", "3", "--quiet"]) == 0
    printed = capsys.readouterr()
    assert "tiny mMR copy for tests" in printed.out and "EARL1" in printed.out
    assert str(out / "report.html") in printed.out and "--roi sphere:28.6,-49.537,0,18.5" in printed.out
    assert "reconstruct (AW-OSEM)" not in printed.err  # --quiet: no progress bars
    container = read_container(out / "demo.h5")
    assert container.attributes["protocol"]["osem"] == {"n_iterations": 1, "n_subsets": 2, "post_filter_fwhm_mm": 6.0}
    assert container.attributes["injected_activity_bq"] == pytest.approx(20e6)
    assert container.attributes["duration_s"] == 60.0 and container.attributes["seed"] == 3
    # the truth the analysis used follows the scaled activity: the simulated spheres' concentration
    sphere_truth = container.volumes["activity_bq_per_ml"].metadata["nema_truth"]["sphere_activity"]
    assert sphere_truth == pytest.approx(53000.0 * 20e6 / 51.896e6, rel=1e-3)  # 51.896 MBq: the default fill
    assert float(container.volumes["truth_bq_per_ml"].data.max()) == pytest.approx(sphere_truth, rel=1e-3)
    assert main(["demo", "--out", str(out), "--quiet"]) == 2  # exists: one-line error, exit 2
    assert "overwrite" in capsys.readouterr().err
    assert "randoms and scatter the simulator's" in printed.out
    estimated = tmp_path / "cli-demo-estimated"  # randoms from the delays, scatter by SSS + tail fit (2 rounds)
    assert main(["demo", "--out", str(estimated), "--no-full", "--iterations", "1", "--subsets", "2",
                 "--activity-mbq", "20", "--duration-s", "60", "--estimate-corrections", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "randoms and scatter estimated (delays; single scatter + tail fit)" in printed
    assert "corrections NORM ATTN RAN SCAT DECY" in printed


def test_help_has_examples_and_defaults_follow_the_backend():
    parser = build_parser()
    args = parser.parse_args(["demo"])
    assert (args.out, args.full, args.iterations, args.subsets, args.fwhm_mm) == ("petrecon-demo", None, 4, 8, 5.0)
    demo_parser = parser._subparsers._group_actions[0].choices["demo"]
    assert "petrecon nema petrecon-demo/dicom --json" in demo_parser.format_help()
    assert clinical_protocol().osem.n_iterations == 4 and clinical_protocol().corrections.scatter


def test_reduced_sampling_is_the_mmr_in_plane():
    sampling = reduced_mmr_sampling()
    full = __import__("petrecon.demo", fromlist=["full_mmr_sampling"]).full_mmr_sampling()
    assert sampling.grid.voxel_size_mm == pytest.approx(full.grid.voxel_size_mm)
    assert sampling.layout.radial_bin_size_mm == pytest.approx(full.layout.radial_bin_size_mm)
    assert sampling.layout.scanner.radius_mm == full.layout.scanner.radius_mm
    assert sampling.grid.shape[0] * sampling.grid.voxel_size_mm[0] > 300.0  # the 294 mm phantom fits
    with pytest.raises(ParameterError):
        reduced_mmr_sampling(n_rings=100)
