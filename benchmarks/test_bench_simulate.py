"""Speed of the analytic simulator on the Biograph mMR (span 11, 72.6 M LORs) with the pentixafor torso.

Run: ``python -m pytest benchmarks/test_bench_simulate.py --benchmark-only``. Each
benchmark runs once; results go into benchmarks/RESULTS.md.
"""

import numpy as np
import pytest

from petrecon.geometry import default_layout
from petrecon.simulate.acquisition import region_concentrations_bq_per_ml, simulate_study
from petrecon.simulate.detection import crystal_efficiencies, normalisation_sinogram, span1_map
from petrecon.simulate.phantom import load_phantom
from petrecon.simulate.projection import project_phantom
from petrecon.simulate.voxelise import voxelise
from petrecon.volume import ImageGrid


@pytest.fixture(scope="module")
def torso():
    layout = default_layout("mmr")
    phantom = load_phantom("pentixafor-torso")
    concentration, _ = region_concentrations_bq_per_ml(phantom, 200e6)
    return layout, phantom, concentration


def test_project_torso_full_mmr_span11(benchmark, torso):
    layout, phantom, concentration = torso
    values = np.stack([concentration, np.ones_like(concentration)], axis=1)
    benchmark.pedantic(project_phantom, args=(layout, phantom.packed(), values), rounds=1, iterations=1)
    benchmark.extra_info["mlors_per_s"] = round(np.prod(layout.shape) / benchmark.stats.stats.min / 1e6, 3)


def test_voxelise_torso_mmr_grid_supersampling_3(benchmark, torso):
    layout, phantom, concentration = torso
    grid = ImageGrid.centred(layout.scanner.default_image_shape, layout.scanner.default_voxel_size_mm)
    benchmark.pedantic(voxelise, args=(phantom, grid), kwargs={"activity_bq_per_ml": concentration},
                       rounds=1, iterations=1)


def test_normalisation_from_span1_pairs_mmr(benchmark, torso):
    layout = torso[0]
    efficiencies = crystal_efficiencies(layout.scanner, np.random.default_rng(0))
    mapping = span1_map(layout)
    benchmark.pedantic(normalisation_sinogram, args=(layout, efficiencies, mapping), rounds=1, iterations=1)


@pytest.mark.parametrize("listmode", [False, True], ids=["sinograms", "with-listmode"])
def test_whole_study_mmr_ga68_200mbq_180s(benchmark, listmode):
    study = benchmark.pedantic(simulate_study, args=("pentixafor-torso",),
                               kwargs={"scanner": "mmr", "isotope": "Ga68", "injected_activity_bq": 200e6,
                                       "duration_s": 180.0, "listmode": listmode, "progress": False},
                               rounds=1, iterations=1)
    benchmark.extra_info["prompts"] = study.container.attributes["counts"]["prompts"]
    if listmode:
        benchmark.extra_info["listmode_words"] = int(study.listmode_words.size)


def test_mmr_uniform_cylinder_calibration_of_the_chain(benchmark):
    """The calibration check at full scale: simulate the noise-free cylinder on the mMR (span 11), AW-OSEM 4 x 8.

    Records the reconstructed / true Bq/ml in the central region (r < 50 mm, |z| < 20 mm) in ``extra_info``.
    """
    from petrecon.projectors.sinogram import SinogramProjector
    from petrecon.recon import OsemProtocol, osem
    from petrecon.simulate.acquisition import additive_sinogram, multiplicative_sinogram

    layout = default_layout("mmr")
    grid = ImageGrid.centred(layout.scanner.default_image_shape, layout.scanner.default_voxel_size_mm)
    study = simulate_study("uniform-cylinder", scanner="mmr", noise=False, grid=grid, progress=False).container

    def reconstruct():
        return osem(study.sinograms["prompts"], SinogramProjector(layout, grid),
                    multiplicative=multiplicative_sinogram(study), additive=additive_sinogram(study),
                    protocol=OsemProtocol(4, 8, 5.0))

    image = benchmark.pedantic(reconstruct, rounds=1, iterations=1)
    x, y, z = np.meshgrid(*[grid.voxel_centres_mm(a) for a in range(3)], indexing="ij")
    central = (np.hypot(x, y) < 50.0) & (np.abs(z) < 20.0)
    truth = study.volumes["activity_bq_per_ml"].data
    benchmark.extra_info["recon_over_truth"] = round(float(image[central].mean() / truth[central].mean()), 5)
    benchmark.extra_info["central_cv"] = round(float(image[central].std() / image[central].mean()), 5)
