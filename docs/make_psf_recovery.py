"""Write docs/psf-recovery.md and docs/psf-recovery.png: NEMA recovery with and without resolution modelling.

One noise-free simulation of the NEMA IEC phantom (10:1, EARL; 1 mm glass walls; no scatter or randoms) on
an axially short Biograph mMR (28 rings, 200 radial bins, views mashed by 2, 160 x 160 x 55 voxels of
2.09 x 2.09 x 2.03 mm: the ``short_biograph`` geometry of the tests), reconstructed twice by AW-OSEM
4 x 8 + 5 mm: without PSF, and with an image-space Gaussian PSF of the simulated system FWHM
(``psf_fwhm_mm``). Run from the repository root: ``python docs/make_psf_recovery.py`` (about 2 min on 2
cores).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from petrecon.geometry import SinogramLayout, get_scanner  # noqa: E402
from petrecon.quant.nema import analyse_nema, find_phantom  # noqa: E402
from petrecon.recon import ReconstructionProtocol  # noqa: E402
from petrecon.recon.protocol import CorrectionSettings  # noqa: E402
from petrecon.recon.study import reconstruct_study  # noqa: E402
from petrecon.simulate.acquisition import simulate_study  # noqa: E402
from petrecon.volume import ImageGrid  # noqa: E402

RATIO = 10.0
PROFILE_SPHERES_MM = (37.0, 17.0, 10.0)
HERE = Path(__file__).resolve().parent
HEADER = """# NEMA recovery with and without PSF (resolution modelling)

One noise-free simulation of the NEMA IEC phantom (10:1, 1 mm glass walls, no scatter or randoms) on a 28-ring
Biograph mMR (the tests' `short_biograph` geometry), reconstructed by AW-OSEM 4 x 8 + 5 mm without PSF and with
an image-space Gaussian PSF of the simulated system FWHM. Regenerate with `python docs/make_psf_recovery.py`.
"""


def short_mmr() -> tuple[SinogramLayout, ImageGrid]:
    base = get_scanner("mmr")
    scanner = dataclasses.replace(base, n_rings=28, virtual_ring_positions=())
    grid = ImageGrid.centred((160, 160, 55), (*base.default_voxel_size_mm[:2], scanner.ring_spacing_mm / 2))
    return SinogramLayout(scanner, 11, 27, 200, 2), grid


def profile(volume, centre_mm: np.ndarray, direction: np.ndarray, half_length_mm: float) -> tuple[np.ndarray, ...]:
    """Values along a line through ``centre_mm`` (trilinear), at 0.5 mm steps."""
    from scipy import ndimage

    t = np.arange(-half_length_mm, half_length_mm + 0.25, 0.5)
    points = centre_mm[None, :] + t[:, None] * direction[None, :]
    index = (points - np.array(volume.grid.origin_mm)) / np.array(volume.grid.voxel_size_mm)
    return t, ndimage.map_coordinates(np.asarray(volume.data, float), index.T, order=1)


def main() -> None:
    layout, grid = short_mmr()
    study = simulate_study("nema-iec", scanner=layout, parameters={"ratio": RATIO}, noise=False, scatter=False,
                           randoms=False, grid=grid, progress=True).container
    fwhm_mm = study.attributes["system_fwhm_mm"]
    base = ReconstructionProtocol(image_shape=grid.shape, voxel_size_mm=grid.voxel_size_mm,
                                  corrections=CorrectionSettings(scatter=False, randoms=False))
    volumes = {psf: reconstruct_study(study, dataclasses.replace(base, psf_fwhm_mm=psf)).volume
               for psf in (0.0, fwhm_mm)}
    geometry = find_phantom(volumes[0.0])
    results = {psf: analyse_nema(volume, activity_ratio=RATIO, geometry=geometry) for psf, volume in volumes.items()}
    lines = ["| sphere (mm) | RC max | RC max, PSF | RC A50 mean | RC A50 mean, PSF | Q_H (%) | Q_H, PSF (%) |",
             "|---|---|---|---|---|---|---|"]
    for plain, psf in zip(results[0.0].spheres, results[fwhm_mm].spheres):
        lines.append(f"| {plain.diameter_mm:g} | {plain.rc_max:.3f} | {psf.rc_max:.3f} | {plain.rc_mean_a50:.3f} | "
                     f"{psf.rc_mean_a50:.3f} | {plain.contrast_percent:.1f} | {psf.contrast_percent:.1f} |")
    table = "\n".join(lines)
    truth = study.volumes["activity_bq_per_ml"]
    sphere_value = RATIO * results[0.0].background_mean
    figure, axes = plt.subplots(1, len(PROFILE_SPHERES_MM), figsize=(12, 3.6), sharey=True)
    for ax, diameter in zip(axes, PROFILE_SPHERES_MM):
        centre = geometry.sphere_centres_mm[diameter]
        radial = (centre - geometry.circle_centre_mm) / np.linalg.norm(centre - geometry.circle_centre_mm)
        half = diameter / 2.0 + 15.0
        for label, volume, style in (("truth", truth, "k:"), ("no PSF", volumes[0.0], "C0-"),
                                     (f"PSF {fwhm_mm:.1f} mm", volumes[fwhm_mm], "C3-")):
            t, values = profile(volume, centre, radial, half)
            ax.plot(t, values / sphere_value, style, label=label)
        ax.axhline(1.0, color="0.7", lw=0.8)
        ax.set_title(f"{diameter:g} mm sphere")
        ax.set_xlabel("mm from the sphere centre (radial)")
    axes[0].set_ylabel("value / true sphere concentration")
    axes[0].legend(loc="upper left", fontsize=8)
    figure.suptitle("IEC phantom 10:1, noise-free, AW-OSEM 4 x 8 + 5 mm: edge overshoot with PSF")
    figure.tight_layout()
    figure.savefig(HERE / "psf-recovery.png", dpi=110)
    text = (f"{HEADER}\nSimulated system FWHM (PSF used): {fwhm_mm:.2f} mm. Background mean "
            f"{results[0.0].background_mean:.0f} / {results[fwhm_mm].background_mean:.0f} Bq/ml (true 5300).\n\n"
            f"{table}\n\n![profiles](psf-recovery.png)\n")
    (HERE / "psf-recovery.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
