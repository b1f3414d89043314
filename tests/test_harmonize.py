"""EARL harmonisation through the command line, on the real mMR and Biograph 64 (their reduced sampling).

Cost: the scanners are reduced to 12 rings (the fewest that image the NU 2 background slices 20 mm from the
sphere plane), the sweeps to 0.5 mm steps and the clinical 4 iterations; the earl2 PSF mechanism runs on a
still smaller b64 (320 mm field of view, views mashed by 4). Expected values are the EARL bands
(reference/quantification.md), never a figure of the code's own output.
"""

from __future__ import annotations

import contextlib
import io
import re

import numpy as np
import pytest

from petrecon import harmonize
from petrecon.cli import main
from petrecon.errors import ParameterError
from petrecon.geometry import default_layout
from petrecon.geometry.reduced import reduced_sampling
from petrecon.quant.earl import earl_band
from petrecon.quant.image_harmonisation import ImageHarmonisation
from petrecon.recon import ReconstructionProtocol
from petrecon.recon.study import image_grid

FWHM_GRID_MM = tuple(float(k) for k in range(11))  # 0-10 mm in 1 mm steps: the EARL1 intervals are ~2-3 mm wide
RINGS = "12"


def _printed_rcs(text: str) -> dict[float, tuple[float, float]]:
    """The ``d_mm RCmax RCa50`` table the command prints."""
    return {float(d): (float(rc_max), float(rc_a50))
            for d, rc_max, rc_a50 in re.findall(r"^(\d+)\s+([\d.]+)\s+([\d.]+)$", text, re.MULTILINE)}


def _assert_in_bands(standard: str, rcs: dict[float, tuple[float, float]]) -> None:
    assert sorted(rcs) == [10.0, 13.0, 17.0, 22.0, 28.0, 37.0]
    for diameter_mm, (rc_max, rc_a50) in rcs.items():
        for metric, value in (("rc_max", rc_max), ("rc_mean_a50", rc_a50)):
            low, high = earl_band(standard, metric, diameter_mm)
            assert low <= value <= high, (standard, diameter_mm, metric, value)


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory):
    """``petrecon harmonize`` as the README runs it (smaller --rings): an EARL1 protocol for the mMR and an EARL1
    image filter for the Biograph 64; ``{name: (path, printed text)}``."""
    folder = tmp_path_factory.mktemp("harmonize")
    patch = pytest.MonkeyPatch()
    patch.setattr(harmonize, "DEFAULT_FWHM_GRID_MM", FWHM_GRID_MM)
    patch.setattr(harmonize, "DEFAULT_ITERATIONS", (4,))
    patch.setattr(harmonize, "DEFAULT_PSF_FWHM_MM", (0.0,))
    runs = {}
    for name, extra in (("earl1-mmr.toml", ["--scanner", "mmr"]),
                        ("earl1-b64-filter.toml", ["--scanner", "b64", "--image-filter"])):
        out = folder / name
        text = io.StringIO()
        with contextlib.redirect_stdout(text):
            assert main(["harmonize", *extra, "--standard", "earl1", "--rings", RINGS, "--out", str(out),
                         "--quiet"]) == 0
        runs[name] = (out, text.getvalue())
    patch.undo()
    return runs


def test_cli_earl1_protocol_for_the_mmr_puts_every_sphere_in_the_bands(cli_runs):
    path, text = cli_runs["earl1-mmr.toml"]
    _assert_in_bands("earl1", _printed_rcs(text))
    protocol = ReconstructionProtocol.load(path)
    assert protocol.scanner == "mmr" and protocol.osem.n_iterations == 4 and protocol.psf_fwhm_mm == 0
    # the clinical 5 mm is too sharp for EARL1 (RC max of the 13 mm sphere above 0.85 with a 4 mm system FWHM:
    # reference analytic RCs); far above ~8 mm the 37 mm RC A50 falls below 0.76
    assert 5.0 < protocol.osem.post_filter_fwhm_mm < 9.0
    assert "EARL1 (F18)" in text and "f18" in protocol.name and "F18" in protocol.description


