"""Bone-aware Dixon mu-map: the vertebral-body template, its placement and its mu."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from petrecon.attenuation import DixonClass, dixon_mu_map, segment_dixon
from petrecon.attenuation.bone_atlas import VERTEBRAL_BODY, place_vertebral_column, vertebral_body_mu_per_cm
from petrecon.cli import main
from petrecon.errors import ParameterError
from petrecon.io import read_container
from petrecon.volume import ImageGrid, Volume

GRID = ImageGrid.centred((120, 90, 4), (3.0, 3.0, 4.0))
BODY_SEMI_AXES_MM = (170.0, 120.0)  # a 340 x 240 mm trunk, posterior surface at y = +120 mm when supine
# Where anatomy puts a lumbar vertebral body's centre below the posterior skin (bone_atlas notes): skin to
# epidural space ~50 mm, spinal canal ~17 mm, half the body's depth ~17 mm; 6 mm off the midline (a scoliosis),
# off the voxel grid.
VERTEBRA_DEPTH_MM = 50.0 + 17.0 + 17.0
VERTEBRA_CENTRE_MM = (-6.0, BODY_SEMI_AXES_MM[1] - VERTEBRA_DEPTH_MM + 1.3)


def _dixon_body(*, vertebra: bool = True, prone: bool = False) -> tuple[Volume, Volume, np.ndarray]:
    """Water/fat of a trunk: 15 mm fat rim, muscle (fat fraction 5 %), a vertebral body of marrow (fat fraction
    45 %) with a low-signal cortex, and a sternum-like marrow bar anteriorly (a distractor); the vertebra's mask."""
    x, y, _ = np.meshgrid(*(GRID.voxel_centres_mm(a) for a in range(3)), indexing="ij")
    y = -y if prone else y  # prone: the patient's posterior is -y of the image
    water = np.zeros(GRID.shape, np.float32)
    fat = np.zeros(GRID.shape, np.float32)
    outer = np.hypot(x / BODY_SEMI_AXES_MM[0], y / BODY_SEMI_AXES_MM[1]) <= 1.0
    inner = np.hypot(x / (BODY_SEMI_AXES_MM[0] - 15), y / (BODY_SEMI_AXES_MM[1] - 15)) <= 1.0
    water[outer], fat[outer] = 0.1, 0.9
    water[inner], fat[inner] = 0.95, 0.05
    body = np.hypot((x - VERTEBRA_CENTRE_MM[0]) / 22.0, (y - VERTEBRA_CENTRE_MM[1]) / 17.0)
    cortex, marrow = (body <= 1.0) & (body > 0.85), body <= 0.85
    sternum = (np.abs(x) < 12) & (np.abs(y + 90) < 5)
    water[sternum], fat[sternum] = 0.5, 0.4
    if vertebra:
        water[cortex], fat[cortex] = 0.02, 0.02
        water[marrow], fat[marrow] = 0.5, 0.4
    metadata = {"patient_position": "HFP" if prone else "HFS"}
    return Volume(water, GRID, metadata), Volume(fat, GRID, dict(metadata)), (body <= 1.0)


def _masks(water: Volume, fat: Volume) -> tuple[np.ndarray, np.ndarray]:
    """Tissue (signal above 10 %) and the outline (tissue with its holes filled per slice)."""
    body = water.data + fat.data > 0.1
    outline = np.stack([ndimage.binary_fill_holes(body[:, :, k]) for k in range(body.shape[2])], axis=2)
    return body, outline


@pytest.mark.parametrize("prone", [False, True])
def test_vertebral_body_is_found_within_one_voxel_of_its_anatomical_place(prone):
    water, fat, _ = _dixon_body(prone=prone)
    body, outline = _masks(water, fat)
    placement = place_vertebral_column(water, fat, body, outline, posterior_sign=-1.0 if prone else 1.0)
    expected = np.array([VERTEBRA_CENTRE_MM[0], -VERTEBRA_CENTRE_MM[1] if prone else VERTEBRA_CENTRE_MM[1]])
    # the centre is a voxel centre of the 3 mm grid: within half a voxel's diagonal (2.1 mm) of the truth,
    # 3 mm allowed; every slice holds the vertebra
    np.testing.assert_array_less(np.abs(placement.centres_mm - expected).max(axis=1), 3.0)
    assert np.all(placement.marrow_fraction > 0.7)  # the template lies over the vertebra's marrow (85 % of it)


