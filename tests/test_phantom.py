"""Declarative phantoms: shipped TOML files, parameters, validation errors, voxelisation."""

import numpy as np
import pytest

from petrecon.errors import FormatError, ParameterError
from petrecon.simulate.materials import MATERIALS
from petrecon.simulate.phantom import load_phantom, phantom_from_dict, shipped_phantoms
from petrecon.simulate.voxelise import IMAGE_NAMES, total_activity_bq, voxelise
from petrecon.volume import ImageGrid


def _sphere_doc(radius_mm=20.0, activity=1000.0):
    return {"regions": [{"activity": activity, "material": "water",
                         "shapes": [{"type": "sphere", "centre_mm": [0.0, 0.0, 0.0], "radius_mm": radius_mm}]}]}


def test_shipped_phantoms_load_with_their_documented_content():
    assert set(shipped_phantoms()) >= {"nema-iec", "uniform-cylinder", "pentixafor-torso"}
    nema = load_phantom("nema-iec")
    spheres = {r.name: r for r in nema.regions if r.name.startswith("sphere_")}
    radii = sorted(2 * r.parts[0][0].half_extent_mm[0] for r in spheres.values())
    assert radii == [10, 13, 17, 22, 28, 37]
    background = next(r for r in nema.regions if r.name == "background").activity
    assert all(r.activity == pytest.approx(4 * background) for r in spheres.values())
    centres = np.array([r.parts[0][0].centre_mm for r in spheres.values()])
    np.testing.assert_allclose(np.hypot(centres[:, 0], centres[:, 1]), 114.4 / 2, atol=1e-3)
    torso = {r.name: r for r in load_phantom("pentixafor-torso").regions}
    assert (torso["liver"].activity, torso["spleen"].activity, torso["vertebral_marrow"].activity) == (3.1, 5.6, 3.7)
    lesions = [r for name, r in torso.items() if name.startswith("lesion_")]
    assert {"lung", "liver", "bone", "soft"} <= {r.name.split("_")[1] for r in lesions}
    assert all(2.0 <= r.activity <= 14.0 and 10 <= 2 * r.parts[0][0].half_extent_mm[0] <= 30 for r in lesions)


def test_nema_ratio_and_glass_walls_are_parameters():
    ten = load_phantom("nema-iec", {"ratio": 10, "glass_walls": False})
    assert next(r for r in ten.regions if r.name == "sphere_37").activity == pytest.approx(53000.0)
    assert not any(r.name.startswith("glass_") for r in ten.regions)
    assert sum(r.name.startswith("glass_") for r in load_phantom("nema-iec").regions) == 6
    with pytest.raises(ParameterError, match="one of"):
        load_phantom("nema-iec", {"ratio": 6})
    with pytest.raises(ParameterError, match="no parameter"):
        load_phantom("nema-iec", {"contrast": 4})


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d["regions"][0]["shapes"][0].update(radius_mm=-1.0), "regions[0].shapes[0].radius_mm"),
    (lambda d: d["regions"][0]["shapes"][0].update(type="torus"), "regions[0].shapes[0].type"),
    (lambda d: d["regions"][0].update(material="unobtainium"), "regions[0].material"),
    (lambda d: d["regions"][0].update(activity="missing_parameter"), "regions[0].activity"),
    (lambda d: d["regions"][0].update(mr_class="muscle"), "regions[0].mr_class"),
    (lambda d: d.update(activity_unit="SUV"), "weight_kg"),
])
def test_malformed_phantoms_name_the_field(mutate, field):
    document = _sphere_doc()
    mutate(document)
    with pytest.raises(FormatError, match=field.replace("[", r"\[").replace("]", r"\]")):
        phantom_from_dict(document, source="bad.toml")