def test_harmonised_protocol_keeps_the_full_field_of_view(cli_runs):
    path, _ = cli_runs["earl1-mmr.toml"]
    text = path.read_text()
    assert "[image]" not in text and "[calibration]" not in text
    protocol = ReconstructionProtocol.load(path)
    assert "calibration from the study" in protocol.description
    assert image_grid(protocol, default_layout("mmr")).shape == (344, 344, 127)  # the mMR's own image
    reduced = reduced_sampling("mmr", n_rings=int(RINGS))
    assert image_grid(protocol, reduced.layout) == reduced.grid  # a reduced study: its own grid


def test_cli_earl1_image_filter_for_the_b64_puts_every_sphere_in_the_bands(cli_runs):
    path, text = cli_runs["earl1-b64-filter.toml"]
    _assert_in_bands("earl1", _printed_rcs(text))
    filt = ImageHarmonisation.load(path)
    assert (filt.name, filt.standard, filt.scanner, filt.isotope) == ("earl1", "earl1", "b64", "F18")
    # on top of the clinical 5 mm: EARL1 needs ~6-8 mm in all (as the mMR protocol), so 2-7 mm extra in quadrature
    assert 2.0 <= filt.fwhm_mm <= 7.0


def test_cli_refuses_too_few_rings_for_the_background_slices(tmp_path, capsys):
    assert main(["harmonize", "--scanner", "b64", "--standard", "earl1", "--rings", "8",
                 "--out", str(tmp_path / "p.toml")]) == 2
    assert "at least 11 rings" in capsys.readouterr().err


def test_earl2_needs_the_psf_model_and_then_passes():
    # 16 rings: the NU 2 background slices 20 mm off the spheres stay clear of the end planes, whose bias (activity
    # outside the short axial field of view) the PSF model amplifies; 360 mm covers the 300 mm body
    sampling = reduced_sampling("b64", n_rings=16, field_of_view_mm=360.0, view_mashing=4)
    result = harmonize.harmonise(sampling.layout, "earl2", iterations=(4,), psf_fwhm_mm=(0.0, 4.0), progress=False,
                                 fwhm_grid_mm=tuple(2.0 + 0.5 * k for k in range(9)))
    # without PSF the large spheres' RC max stays below EARL2's 1.05: the 4 mm PSF model is the one that passes
    assert result.protocol.psf_fwhm_mm == 4.0
    _assert_in_bands("earl2", {s.diameter_mm: (s.rc_max, s.rc_mean_a50) for s in result.nema.spheres})
    assert "[image]" not in result.protocol.to_toml()


def test_unknown_standard_is_one_clear_error():
    with pytest.raises(ParameterError, match="earl1, earl2"):
        harmonize.search_filter(None, "earl3")


def test_per_iteration_images_are_zero_where_no_line_of_response_reaches():
    """The cause of "found 0 hot spheres" with --rings 28: on a grid wider than the ring (the mMR's own
    344 x 344 image spans 717 mm, its ring 656 mm) the corner voxels kept OSEM's start value 1, far above the
    phantom, in the per-iteration images the filter sweep analyses. Here the test scanner (ring radius 120 mm)
    and a 300 mm grid: a voxel centre beyond 120 mm from the axis lies on no line of response."""
    from petrecon.simulate.acquisition import simulate_study
    from petrecon.volume import ImageGrid

    grid = ImageGrid.centred((50, 50, 15), (6.0, 6.0, 2.0))
    study = simulate_study("uniform-cylinder", scanner="test", duration_s=10.0, noise=False, scatter=False,
                           randoms=False, grid=grid, supersampling=1, progress=False).container
    protocol = harmonize._phantom_model(ReconstructionProtocol(), grid)
    images = harmonize._images_per_iteration(study, protocol, 2, progress=False)
    x_mm, y_mm = np.meshgrid(*[(np.arange(50) - 24.5) * 6.0] * 2, indexing="ij")
    outside = np.hypot(x_mm, y_mm) > 120.0 + 6.0  # one voxel's margin past the ring
    for image in images.values():
        assert np.all(image.data[outside] == 0.0)
