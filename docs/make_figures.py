"""Draw the figures of the README: ``python docs/make_figures.py`` writes docs/*.png."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from petrecon.geometry import default_layout
from petrecon.projectors.sinogram import SinogramProjector
from petrecon.volume import ImageGrid

POINT_MM = (45.0, -30.0)


def sinogram_convention(path: Path) -> None:
    """Segment-0 sinogram of an off-centre point source with the documented sinusoid on top."""
    layout = default_layout("test")
    grid = ImageGrid.centred(layout.scanner.default_image_shape, layout.scanner.default_voxel_size_mm)
    image = np.zeros(grid.shape, np.float32)
    i, j = (int(round((p - o) / v)) for p, o, v in zip(POINT_MM, grid.origin_mm, grid.voxel_size_mm))
    image[i, j, grid.shape[2] // 2] = 1.0
    x0, y0 = grid.voxel_centres_mm(0)[i], grid.voxel_centres_mm(1)[j]
    sinogram = SinogramProjector(layout, grid).forward(image)[: layout.segment_table[0]].sum(axis=0)
    phi = np.pi * np.arange(layout.n_views) / layout.n_views
    expected_bin = layout.n_radial_bins // 2 + (x0 * np.cos(phi) + y0 * np.sin(phi)) / layout.radial_bin_size_mm
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.imshow(sinogram, aspect="auto", cmap="gray_r", origin="upper")
    ax.plot(expected_bin, np.arange(layout.n_views), "r--", lw=1, label=r"$s = x_0\cos\varphi + y_0\sin\varphi$")
    ax.set(xlabel="radial bin (s increases to the right)", ylabel=r"view ($\varphi = \pi v / n_{views}$)",
           title=f"point source at (x, y) = ({x0:.1f}, {y0:.1f}) mm, test scanner")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    sinogram_convention(Path(__file__).with_name("sinogram-convention.png"))
