"""Dead time: live fractions from measured singles rates, and their effect on coincidence bins.

Counter models (Knoll, *Radiation Detection and Measurement*, 4th ed., ch. 4):
a detector with dead time ``tau`` that sees ``n`` events/s records

- non-paralysable: ``m = n / (1 + n tau)``, so ``n = m / (1 - m tau)``;
- paralysable: ``m = n exp(-n tau)``, so ``n = -W0(-m tau) / tau`` (principal
  branch of Lambert's W; defined up to the rate maximum ``m tau = 1/e``).

The live fraction of a detector unit (a block or a Siemens "bucket") is
``m / n``; a coincidence between crystals ``k`` and ``l`` survives with
``L_k L_l``, so a sinogram bin's dead-time factor is the mean of ``L_k L_l``
over its crystal pairs. The scanner's ``tau`` per unit is a calibration
constant of the scanner (not in petrecon's registry: it must be given).

From singles to bins (:func:`deadtime_factors`): the measured singles rate of
each bucket (a Siemens list-mode stream carries one per bucket,
reference/formats.md; the container attribute ``bucket_singles_per_s``) gives
the bucket's live fraction; every crystal of the bucket shares it
(:func:`crystal_live_fraction`); the bins take the mean pair product
(:func:`pair_live_fraction`). A bucket is a rectangle of
:class:`BucketLayout` ``blocks_transaxial`` x ``rings`` crystals, numbered
ring-block-major (bucket ``b`` = axial group x buckets per ring + transaxial
group, crystal 0 in bucket 0). Reference/scanners.md documents the blocks
(mMR 56 transaxial blocks of 8 + 1 gap crystals, 8 rings of 8-ring blocks) but
not how Siemens groups them into buckets: the default, one bucket per block
(``blocks_transaxial = 1``, ``rings`` = the block's rings given by the caller),
is unverified; pass the scanner's grouping when known.
"""

from __future__ import annotations

import numpy as np
from dataclasses import dataclass

from scipy.special import lambertw

from petrecon.errors import ParameterError
from petrecon.geometry import ScannerGeometry, SinogramLayout
from petrecon.recon.corrections.crystal_pairs import CrystalPairModel

MODELS = ("non-paralysable", "paralysable")


def live_fraction(measured_per_s, dead_time_s: float, model: str = "non-paralysable") -> np.ndarray:
    """Fraction of the true events a counter records, from its *measured* rate.

    Examples
    --------
    >>> float(live_fraction(5e5, 1e-6))  # non-paralysable: 1 - m tau
    0.5
    >>> round(float(live_fraction(1e5, 1e-6, "paralysable")), 6)
    0.894194
    """
    if model not in MODELS:
        raise ParameterError(f"dead-time model must be one of {MODELS}, got {model!r}")
    if not dead_time_s >= 0:
        raise ParameterError(f"dead_time_s must be >= 0, got {dead_time_s}")
    measured = np.asarray(measured_per_s, dtype=np.float64)
    load = measured * dead_time_s
    if measured.size and measured.min() < 0:
        raise ParameterError("measured rates must be >= 0")
    if model == "non-paralysable":
        if load.size and load.max() >= 1:
            raise ParameterError(f"a non-paralysable counter cannot record {measured.max():.4g} /s with "
                                 f"tau = {dead_time_s} s (m tau >= 1)")
        return 1.0 - load
    if load.size and load.max() > np.exp(-1):
        raise ParameterError(f"a paralysable counter records at most 1/(e tau) = {np.exp(-1) / dead_time_s:.4g} /s; "
                             f"got {measured.max():.4g} /s")
    true_load = -lambertw(-load, 0).real
    return np.divide(load, true_load, out=np.ones_like(load), where=true_load > 0)


def pair_live_fraction(layout: SinogramLayout, crystal_live_fraction: np.ndarray) -> np.ndarray:
    """Dead-time factor of every bin: the mean of ``L_k L_l`` over its crystal pairs (multiplies the projection).

    Parameters
    ----------
    layout : SinogramLayout
        Non-TOF layout.
    crystal_live_fraction : numpy.ndarray
        ``(n_rings, n_crystals_per_ring)`` live fraction of each crystal's unit.
    """
    model = CrystalPairModel(layout)
    ones = np.ones(model.crystal_shape, np.float32)
    pairs = model.expand(ones, ones)
    live = model.expand(crystal_live_fraction, crystal_live_fraction)
    return np.divide(live, pairs, out=np.ones_like(live), where=pairs > 0)


