"""Simulated 68Ga-pentixafor patients of a PET/CT + PET/MR cohort: who they are, where their VOIs and lesions lie.

Each patient is the shipped ``pentixafor-torso`` phantom (reference/clinical-protocol.md)
with the patient's own weight, injected activity, uptake time, organ uptake
and lesion set, drawn from one seeded generator (same seed, same cohort):

- organ SUVs (at injection, as the phantom defines them) uniform within
  +-20 % of the study means (liver 3.1, spleen 5.6, bone marrow 3.7; the
  study's ranges are wider: 1.5-4.1, 2.5-10.5, 1.52-6.2);
- lesions from :data:`LESION_CATALOGUE` (the study's lung, liver, bone and
  soft-tissue lesions of 12-25 mm; SUVs of its means, each scaled by a factor
  uniform in 0.8-1.25 and kept in its 2.1-13.8 range); the phantom's own
  ``lesion_*`` regions are left out, most of them lie outside a reduced field
  of view;
- sex alternating (F, M), height uniform 155-175 cm (F) or 165-190 cm (M),
  age 40-80 years, group alternating ``treated`` / ``untreated``.

Anatomy is the phantom's for every patient (weight enters the SUV only).

Placement: the reduced sampling (:func:`petrecon.geometry.reduced.reduced_sampling`,
28 rings, ~112-114 mm axial) images the patient at the bed position
:data:`BED_POSITION_MM`: the field of view, centred at S = 40 mm (DICOM
patient LPS, :mod:`petrecon.geometry.patient`), covers S = -15 to 95 mm:
the liver dome, the spleen, the vertebral marrow and the lower right lung.
Every organ VOI (diameters of :data:`petrecon.quant.organs.ORGAN_VOI_DIAMETER_MM`)
and lesion lies inside its organ and at least 10 mm from the ends of that
field of view (tested); a full-sampling field of view is longer, centred on
the same point.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass

import numpy as np

from petrecon.errors import ParameterError
from petrecon.quant.organs import ORGAN_VOI_DIAMETER_MM
from petrecon.simulate.phantom import Phantom, phantom_from_dict, shipped_phantoms

PHANTOM = "pentixafor-torso"
TRACER = "Ga68-pentixafor"
#: ``start horizontal bed position`` (mm) of every scan: the gantry centre lies at S = 40 mm (module docstring).
BED_POSITION_MM = 40.0
PATIENT_POSITION = "HFS"
#: Study SUV means of the organs (reference/clinical-protocol.md) and the phantom parameter of each.
ORGAN_SUV_MEANS = {"liver": 3.1, "spleen": 5.6, "bone-marrow": 3.7}
ORGAN_PARAMETERS = {"liver": "liver", "spleen": "spleen", "bone-marrow": "marrow"}
ORGAN_TISSUE = {"liver": "soft tissue", "spleen": "soft tissue", "bone-marrow": "bone"}
#: Organ reference VOI centres (patient LPS mm): deep in the organ, clear of lesions and of other organs.
ORGAN_VOI_CENTRES_MM = {"liver": (-55.0, -20.0, 30.0), "spleen": (95.0, 30.0, 10.0), "bone-marrow": (0.0, 70.0, 15.0)}
ORGAN_SUV_SPREAD = 0.2
LESION_SUV_FACTORS = (0.8, 1.25)
STUDY_LESION_SUV_RANGE = (2.1, 13.8)
#: A lesion's search sphere (cohort file) is its radius plus this margin: room for the reconstruction's blur.
SEARCH_MARGIN_MM = 8.0
GROUPS = ("treated", "untreated")


@dataclass(frozen=True)
class Lesion:
    """A spherical lesion (patient LPS mm) and what the truth table says of it.

    Attributes
    ----------
    name : str
        VOI name in the cohort file and the truth table.
    centre_mm : tuple of float
    diameter_mm : float
    suv : float
        SUV at injection (the phantom's unit).
    material : str
        Phantom material of the lesion (:mod:`petrecon.simulate.materials`).
    tissue : str
        Where it lies: ``lung``, ``bone`` or ``soft tissue``.
    """

    name: str
    centre_mm: tuple[float, float, float]
    diameter_mm: float
    suv: float
    material: str
    tissue: str

    def search_sphere(self) -> str:
        """The cohort file's ``name:sphere:x,y,z,r`` with ``r`` = radius + :data:`SEARCH_MARGIN_MM`.

        Examples
        --------
        >>> LESION_CATALOGUE[0].search_sphere()
        'lung_nodule:sphere:-90,30,72,15.5'
        """
        values = (*self.centre_mm, self.diameter_mm / 2.0 + SEARCH_MARGIN_MM)
        return f"{self.name}:sphere:" + ",".join(f"{v:g}" for v in values)


#: The study's lesion types (reference/clinical-protocol.md), placed in the reduced field of view.
LESION_CATALOGUE: tuple[Lesion, ...] = (
    Lesion("lung_nodule", (-90.0, 30.0, 72.0), 15.0, 5.2, "soft_tissue", "lung"),        # NSCLC-like, lower right lung
    Lesion("liver_lesion", (-95.0, 10.0, 10.0), 25.0, 8.1, "soft_tissue", "soft tissue"),  # liver metastasis
    Lesion("bone_lesion", (0.0, 70.0, 60.0), 14.0, 6.0, "spongiosa", "bone"),             # vertebral metastasis
    Lesion("node", (140.0, 20.0, 60.0), 20.0, 4.5, "soft_tissue", "soft tissue"),        # node, the metastasis mean
)


@dataclass(frozen=True)
class SimulatedPatient:
    """One patient of the cohort (module docstring).

    Attributes
    ----------
    id : str
    sex : str
    age_years : int
    weight_kg, height_m, injected_activity_mbq : float
    uptake_min : int
        Injection to the first scan's start.
    group : str
    organ_suv : dict of str to float
        SUV at injection of ``liver``, ``spleen`` and ``bone-marrow``.
    lesions : tuple of Lesion
    seed : int
        Seed of the patient's simulations.
    """

    id: str
    sex: str
    age_years: int
    weight_kg: float
    height_m: float
    injected_activity_mbq: float
    uptake_min: int
    group: str
    organ_suv: dict
    lesions: tuple[Lesion, ...]
    seed: int


def draw_patients(n_patients: int, *, seed: int = 0, activity_mbq: tuple[float, float] = (150.0, 250.0),
                  uptake_min: tuple[float, float] = (55.0, 75.0), weight_kg: tuple[float, float] = (60.0, 95.0),
                  lesions: str = "all") -> list[SimulatedPatient]:
    """Draw ``n_patients`` patients (module docstring); ranges are (low, high), uniform.

    Parameters
    ----------
    n_patients : int
    seed : int
    activity_mbq, uptake_min, weight_kg : tuple of float
        Injected activity, injection-to-scan time of the first scan, body weight.
    lesions : str
        ``all``: every catalogue lesion; ``random``: a random subset of at least 2.

    Examples
    --------
    >>> [p.id for p in draw_patients(2)], [p.group for p in draw_patients(2)]
    (['P01', 'P02'], ['treated', 'untreated'])
    >>> draw_patients(3, seed=4) == draw_patients(3, seed=4)
    True
    """
    if not (isinstance(n_patients, int) and 1 <= n_patients <= 99):
        raise ParameterError(f"the cohort needs 1 to 99 patients, got {n_patients!r}")
    if lesions not in ("all", "random"):
        raise ParameterError(f"lesions must be 'all' or 'random', got {lesions!r}")
    for name, (low, high), limits in (("activity_mbq", activity_mbq, (1.0, 2000.0)),
                                      ("uptake_min", uptake_min, (1.0, 600.0)),
                                      ("weight_kg", weight_kg, (20.0, 300.0))):
        if not limits[0] <= low <= high <= limits[1]:
            raise ParameterError(f"{name} range must be LOW:HIGH with {limits[0]:g} <= LOW <= HIGH <= "
                                 f"{limits[1]:g}, got {low:g}:{high:g}")
    patients = []
    for index, generator in enumerate(np.random.SeedSequence(seed).spawn(n_patients)):
        rng = np.random.default_rng(generator)
        sex = "FM"[index % 2]
        height_cm = rng.uniform(*((155.0, 175.0) if sex == "F" else (165.0, 190.0)))
        organ_suv = {organ: round(float(mean * rng.uniform(1 - ORGAN_SUV_SPREAD, 1 + ORGAN_SUV_SPREAD)), 2)
                     for organ, mean in ORGAN_SUV_MEANS.items()}
        chosen = range(len(LESION_CATALOGUE))
        if lesions == "random":
            chosen = sorted(rng.choice(len(LESION_CATALOGUE), rng.integers(2, len(LESION_CATALOGUE) + 1),
                                       replace=False))
        drawn = tuple(_with_suv(LESION_CATALOGUE[k], rng.uniform(*LESION_SUV_FACTORS)) for k in chosen)
        patients.append(SimulatedPatient(
            id=f"P{index + 1:02d}", sex=sex, age_years=int(rng.integers(40, 81)),
            weight_kg=round(float(rng.uniform(*weight_kg)), 1), height_m=round(height_cm / 100.0, 2),
            injected_activity_mbq=round(float(rng.uniform(*activity_mbq)), 1),
            uptake_min=int(round(rng.uniform(*uptake_min))), group=GROUPS[index % 2], organ_suv=organ_suv,
            lesions=drawn, seed=int(rng.integers(0, 2**31 - 1))))
    return patients


def _with_suv(lesion: Lesion, factor: float) -> Lesion:
    low, high = STUDY_LESION_SUV_RANGE
    return Lesion(lesion.name, lesion.centre_mm, lesion.diameter_mm, round(float(np.clip(lesion.suv * factor, low,
                                                                                             high)), 2),
                  lesion.material, lesion.tissue)


def patient_phantom(patient: SimulatedPatient) -> Phantom:
    """The ``pentixafor-torso`` phantom of ``patient``: its weight, injected activity, organ SUVs and lesions.

    Examples
    --------
    >>> patient = draw_patients(1)[0]
    >>> phantom = patient_phantom(patient)
    >>> [r.name for r in phantom.regions][-4:], phantom.weight_kg == patient.weight_kg
    (['lung_nodule', 'liver_lesion', 'bone_lesion', 'node'], True)
    """
    document = tomllib.loads(shipped_phantoms()[PHANTOM].read_text())
    document["regions"] = [region for region in document["regions"] if not region["name"].startswith("lesion_")]
    document["regions"] += [{"name": lesion.name, "material": lesion.material, "activity": lesion.suv,
                             "shapes": [{"type": "sphere", "centre_mm": list(lesion.centre_mm),
                                         "radius_mm": lesion.diameter_mm / 2.0}]} for lesion in patient.lesions]
    document["weight_kg"] = patient.weight_kg
    document["injected_activity_mbq"] = patient.injected_activity_mbq
    document["name"] = f"{PHANTOM} ({patient.id})"
    parameters = {ORGAN_PARAMETERS[organ]: suv for organ, suv in patient.organ_suv.items()}
    return phantom_from_dict(document, parameters, source=f"{PHANTOM} of patient {patient.id}")


def truth_rows(patient: SimulatedPatient) -> list[dict]:
    """Rows of ``truth.csv`` for ``patient``: ``patient, voi, kind, true_suv, diameter_mm, tissue``.

    Organs: the true SUV of the uniform organ region and the diameter of its reference VOI.

    Examples
    --------
    >>> truth_rows(draw_patients(1)[0])[2]["voi"], truth_rows(draw_patients(1)[0])[2]["tissue"]
    ('bone-marrow', 'bone')
    """
    rows = [{"patient": patient.id, "voi": organ, "kind": "organ", "true_suv": suv,
             "diameter_mm": ORGAN_VOI_DIAMETER_MM[organ], "tissue": ORGAN_TISSUE[organ]}
            for organ, suv in patient.organ_suv.items()]
    rows += [{"patient": patient.id, "voi": lesion.name, "kind": "lesion", "true_suv": lesion.suv,
              "diameter_mm": lesion.diameter_mm, "tissue": lesion.tissue} for lesion in patient.lesions]
    return rows
