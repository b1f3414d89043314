"""Draw docs/simulation-phantoms.png: ground truth of the shipped phantoms (python docs/make_simulation_figure.py)."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from petrecon.simulate import load_phantom, voxelise  # noqa: E402
from petrecon.volume import ImageGrid  # noqa: E402


def main() -> None:
    grid = ImageGrid.centred((180, 150, 210), (2.0, 2.0, 2.0))
    fig, axes = plt.subplots(2, 4, figsize=(17, 8))
    nema = load_phantom("nema-iec", {"ratio": 10})
    images = voxelise(nema, grid)
    k = int(round(-grid.origin_mm[2] / 2.0))  # z = 0: the sphere plane
    extent = [grid.origin_mm[0] - 1, -grid.origin_mm[0] + 1, grid.origin_mm[1] - 1, -grid.origin_mm[1] + 1]
    panels = [("activity_bq_per_ml", "NEMA IEC 10:1, activity (Bq/ml)", "hot"), ("mu_per_cm", "mu at 511 keV (1/cm)", "gray"),
              ("ct_hu", "CT (HU)", "gray"), ("dixon_water", "Dixon water", "gray")]
    for ax, (name, title, cmap) in zip(axes[0], panels):
        shown = ax.imshow(images[name].data[:, :, k].T, origin="lower", extent=extent, cmap=cmap)
        ax.set(title=f"{title}, z = 0", xlabel="x (mm)", ylabel="y (mm)")
        fig.colorbar(shown, ax=ax, fraction=0.04)
    torso = load_phantom("pentixafor-torso")
    images = voxelise(torso, grid, activity_bq_per_ml=torso.region_values("activity"))  # in SUV
    j = int(round((60.0 - grid.origin_mm[1]) / 2.0))  # coronal plane y = 60 mm (kidneys, spine)
    k = int(round((0.0 - grid.origin_mm[2]) / 2.0))
    coronal = [grid.origin_mm[0] - 1, -grid.origin_mm[0] + 1, grid.origin_mm[2] - 1, -grid.origin_mm[2] + 1]
    panels = [(images["activity_bq_per_ml"].data[:, :, k].T, extent, "68Ga-pentixafor torso, SUV, z = 0", "hot", 8),
              (images["activity_bq_per_ml"].data[:, j, :].T, coronal, "SUV, coronal y = 60 mm", "hot", 15),
              (images["ct_hu"].data[:, :, k].T, extent, "CT (HU), z = 0", "gray", None),
              (images["dixon_fat"].data[:, :, k].T, extent, "Dixon fat, z = 0", "gray", None)]
    for ax, (data, ext, title, cmap, vmax) in zip(axes[1], panels):
        shown = ax.imshow(data, origin="lower", extent=ext, cmap=cmap, vmax=vmax)
        ax.set(title=title, xlabel="x (mm)", ylabel="z (mm)" if "coronal" in title else "y (mm)")
        fig.colorbar(shown, ax=ax, fraction=0.04)
    fig.tight_layout()
    fig.savefig(Path(__file__).with_name("simulation-phantoms.png"), dpi=70)


if __name__ == "__main__":
    main()
