"""Phantom materials: attenuation at 511 keV, CT number and MR appearance.

The simulator's ground-truth mu-map comes from these materials, never from a
HU conversion (turning HU or Dixon classes into mu is the attenuation
module's job, and comparing it with this truth is the point).

Sources
-------
- Linear attenuation at 511 keV: mass attenuation coefficients from NIST XCOM
  (Berger et al., total with coherent scattering, interpolated to 511 keV:
  water 0.0960 cm^2/g, PMMA 0.0932, cortical bone (ICRU 44) 0.0895,
  borosilicate glass 0.0866, adipose 0.0976) times ICRU Report 44 densities
  (soft tissue 1.06, adipose 0.95, cortical bone 1.92, inflated lung 0.26,
  spongiosa 1.18 g/ml); PMMA 1.19 g/ml; borosilicate glass 2.23 g/ml; the
  NEMA lung insert's filling ~0.3 g/ml (reference/quantification.md).
  Water 0.096 and soft tissue 0.100 cm^-1 agree with the values of
  reference/quantification.md (Carney 2006; Martinez-Moeller 2009).
- CT numbers: typical values of the tissues (HU ~ 1000 (rho_e / rho_e,water - 1)).
- MR tissue class: the four Dixon classes of the Biograph mMR (air, lung,
  fat, soft tissue; reference/quantification.md) plus ``bone``, which the
  4-class Dixon map cannot see (it calls it soft tissue). Plastics and glass
  give no MR signal and are class ``air`` (as in a real Dixon scan).
- Dixon water/fat signals: proton-density fractions of water and fat
  (dimensionless, 0-1), a simple documented signal model, not a sequence
  simulation.
"""

from __future__ import annotations

from dataclasses import dataclass

from petrecon.errors import ParameterError

MR_CLASSES = ("air", "lung", "fat", "soft_tissue", "bone")
"""MR tissue classes a phantom region can carry."""


@dataclass(frozen=True)
class Material:
    """One phantom material.

    Attributes
    ----------
    name : str
        Key in :data:`MATERIALS`.
    mu_per_cm : float
        Linear attenuation coefficient at 511 keV (cm^-1).
    ct_hu : float
        Default CT number (HU); a region may override it.
    mr_class : str
        Default MR tissue class, one of :data:`MR_CLASSES`.
    dixon_water, dixon_fat : float
        Water and fat proton-density fractions (0-1).
    """

    name: str
    mu_per_cm: float
    ct_hu: float
    mr_class: str
    dixon_water: float
    dixon_fat: float


MATERIALS: dict[str, Material] = {
    m.name: m
    for m in (
        Material("air", 0.0, -1000.0, "air", 0.0, 0.0),
        Material("lung", 0.025, -740.0, "lung", 0.08, 0.0),           # ICRU 44 inflated lung 0.26 g/ml
        Material("lung_insert", 0.029, -700.0, "lung", 0.0, 0.0),     # NEMA insert, ~0.3 g/ml, no MR signal
        Material("adipose", 0.093, -100.0, "fat", 0.1, 0.9),          # ICRU 44 adipose 0.95 g/ml
        Material("water", 0.096, 0.0, "soft_tissue", 1.0, 0.0),
        Material("soft_tissue", 0.100, 40.0, "soft_tissue", 0.9, 0.1),  # ICRU 44 soft tissue 1.06 g/ml
        Material("spongiosa", 0.113, 300.0, "bone", 0.45, 0.45),      # ICRU 44 spongiosa 1.18 g/ml, marrow fat
        Material("cortical_bone", 0.172, 1300.0, "bone", 0.02, 0.02), # ICRU 44 cortical bone 1.92 g/ml
        Material("pmma", 0.111, 120.0, "air", 0.0, 0.0),              # PMMA 1.19 g/ml
        Material("glass", 0.193, 1500.0, "air", 0.0, 0.0),            # borosilicate 2.23 g/ml
    )
}


def get_material(name: str) -> Material:
    """Look up a material by name.

    Examples
    --------
    >>> get_material("water").mu_per_cm
    0.096
    """
    if name not in MATERIALS:
        raise ParameterError(f"unknown material {name!r}; known: {', '.join(MATERIALS)}")
    return MATERIALS[name]