def test_no_bone_is_placed_where_no_marrow_is_seen():
    # the sternum-like bar lies in the anterior half: outside the search; nothing else is marrow-like
    water, fat, _ = _dixon_body(vertebra=False)
    placement = place_vertebral_column(water, fat, *_masks(water, fat))
    assert np.isnan(placement.centres_mm).all() and not placement.mask.any()


def test_template_mu_is_the_area_weighted_mean_of_shell_and_spongiosa():
    # ICRU 44 spongiosa 0.113 and cortical bone 0.172 cm^-1 at 511 keV (NIST XCOM); the ellipse's perimeter
    # by numerical integration (independent of the code's closed form), 0.4 mm shell
    a, b = VERTEBRAL_BODY.width_mm / 2, VERTEBRAL_BODY.depth_mm / 2
    t = np.linspace(0, 2 * np.pi, 200001)
    perimeter_mm = np.sum(np.hypot(np.diff(a * np.cos(t)), np.diff(b * np.sin(t))))
    shell = VERTEBRAL_BODY.cortical_thickness_mm * perimeter_mm / (np.pi * a * b)
    assert vertebral_body_mu_per_cm() == pytest.approx(0.113 + shell * (0.172 - 0.113), rel=1e-5)


def test_segmentation_labels_bone_only_with_the_atlas_and_maps_it_to_the_template_mu():
    water, fat, vertebra = _dixon_body()
    four = segment_dixon(water, fat)
    five = segment_dixon(water, fat, bone="atlas")
    assert not np.any(four.data == DixonClass.BONE) and five.metadata["bone_slices"] == GRID.shape[2]
    bone = five.data == DixonClass.BONE
    # the template (40 x 32 mm) inside the 44 x 34 mm vertebra: at least 85 % of the template's voxels on it
    assert np.count_nonzero(bone & vertebra) >= 0.85 * np.count_nonzero(bone)
    np.testing.assert_array_equal(five.data[~bone], four.data[~bone])  # the 4 classes elsewhere unchanged
    mu = dixon_mu_map(five)
    assert np.allclose(mu.data[bone], vertebral_body_mu_per_cm())
    assert mu.metadata["mu_per_cm"]["BONE"] == pytest.approx(vertebral_body_mu_per_cm())
    assert "BONE" not in dixon_mu_map(four).metadata["mu_per_cm"]


def test_unknown_bone_model_is_refused():
    water, fat, _ = _dixon_body()
    with pytest.raises(ParameterError, match="bone must be one of none, atlas"):
        segment_dixon(water, fat, bone="ct")


def test_bone_option_without_dixon_is_a_one_line_error(tmp_path, capsys):
    assert main(["mumap", "--ct", str(tmp_path / "ct"), "--bone", "atlas", "--scanner", "test",
                 "--out", str(tmp_path / "mu.h5")]) == 2
    assert "--bone atlas" in capsys.readouterr().err and not (tmp_path / "mu.h5").exists()


def test_mumap_command_with_bone_atlas_puts_bone_mu_at_the_vertebra(write_dicom_series, tmp_path):
    water, fat, _ = _dixon_body()
    first = [GRID.voxel_centres_mm(a)[0] for a in range(2)]
    positions = [(first[0], first[1], z) for z in GRID.voxel_centres_mm(2)]
    for name, image in (("water", water), ("fat", fat)):  # planes (slice, row = y, column = x), 1000 per unit
        planes = np.round(1000 * image.data.transpose(2, 1, 0))
        write_dicom_series(tmp_path / name, "MR", planes, positions, (1, 0, 0, 0, 1, 0), (3.0, 3.0))
    out = tmp_path / "mu.h5"
    assert main(["mumap", "--dixon", str(tmp_path / "water"), str(tmp_path / "fat"), "--bone", "atlas",
                 "--scanner", "test", "--out", str(out)]) == 0
    mu = read_container(out).volumes["mu_per_cm"]
    centre = [int(np.argmin(np.abs(mu.grid.voxel_centres_mm(a) - c))) for a, c in enumerate((*VERTEBRA_CENTRE_MM, 0))]
    # head-first supine: gantry x, y = patient L, P; the template's interior keeps its mu through resampling
    assert mu.data[tuple(centre)] == pytest.approx(vertebral_body_mu_per_cm(), rel=1e-4)
    assert mu.metadata["dixon_bone"] == "atlas"