def test_invalid_toml_file_is_a_format_error(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("regions = [ {")
    with pytest.raises(FormatError, match="broken.toml"):
        load_phantom(path)


def test_voxelisation_conserves_a_sphere_volume_and_is_partial_volume():
    phantom = phantom_from_dict(_sphere_doc(radius_mm=20.0, activity=1.0))
    grid = ImageGrid.centred((24, 24, 24), (2.0, 2.0, 2.0))
    images = voxelise(phantom, grid, supersampling=5)
    assert set(images) == set(IMAGE_NAMES)
    volume_ml = images["activity_bq_per_ml"].data.sum() * grid.voxel_volume_ml
    # 5^3 sub-samples per 2 mm voxel: the surface error of a 20 mm sphere is well below 1 %.
    assert volume_ml == pytest.approx(4 / 3 * np.pi * 20.0**3 / 1000.0, rel=0.01)
    activity = images["activity_bq_per_ml"].data
    partial = (activity > 0.05) & (activity < 0.95)
    assert partial.sum() > 500  # a whole shell of boundary voxels has fractional values
    assert images["mu_per_cm"].data.max() == pytest.approx(MATERIALS["water"].mu_per_cm)
    assert images["ct_hu"].data[0, 0, 0] == -1000.0 and images["ct_hu"].data[12, 12, 12] == 0.0


def test_later_regions_override_earlier_ones_in_images_and_totals():
    document = _sphere_doc(radius_mm=40.0, activity=1000.0)
    document["regions"].append({"activity": 0.0, "material": "cortical_bone", "ct_hu": 1234.0, "shapes": [
        {"type": "box", "centre_mm": [0.0, 0.0, 0.0], "size_mm": [20.0, 20.0, 20.0]}]})
    phantom = phantom_from_dict(document)
    expected_ml = 4 / 3 * np.pi * 40.0**3 / 1000.0 - 8.0
    # 1 mm sub-sample spacing integrates a 40 mm sphere to ~0.1 %.
    assert total_activity_bq(phantom) == pytest.approx(1000.0 * expected_ml, rel=0.003)
    images = voxelise(phantom, ImageGrid.centred((5, 5, 5), (4.0, 4.0, 4.0)))
    assert images["ct_hu"].data[2, 2, 2] == 1234.0 and images["activity_bq_per_ml"].data[2, 2, 2] == 0.0
    assert images["dixon_water"].data[2, 2, 2] == MATERIALS["cortical_bone"].dixon_water


def test_torso_dixon_images_separate_fat_and_water():
    phantom = load_phantom("pentixafor-torso")
    grid = ImageGrid.centred((51, 1, 1), (8.0, 8.0, 8.0))  # x = -200 .. 200 mm along y = z = 0
    images = voxelise(phantom, grid, supersampling=1)
    x = grid.voxel_centres_mm(0)
    fat, water = images["dixon_fat"].data[:, 0, 0], images["dixon_water"].data[:, 0, 0]
    assert fat[np.abs(x) > 180].max() == 0.0  # outside the 360 mm wide body
    assert fat[x == -176.0][0] == MATERIALS["adipose"].dixon_fat  # the 15 mm subcutaneous fat layer
    assert water[x == -160.0][0] == MATERIALS["soft_tissue"].dixon_water


def test_voxel_values_equal_the_mean_over_sub_samples_painted_in_region_order():
    """The voxeliser (which skips sampling in voxels inside one region) against a plain numpy painter."""
    phantom = load_phantom("nema-iec")
    grid = ImageGrid((40, 30, 12), (8.0, 8.0, 6.0), (-156.0, -84.0, -33.0))
    n_sub = 3
    images = voxelise(phantom, grid, supersampling=n_sub)
    offsets = (np.arange(n_sub) + 0.5) / n_sub - 0.5
    axes = [(grid.voxel_centres_mm(a)[:, None] + offsets * grid.voxel_size_mm[a]).ravel() for a in range(3)]
    points = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
    ct = np.full(points.shape[:3], -1000.0)
    for region in phantom.regions:
        inside = np.zeros(points.shape[:3], bool)
        for part in region.parts:
            inside |= np.logical_and.reduce([solid.contains(points) for solid in part])
        ct[inside] = region.ct_hu
    shape = [n for size in grid.shape for n in (size, n_sub)]
    expected = ct.reshape(shape).mean(axis=(1, 3, 5))
    np.testing.assert_allclose(images["ct_hu"].data, expected, atol=1e-3)
    assert np.count_nonzero((expected > -1000) & (expected < 1500) & (expected % 1 != 0)) > 100  # partial voxels


def test_a_posed_phantom_is_the_same_phantom_moved_rigidly():
    from petrecon.simulate.phantom import Pose
    from petrecon.simulate.raytrace import line_integrals

    doc = {"regions": [{"activity": 1.0, "shapes": [
        {"type": "box", "centre_mm": [10.0, 0.0, 0.0], "size_mm": [20.0, 8.0, 40.0]}]}],
        "pose": {"rotation_deg": [0.0, 90.0, 0.0]}}
    pose = Pose((3.0, 40.0, -25.0), (12.0, -7.0, 5.0))
    posed = load_phantom("nema-iec", pose=pose)
    # chords through the posed phantom equal those through the unposed one along the mapped segment:
    # rigid motions keep lengths (to float64 rounding)
    rng = np.random.default_rng(1)
    start, end = rng.uniform(-200, 200, (50, 3)), rng.uniform(-200, 200, (50, 3))
    values = posed.region_values("activity")[:, None]
    unposed = load_phantom("nema-iec")
    assert np.allclose(line_integrals(pose.to_scanner(start), pose.to_scanner(end), posed.packed(), values),
                       line_integrals(start, end, unposed.packed(), values), rtol=1e-12, atol=1e-9)
    # the TOML [pose] turns the box (long along z) about y: in the scanner it is long along x, centred at z = -10
    turned = phantom_from_dict(doc)
    low, high = turned.bounding_box_mm()
    assert np.allclose(low, [-20.0, -4.0, -20.0]) and np.allclose(high, [20.0, 4.0, 0.0])
    grid = ImageGrid.centred((24, 6, 24), (2.0, 2.0, 2.0))
    image = voxelise(turned, grid, supersampling=2)["activity_bq_per_ml"].data
    # 40 x 8 x 20 mm = 6.4 ml, the box faces on voxel faces: exact
    assert image.sum() * grid.voxel_volume_ml == pytest.approx(6.4, rel=1e-6)
    assert phantom_from_dict(_sphere_doc()).pose == Pose()
    with pytest.raises(FormatError, match="pose"):
        phantom_from_dict(doc | {"pose": {"tilt": 5}})
