"""PET/CT vs PET/MR: the same emission data reconstructed with CT- and Dixon-based attenuation.

The clinical study treated SUVs from its Biograph 64 (CT attenuation) and its
Biograph mMR (4-class Dixon attenuation) as comparable
(reference/clinical-protocol.md). :func:`compare_attenuation` measures what
the attenuation map alone changes: one simulated study (whose true
attenuation includes bone), reconstructed twice with the same protocol,
scatter and randoms, once with each mu-map, and SUVmax/SUVmean compared per
region. Dixon maps bone as soft tissue (0.100 instead of 0.11-0.17 cm^-1),
so uptake in and near bone is underestimated (~5-15 % reported,
reference/quantification.md); soft tissue should agree within a few percent.
With a third mu-map, the bone-aware Dixon map
(:mod:`petrecon.attenuation.bone_atlas`: the vertebral bodies as a fifth
class), the same study is reconstructed a third time and compared too.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from petrecon.attenuation.ct import ct_mu_map_on_grid
from petrecon.attenuation.dixon import dixon_mu_map, segment_dixon
from petrecon.geometry import SinogramLayout, get_scanner
from petrecon.geometry.patient import patient_to_gantry, volume_patient_frame
from petrecon.io.container import Container
from petrecon.quant.suv import Patient, suv_factor
from petrecon.quant.roi import sphere_mask
from petrecon.quant.stats import voi_statistics
from petrecon.recon.protocol import ReconstructionProtocol
from petrecon.recon.study import reconstruct_study
from petrecon.volume import ImageGrid, Volume


@dataclass(frozen=True)
class SphereRegion:
    """A spherical VOI (centre in patient coordinates, LPS mm) and the tissue it samples (``soft tissue``, ``bone``, ``lung``)."""

    name: str
    centre_mm: tuple[float, float, float]
    radius_mm: float
    tissue: str


#: VOIs of the shipped ``pentixafor-torso`` phantom inside the axial slab of :func:`torso_slab_comparison`.
TORSO_REGIONS = (
    SphereRegion("liver", (-40.0, -25.0, 25.0), 15.0, "soft tissue"),
    SphereRegion("spleen", (95.0, 30.0, 5.0), 10.0, "soft tissue"),
    SphereRegion("vertebral marrow", (0.0, 70.0, -10.0), 10.0, "bone"),
    SphereRegion("body background", (60.0, -60.0, -30.0), 15.0, "soft tissue, low uptake"),
    SphereRegion("lesion liver 25 mm", (-80.0, 5.0, -5.0), 12.5, "soft tissue"),
    SphereRegion("lesion bone 12 mm", (0.0, 70.0, 40.0), 6.0, "bone"),
    SphereRegion("lesion soft tissue 30 mm", (120.0, -40.0, -40.0), 15.0, "soft tissue"),
)


#: Bed position (mm) that centres the slab of :func:`torso_slab_comparison` on the phantom's thorax (S = 63-177 mm).
THORAX_BED_POSITION_MM = 120.0

#: VOIs of the ``pentixafor-torso`` phantom inside the thorax slab (``bed_position_mm=THORAX_BED_POSITION_MM``).
THORAX_REGIONS = (
    SphereRegion("lesion lung 15 mm", (-85.0, -20.0, 120.0), 7.5, "lung nodule"),
    SphereRegion("lung", (75.0, -5.0, 120.0), 15.0, "lung"),
    SphereRegion("thoracic vertebral marrow", (0.0, 70.0, 120.0), 10.0, "bone"),
    SphereRegion("sternum", (0.0, -95.0, 100.0), 6.0, "bone, not in the template"),
    SphereRegion("lesion soft tissue 20 mm", (140.0, 10.0, 110.0), 10.0, "soft tissue"),
)


@dataclass(frozen=True)
class RegionBias:
    """SUVmax and SUVmean of one region with CT- and Dixon-based attenuation (and bone-aware Dixon, when compared)."""

    region: SphereRegion
    suv_max_ct: float
    suv_max_dixon: float
    suv_mean_ct: float
    suv_mean_dixon: float
    suv_max_dixon_bone: float | None = None
    suv_mean_dixon_bone: float | None = None

    @property
    def max_difference_percent(self) -> float:
        """``100 (SUVmax_Dixon / SUVmax_CT - 1)``."""
        return 100.0 * (self.suv_max_dixon / self.suv_max_ct - 1.0)

    @property
    def mean_difference_percent(self) -> float:
        """``100 (SUVmean_Dixon / SUVmean_CT - 1)``."""
        return 100.0 * (self.suv_mean_dixon / self.suv_mean_ct - 1.0)

    @property
    def max_difference_bone_percent(self) -> float | None:
        """``100 (SUVmax_Dixon+bone / SUVmax_CT - 1)`` (None without the bone-aware map)."""
        return None if self.suv_max_dixon_bone is None else 100.0 * (self.suv_max_dixon_bone / self.suv_max_ct - 1.0)

    @property
    def mean_difference_bone_percent(self) -> float | None:
        """``100 (SUVmean_Dixon+bone / SUVmean_CT - 1)`` (None without the bone-aware map)."""
        return (None if self.suv_mean_dixon_bone is None
                else 100.0 * (self.suv_mean_dixon_bone / self.suv_mean_ct - 1.0))


def compare_attenuation(study: Container, mu_ct: Volume, mu_dixon: Volume, regions: list[SphereRegion],
                        suv_per_bq_per_ml: float, protocol: ReconstructionProtocol = ReconstructionProtocol(), *,
                        mu_dixon_bone: Volume | None = None, progress: bool = False) -> list[RegionBias]:
    """Reconstruct ``study`` with each mu-map and compare the regions' SUVs.

    Parameters
    ----------
    study : Container
        Emission study (prompts, corrections, calibration attributes).
    mu_ct, mu_dixon : Volume
        The two mu-maps (cm^-1), each on a grid covering the patient.
    regions : list of SphereRegion
        VOIs to compare, in patient coordinates: placed in the reconstruction's
        gantry frame by its patient and bed position (:mod:`petrecon.geometry.patient`).
    suv_per_bq_per_ml : float
        SUV factor (body weight / decayed dose), the same for both.
    protocol : ReconstructionProtocol
        Used for every reconstruction.
    mu_dixon_bone : Volume, optional
        A bone-aware Dixon mu-map: a third reconstruction, compared as well.
    """
    mu_maps = (mu_ct, mu_dixon) if mu_dixon_bone is None else (mu_ct, mu_dixon, mu_dixon_bone)
    volumes = [reconstruct_study(study, protocol, mu=mu, progress=progress).volume for mu in mu_maps]
    rows = []
    frame = volume_patient_frame(volumes[0].metadata)
    for region in regions:
        mask = sphere_mask(volumes[0].grid, patient_to_gantry(region.centre_mm, *frame), region.radius_mm)
        stats = [voi_statistics(volume, mask) for volume in volumes]
        bone = {} if len(stats) == 2 else {"suv_max_dixon_bone": stats[2].max * suv_per_bq_per_ml,
                                           "suv_mean_dixon_bone": stats[2].mean * suv_per_bq_per_ml}
        rows.append(RegionBias(region, stats[0].max * suv_per_bq_per_ml, stats[1].max * suv_per_bq_per_ml,
                               stats[0].mean * suv_per_bq_per_ml, stats[1].mean * suv_per_bq_per_ml, **bone))
    return rows


def bias_table_markdown(rows: list[RegionBias]) -> str:
    """The comparison as a Markdown table (one row per region; bone-aware Dixon columns when compared)."""
    with_bone = bool(rows) and all(row.suv_max_dixon_bone is not None for row in rows)
    extra = " SUVmax Dixon+bone | difference | SUVmean Dixon+bone | difference |" if with_bone else ""
    lines = ["| region | tissue | SUVmax CT | SUVmax Dixon | difference | SUVmean CT | SUVmean Dixon | difference |"
             + extra, "|---|---|---|---|---|---|---|---|" + "---|---|---|---|" * with_bone]
    for row in rows:
        line = (f"| {row.region.name} | {row.region.tissue} | {row.suv_max_ct:.2f} | {row.suv_max_dixon:.2f} | "
                f"{row.max_difference_percent:+.1f} % | {row.suv_mean_ct:.2f} | {row.suv_mean_dixon:.2f} | "
                f"{row.mean_difference_percent:+.1f} % |")
        if with_bone:
            line += (f" {row.suv_max_dixon_bone:.2f} | {row.max_difference_bone_percent:+.1f} % | "
                     f"{row.suv_mean_dixon_bone:.2f} | {row.mean_difference_bone_percent:+.1f} % |")
        lines.append(line)
    return "\n".join(lines)


def torso_slab_comparison(*, bone: bool = False, bed_position_mm: float = 0.0,
                          regions: tuple[SphereRegion, ...] = TORSO_REGIONS,
                          progress: bool = False) -> list[RegionBias]:
    """CT vs Dixon (and bone-aware Dixon) on the ``pentixafor-torso`` phantom, on an axially short Biograph mMR.

    The mMR's rings, crystals and radius with 28 of its 64 rings (114 mm
    axial, liver, spleen, spine and three lesions inside), span 11, 200 radial
    bins (417 mm field of view), views mashed by 4, a 100 x 100 x 28 image of
    4.2 x 4.2 x 4.1 mm: small enough for the test suite (about 30 s on 2
    cores). Noise-free emission data with the phantom's true attenuation
    (bone included), scatter and randoms; the CT (120 kVp) and Dixon images
    of the phantom on a 2.1 x 2.1 x 4.1 mm grid covering the whole torso.
    ``bone`` adds a third reconstruction with the bone-aware Dixon map
    (``segment_dixon(..., bone="atlas")``). The slab covers the phantom's
    abdomen (``regions`` :data:`TORSO_REGIONS`) at bed position 0 (HFS), its
    thorax and lung nodule (:data:`THORAX_REGIONS`) at :data:`THORAX_BED_POSITION_MM`.
    """
    scanner = dataclasses.replace(get_scanner("mmr"), n_rings=28)
    layout = SinogramLayout(scanner, 11, 27, 200, 4)
    grid = ImageGrid.centred((100, 100, 28), (4.17252, 4.17252, 4.0625))
    anatomy_grid = ImageGrid.centred((200, 200, 100), (2.08626, 2.08626, 4.0625))
    from petrecon.simulate.acquisition import simulate_study
    from petrecon.simulate.phantom import load_phantom

    study = simulate_study("pentixafor-torso", scanner=layout, noise=False, grid=grid,
                           bed_position_mm=bed_position_mm, progress=progress).container
    anatomy = simulate_study("pentixafor-torso", scanner=layout, noise=False, randoms=False, scatter=False,
                             resolution=False, duration_s=1.0, grid=anatomy_grid, bed_position_mm=bed_position_mm,
                             progress=progress).container.volumes
    mu_ct = ct_mu_map_on_grid(Volume(anatomy["ct_hu"].data, anatomy_grid, {"units": "HU", "kvp": 120.0}),
                              anatomy_grid)
    mu_dixon = dixon_mu_map(segment_dixon(anatomy["dixon_water"], anatomy["dixon_fat"]))
    mu_bone = dixon_mu_map(segment_dixon(anatomy["dixon_water"], anatomy["dixon_fat"], bone="atlas")) if bone else None
    attributes = study.attributes
    factor = suv_factor(attributes["injected_activity_bq"], Patient(load_phantom("pentixafor-torso").weight_kg),
                        elapsed_s=attributes["frame_start_s"], half_life_s=attributes["half_life_s"])
    protocol = ReconstructionProtocol(image_shape=grid.shape, voxel_size_mm=grid.voxel_size_mm)
    return compare_attenuation(study, mu_ct, mu_dixon, list(regions), factor, protocol, mu_dixon_bone=mu_bone,
                               progress=progress)
