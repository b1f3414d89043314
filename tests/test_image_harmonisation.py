"""Image-based EARL harmonisation: the extra-filter search, the file, and ``petrecon filter`` on a DICOM series.

The search runs on synthetic IEC images (the voxelised phantom blurred by a known Gaussian: a stand-in for a
reconstruction, cheap), so the expectations follow from arithmetic: Gaussians add in quadrature.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from petrecon import harmonize
from petrecon.cli import main
from petrecon.errors import ParameterError
from petrecon.geometry import get_scanner
from petrecon.io import Container, write_container
from petrecon.io.dicom import read_pet_series, write_pet_series
from petrecon.isotopes import get_isotope
from petrecon.operators import FWHM_PER_SIGMA, gaussian_post_filter
from petrecon.quant.image_harmonisation import ImageHarmonisation
from petrecon.quant.nema import analyse_nema, find_phantom
from petrecon.recon import ReconstructionProtocol
from petrecon.simulate.phantom import load_phantom
from petrecon.simulate.resolution import system_fwhm_mm
from petrecon.simulate.voxelise import blurred_activity
from petrecon.volume import ImageGrid, Volume

FWHM_GRID_MM = tuple(0.5 * k for k in range(21))
GRID = ImageGrid.centred((160, 160, 23), (2.0, 2.0, 2.0))  # the IEC body (294 mm) and +-22 mm around its spheres
SCAN = dt.datetime(2026, 3, 2, 10, 30)


@pytest.fixture(scope="module")
def iec_images():
    """The IEC phantom (10:1) blurred by the mMR's system FWHM with 18F and with 68Ga (detector blur and the
    isotope's positron range in quadrature: 4.1 and 6.3 mm), as a reconstruction would see it."""
    phantom = load_phantom("nema-iec", {"ratio": 10.0})
    return {isotope: (system_fwhm_mm(get_scanner("mmr"), get_isotope(isotope)),
                      blurred_activity(phantom, GRID, system_fwhm_mm(get_scanner("mmr"), get_isotope(isotope)),
                                       supersampling=1))
            for isotope in ("F18", "Ga68")}


@pytest.fixture(scope="module")
def searches(iec_images):
    return {isotope: harmonize.image_filter_search(image, "earl1", activity_ratio=10.0, fwhm_grid_mm=FWHM_GRID_MM)
            for isotope, (_, image) in iec_images.items()}


def test_ga68_needs_a_narrower_filter_than_f18(searches):
    # 68Ga's positron range (mean 3.5 mm vs 0.6 mm in water) already blurs the image: less filter to add
    assert searches["Ga68"].harmonisation.fwhm_mm < searches["F18"].harmonisation.fwhm_mm


def test_extra_filter_tops_up_the_resolution_in_quadrature(iec_images, searches):
    """Both images end at the same total resolution: sqrt(system^2 + extra^2) agrees within the passing
    interval's half-width plus the 0.5 mm sweep step (the middle of each interval is picked)."""
    totals = {isotope: math.hypot(iec_images[isotope][0], search.harmonisation.fwhm_mm)
              for isotope, search in searches.items()}
    half_width_mm = max((max(s.passing_fwhm_mm) - min(s.passing_fwhm_mm)) / 2 for s in searches.values())
    assert abs(totals["F18"] - totals["Ga68"]) <= half_width_mm + 0.5, totals


def test_chosen_filter_is_the_middle_of_the_passing_interval(iec_images, searches):
    """The coarse-then-edges sweep stops where the bands stop: both ends of its interval pass and the grid
    points just outside fail (recovery falls monotonically with the FWHM, so nothing beyond passes either)."""
    search = searches["F18"]
    passing = search.passing_fwhm_mm
    image = iec_images["F18"][1]
    geometry = find_phantom(image)

    def passes(fwhm_mm: float) -> bool:
        smoothed = Volume(gaussian_post_filter(image.data, fwhm_mm, GRID.voxel_size_mm), GRID)
        return analyse_nema(smoothed, activity_ratio=10.0, geometry=geometry).earl["earl1"]["passes"]

    low, high = min(passing), max(passing)
    assert passes(low) and passes(high) and not passes(low - 0.5) and not passes(high + 0.5)
    assert passing == [f for f in FWHM_GRID_MM if low <= f <= high]
    assert abs(search.harmonisation.fwhm_mm - (low + high) / 2) <= 0.25  # half a 0.5 mm step
    assert search.nema.earl["earl1"]["passes"]


