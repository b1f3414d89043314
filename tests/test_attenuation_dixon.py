"""Dixon MR attenuation: 4-class segmentation and the class mu values."""

from __future__ import annotations

import numpy as np
import pytest

from petrecon.attenuation import DIXON_MU_PER_CM, DixonClass, dixon_mu_map, segment_dixon
from petrecon.attenuation.dixon import water_fat_from_in_opposed
from petrecon.errors import GeometryError, ParameterError
from petrecon.volume import ImageGrid, Volume

GRID = ImageGrid.centred((80, 60, 12), (4.0, 4.0, 4.0))


def _torso() -> tuple[Volume, Volume, np.ndarray]:
    """Water/fat images of an elliptic torso: fat rim, soft tissue, two lungs, one tiny hole; true labels."""
    x, y, _ = np.meshgrid(*(GRID.voxel_centres_mm(a) for a in range(3)), indexing="ij")
    radius = np.hypot(x / 150.0, y / 110.0)
    truth = np.full(GRID.shape, DixonClass.AIR, np.uint8)
    truth[radius <= 1.0] = DixonClass.FAT
    truth[radius <= 0.85] = DixonClass.SOFT_TISSUE
    for side in (-1, 1):
        truth[np.hypot((x - side * 60) / 35.0, y / 50.0) <= 1.0] = DixonClass.LUNG
    hole = (np.abs(x - 2) < 4) & (np.abs(y - 62) < 4)  # one voxel per slice: a vessel, not a lung
    truth[hole & (truth == DixonClass.SOFT_TISSUE)] = DixonClass.SOFT_TISSUE
    water_of = {DixonClass.AIR: 0.0, DixonClass.LUNG: 0.02, DixonClass.FAT: 0.1, DixonClass.SOFT_TISSUE: 1.0}
    fat_of = {DixonClass.AIR: 0.0, DixonClass.LUNG: 0.0, DixonClass.FAT: 0.9, DixonClass.SOFT_TISSUE: 0.05}
    water = np.vectorize(water_of.get)(truth).astype(np.float32)
    fat = np.vectorize(fat_of.get)(truth).astype(np.float32)
    water[hole & (truth == DixonClass.SOFT_TISSUE)] = 0.0
    rng = np.random.default_rng(3)
    water += rng.uniform(0, 0.03, water.shape).astype(np.float32)  # background noise below the 10 % body threshold
    return Volume(water, GRID), Volume(fat, GRID), truth


def test_segmentation_recovers_every_class_of_a_synthetic_torso():
    water, fat, truth = _torso()
    labels = segment_dixon(water, fat).data
    np.testing.assert_array_equal(labels, truth)


def test_mu_map_uses_the_published_class_values_and_adds_hardware():
    water, fat, truth = _torso()
    hardware = np.zeros(GRID.shape, np.float32)
    hardware[:, 0, :] = 0.05
    mu = dixon_mu_map(segment_dixon(water, fat), hardware=Volume(hardware, GRID))
    for tissue, value in DIXON_MU_PER_CM.items():
        inside = (truth == tissue)
        inside[:, 0, :] = False
        assert np.allclose(mu.data[inside], value)
    np.testing.assert_allclose(mu.data[:, 0, :], 0.05 + np.vectorize(lambda c: DIXON_MU_PER_CM[DixonClass(c)])(
        truth[:, 0, :]), rtol=1e-6)


def test_in_and_opposed_phase_give_water_and_fat():
    water, fat = water_fat_from_in_opposed(np.array([1.0, 0.5]), np.array([0.8, 0.5]))
    np.testing.assert_allclose(water, [0.9, 0.5])
    np.testing.assert_allclose(fat, [0.1, 0.0])


def test_bad_inputs_are_refused():
    water, fat, _ = _torso()
    with pytest.raises(GeometryError):
        segment_dixon(water, Volume(fat.data[:-1], ImageGrid.centred((79, 60, 12), (4.0, 4.0, 4.0))))
    with pytest.raises(ParameterError, match="fat_fraction_threshold"):
        segment_dixon(water, fat, fat_fraction_threshold=1.5)
    with pytest.raises(ParameterError, match="no signal"):
        segment_dixon(Volume(np.zeros(GRID.shape), GRID), Volume(np.zeros(GRID.shape), GRID))


def _chest_with_a_nodule_and_a_sternum() -> tuple[Volume, Volume, dict[str, np.ndarray]]:
    """Water/fat images of a chest: two lungs, a 16 mm soft-tissue nodule inside the left one, a fat island
    inside the right one, and a sternum-like bar between the lungs whose marrow its cortex (no Dixon signal)
    cuts off from the rest of the body; the regions as masks. Taking the largest body component alone
    labels the nodule, the fat island and the whole bar lung."""
    grid = ImageGrid.centred((80, 60, 12), (4.0, 4.0, 4.0))
    x, y, z = np.meshgrid(*(grid.voxel_centres_mm(a) for a in range(3)), indexing="ij")
    body = np.hypot(x / 150.0, y / 110.0) <= 1.0
    lungs = [np.hypot((x - side * 70) / 45.0, y / 70.0) <= 1.0 for side in (-1, 1)]
    nodule = np.sqrt((x + 70) ** 2 + (y + 10) ** 2 + z ** 2) <= 8.0
    fat_island = np.sqrt((x - 70) ** 2 + (y - 20) ** 2 + z ** 2) <= 8.0
    cortex = (np.abs(x) <= 16) & (np.abs(y + 60) <= 8)  # 32 x 16 mm, every slice: 25 ml, as large as a lung
    marrow = (np.abs(x) <= 12) & (np.abs(y + 60) <= 4)  # inside a one-voxel cortical shell
    water = np.where(body, 1.0, 0.0).astype(np.float32)
    fat = np.where(body, 0.05, 0.0).astype(np.float32)
    for region, (w, f) in ((lungs[0] | lungs[1], (0.02, 0.0)), (nodule, (1.0, 0.05)), (fat_island, (0.1, 0.9)),
                           (cortex, (0.0, 0.0)), (marrow, (0.6, 0.3))):
        water[region], fat[region] = w, f
    water += np.random.default_rng(5).uniform(0, 0.03, water.shape).astype(np.float32)  # below the 10 % threshold
    regions = {"lung": (lungs[0] | lungs[1]) & ~nodule & ~fat_island, "nodule": nodule, "fat island": fat_island,
               "bar": cortex, "outside": ~body}
    return Volume(water, grid), Volume(fat, grid), regions


def test_tissue_inside_the_lungs_and_the_sternum_cut_off_by_its_cortex_keep_their_class():
    """Only outside air is air: a nodule, a fat island and a bar of bone and marrow between the lungs, none
    connected to the largest body component, keep their class (bone is soft tissue in the 4-class map)."""
    water, fat, regions = _chest_with_a_nodule_and_a_sternum()
    labels = segment_dixon(water, fat).data
    expected = {"lung": DixonClass.LUNG, "nodule": DixonClass.SOFT_TISSUE, "fat island": DixonClass.FAT,
                "bar": DixonClass.SOFT_TISSUE, "outside": DixonClass.AIR}
    for name, tissue in expected.items():  # exact: the regions are voxel-aligned, noise below the threshold
        assert np.all(labels[regions[name]] == tissue), name
