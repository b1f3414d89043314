"""Image-based EARL harmonisation: one extra Gaussian filter applied to reconstructed images.

Retrospective cohorts rarely keep raw data, so harmonisation is often done on
the images: the site's NEMA IEC phantom, reconstructed with its clinical
protocol, is smoothed with Gaussians of increasing FWHM until every sphere's
recovery lies in the EARL bands, and the patient images are smoothed with the
same kernel (EARL practice for PSF reconstructions: Kaalep et al., EJNMMI
45:1344, 2018; reference/quantification.md). The file records the filter and
what it was found for::

    name = "earl1"                    # the protocol column of quantification tables
    standard = "earl1"                # earl1 or earl2
    fwhm_mm = 4.5                     # extra 3D Gaussian on the reconstructed image
    scanner = "b64"                   # optional: the scanner the filter was found for
    isotope = "F18"                   # optional: the phantom's isotope
    source = "nema_b64/"              # optional: the phantom image or simulation it was found on

Unknown keys are errors (a misspelt key must not fall back to a default).
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from petrecon.checks import check_parameter
from petrecon.errors import FormatError, ParameterError, PetreconError
from petrecon.io.atomic import atomic_output
from petrecon.operators import gaussian_post_filter
from petrecon.quant.earl import EARL_BANDS
from petrecon.volume import Volume

_KEYS = ("name", "standard", "fwhm_mm", "scanner", "isotope", "source")


@dataclass(frozen=True)
class ImageHarmonisation:
    """An extra Gaussian filter that puts a scanner's images in an EARL standard's bands.

    Examples
    --------
    >>> import numpy as np
    >>> from petrecon.volume import ImageGrid
    >>> filt = ImageHarmonisation(fwhm_mm=6.0, scanner="b64")
    >>> ImageHarmonisation.from_toml(filt.to_toml()) == filt
    True
    >>> grid = ImageGrid.centred((15, 15, 15), (2.0, 2.0, 2.0))
    >>> point = np.zeros(grid.shape, np.float32); point[7, 7, 7] = 1.0
    >>> smoothed = filt.apply(Volume(point, grid))
    >>> round(float(smoothed.data.sum()), 4), smoothed.metadata["image_harmonisation"]["fwhm_mm"]
    (1.0, 6.0)
    """

    name: str = "earl1"
    standard: str = "earl1"
    fwhm_mm: float = 0.0
    scanner: str | None = None
    isotope: str | None = None
    source: str | None = None

    def __post_init__(self) -> None:
        if self.standard not in EARL_BANDS:
            raise ParameterError(f"standard must be one of {', '.join(EARL_BANDS)}, got {self.standard!r}")
        check_parameter("fwhm_mm", self.fwhm_mm, label="image harmonisation fwhm_mm")
        object.__setattr__(self, "fwhm_mm", float(self.fwhm_mm))

    def apply(self, volume: Volume) -> Volume:
        """``volume`` smoothed by the filter (edge planes replicated, as the post-filter); metadata records it."""
        data = gaussian_post_filter(volume.data, self.fwhm_mm, volume.grid.voxel_size_mm)
        return Volume(data, volume.grid, {**volume.metadata, "image_harmonisation": dataclasses.asdict(self)})

    @classmethod
    def from_toml(cls, text: str, source: str = "<image harmonisation>") -> "ImageHarmonisation":
        """Parse a file's text; ``source`` names it in errors."""
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise FormatError(source, "TOML", str(error)) from None
        unknown = sorted(set(document) - set(_KEYS))
        if unknown:
            raise FormatError(source, unknown[0], f"unknown key; known: {', '.join(_KEYS)}")
        if "fwhm_mm" not in document:
            raise FormatError(source, "fwhm_mm", "is missing (the extra Gaussian FWHM in mm)")
        try:
            return cls(**{key: document[key] for key in _KEYS if key in document})
        except (PetreconError, TypeError) as error:
            raise FormatError(source, "value", str(error)) from None

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ImageHarmonisation":
        """Read an image harmonisation file."""
        path = Path(path)
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise FormatError(path, "file", "does not exist") from None
        except (OSError, UnicodeDecodeError) as error:
            raise FormatError(path, "file", f"cannot be read ({error})") from None
        return cls.from_toml(text, str(path))

    def to_toml(self) -> str:
        """The file's text (only the keys that are set)."""
        lines = []
        for key, value in dataclasses.asdict(self).items():
            if value is not None:
                lines.append(f"{key} = {value!r}" if isinstance(value, float) else f"{key} = {json.dumps(str(value))}")
        return "\n".join(lines) + "\n"

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the file atomically."""
        with atomic_output(path, overwrite=overwrite) as temporary:
            temporary.write_text(self.to_toml())
        return Path(path)