def test_no_passing_filter_is_one_error_listing_the_rcs():
    # 12 mm of blur: recovery already below the EARL1 bands, more filter only lowers it
    image = blurred_activity(load_phantom("nema-iec", {"ratio": 10.0}), GRID, 12.0, supersampling=1)
    with pytest.raises(ParameterError, match=r"EARL1 bands; at 0 mm .*10: 0\.\d\d/0\.\d\d"):
        harmonize.find_image_filter(image, "earl1", activity_ratio=10.0, fwhm_grid_mm=(0.0, 2.0))


def test_cli_nema_image_writes_the_filter_file(iec_images, searches, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(harmonize, "DEFAULT_FWHM_GRID_MM", tuple(float(k) for k in range(11)))  # 1 mm steps
    write_container(tmp_path / "iec.h5", Container(volumes={"pet": iec_images["F18"][1]}))
    out = tmp_path / "earl1-site.toml"
    assert main(["harmonize", "--nema-image", str(tmp_path / "iec.h5"), "--standard", "earl1", "--ratio", "10",
                 "--isotope", "F18", "--out", str(out)]) == 0
    written = ImageHarmonisation.load(out)
    assert written.fwhm_mm in searches["F18"].passing_fwhm_mm  # the 1 mm sweep's middle, inside the 0.5 mm one's
    assert (written.standard, written.isotope, written.source) == ("earl1", "F18", str(tmp_path / "iec.h5"))
    assert "EARL1 image filter" in capsys.readouterr().out


def test_protocol_file_has_no_empty_tables():
    protocol = ReconstructionProtocol()
    text = protocol.to_toml()
    assert "[image]" not in text and "[calibration]" not in text
    assert ReconstructionProtocol.from_toml(text) == protocol
    calibrated = ReconstructionProtocol(calibration_bq_per_ml_per_unit=2.5, image_shape=(8, 8, 4),
                                        voxel_size_mm=(2.0, 2.0, 2.0))
    assert ReconstructionProtocol.from_toml(calibrated.to_toml()) == calibrated
    assert "[image]" in calibrated.to_toml() and "[calibration]" in calibrated.to_toml()


def test_cli_filter_writes_a_new_series_of_the_same_study(tmp_path):
    grid = ImageGrid.centred((31, 31, 21), (2.0, 2.0, 2.0))
    data = np.zeros(grid.shape, np.float32)
    data[15, 15, 10] = 1.0e6  # a point (on zeros: the int16 rounding of a background would bias the moments)
    source = tmp_path / "pet"
    write_pet_series(Volume(data, grid, {"units": "Bq/ml"}), source, injected_dose_bq=200e6, isotope="Ga68",
                     injection_datetime=SCAN - dt.timedelta(minutes=62), series_datetime=SCAN,
                     frame_duration_s=180.0, patient_weight_kg=71.0, patient_id="P01",
                     radiopharmaceutical="Ga68-pentixafor", series_description="PET WB")
    filt = ImageHarmonisation(name="earl1", fwhm_mm=6.0, scanner="b64")
    filt.save(tmp_path / "earl1-b64.toml")
    out = tmp_path / "pet_earl1"
    assert main(["filter", str(source), "--harmonisation", str(tmp_path / "earl1-b64.toml"), "--dicom", str(out),
                 "--quiet"]) == 0
    before, after = read_pet_series(source), read_pet_series(out)
    head_before, head_after = before.metadata["dicom_header"], after.metadata["dicom_header"]
    for tag in ("0020000D", "00200052", "00100020"):  # study, frame of reference, patient ids
        assert head_after[tag] == head_before[tag]
    assert head_after["0020000E"] != head_before["0020000E"]  # a new series
    assert "earl1 6mm" in head_after["0008103E"]["Value"][0]
    inputs_before, inputs_after = before.metadata["suv_inputs"], after.metadata["suv_inputs"]
    for key in ("radionuclide_total_dose_bq", "radionuclide_half_life_s", "patient_weight_kg", "series_time",
                "radiopharmaceutical_start_datetime", "actual_frame_duration_ms", "corrected_image"):
        assert inputs_after[key] == inputs_before[key], key
    assert after.metadata["provenance"]["image_harmonisation"]["fwhm_mm"] == 6.0
    # the point spreads as a Gaussian of 6 mm FWHM: its variance along x is sigma^2 = (6 / 2.3548)^2 = 6.49 mm^2
    excess = after.data
    x_mm = (np.arange(31) - 15) * 2.0
    profile = excess.sum(axis=(1, 2))
    variance_mm2 = float((profile * x_mm**2).sum() / profile.sum())
    assert variance_mm2 == pytest.approx((6.0 / FWHM_PER_SIGMA) ** 2, rel=0.05)  # 5 %: sampling a 2.5 mm sigma
    # the filter keeps the activity (int16 storage: 1/32767 of each slice's maximum per voxel, ~1e-4 in all)
    assert float(excess.sum()) == pytest.approx(1.0e6, rel=1e-3)