@dataclass(frozen=True)
class BucketLayout:
    """How crystals are grouped into the units whose singles are counted (module docstring).

    Attributes
    ----------
    blocks_transaxial : int
        Transaxial blocks per bucket (a block: ``crystals_per_block`` crystals, gap included).
    rings : int
        Rings per bucket.

    Examples
    --------
    >>> from petrecon.geometry import get_scanner
    >>> BucketLayout(2, 4).n_buckets(get_scanner("test"))  # 14 blocks of 8 crystals, 8 rings
    14
    """

    blocks_transaxial: int = 1
    rings: int = 1

    def _check(self, scanner: ScannerGeometry) -> None:
        per_ring = scanner.n_crystals_per_ring // scanner.crystals_per_block
        if (self.blocks_transaxial < 1 or self.rings < 1 or per_ring % self.blocks_transaxial
                or scanner.n_rings % self.rings):
            raise ParameterError(f"buckets of {self.blocks_transaxial} blocks x {self.rings} rings do not tile "
                                 f"{per_ring} blocks x {scanner.n_rings} rings of {scanner.name}")

    def n_buckets(self, scanner: ScannerGeometry) -> int:
        """Number of buckets of ``scanner``."""
        self._check(scanner)
        per_ring = scanner.n_crystals_per_ring // (scanner.crystals_per_block * self.blocks_transaxial)
        return per_ring * scanner.n_rings // self.rings

    def bucket_of_crystal(self, scanner: ScannerGeometry) -> np.ndarray:
        """Bucket index of every crystal, int64 ``(n_rings, n_crystals_per_ring)``."""
        self._check(scanner)
        per_ring = scanner.n_crystals_per_ring // (scanner.crystals_per_block * self.blocks_transaxial)
        transaxial = np.arange(scanner.n_crystals_per_ring) // (scanner.crystals_per_block * self.blocks_transaxial)
        axial = np.arange(scanner.n_rings) // self.rings
        return (axial[:, None] * per_ring + transaxial[None, :]).astype(np.int64)


def crystal_live_fraction(scanner: ScannerGeometry, bucket_singles_per_s, dead_time_s: float,
                          model: str = "non-paralysable", buckets: BucketLayout = BucketLayout()) -> np.ndarray:
    """Live fraction of every crystal ``(n_rings, n_crystals_per_ring)``: its bucket's, from the measured singles.

    Examples
    --------
    >>> from petrecon.geometry import get_scanner
    >>> live = crystal_live_fraction(get_scanner("test"), np.full(14, 1e5), 1e-6, buckets=BucketLayout(2, 4))
    >>> live.shape, float(live.min())
    ((8, 112), 0.9)
    """
    rates = np.asarray(bucket_singles_per_s, np.float64).ravel()
    expected = buckets.n_buckets(scanner)
    if rates.size != expected:
        raise ParameterError(f"{rates.size} bucket singles rates given; {scanner.name} has {expected} buckets of "
                             f"{buckets.blocks_transaxial} blocks x {buckets.rings} rings")
    return live_fraction(rates, dead_time_s, model)[buckets.bucket_of_crystal(scanner)]


def deadtime_factors(layout: SinogramLayout, bucket_singles_per_s, dead_time_s: float,
                     model: str = "non-paralysable", buckets: BucketLayout = BucketLayout()) -> np.ndarray:
    """Dead-time factor of every bin (float32, the layout's shape) from the buckets' measured singles rates.

    It multiplies the system model like the normalisation (the ``deadtime_factors``
    sinogram of a study container, :func:`petrecon.recon.study.reconstruct_study`).
    """
    live = crystal_live_fraction(layout.scanner, bucket_singles_per_s, dead_time_s, model, buckets)
    return pair_live_fraction(layout, live.astype(np.float32))
