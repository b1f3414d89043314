"""PET/CT vs PET/MR attenuation: one simulated torso, reconstructed with CT-, Dixon- and bone-aware Dixon mu-maps."""

from __future__ import annotations

import pytest

from petrecon.validation.attenuation_bias import bias_table_markdown, torso_slab_comparison


@pytest.fixture(scope="module")
def rows():
    return {row.region.name: row for row in torso_slab_comparison(bone=True)}


def test_soft_tissue_organs_and_lesions_agree_within_three_percent(rows):
    soft = [row for row in rows.values() if row.region.tissue == "soft tissue"]
    assert len(soft) == 4
    for row in soft:
        # the bound; Dixon and CT mu of soft tissue and fat agree within 1 % (0.100 vs 0.0998 cm^-1)
        assert abs(row.max_difference_percent) < 3 and abs(row.mean_difference_percent) < 3, row


def test_bone_uptake_is_underestimated_with_dixon_as_reported(rows):
    # Dixon calls bone soft tissue: literature -8 +- 3 % (max -13 %) and -11 +- 5 % for bone lesions
    # (reference/quantification.md); the phantom's 40 mm spongiosa vertebra with its 1 mm cortex gives ~-16 %.
    # Sign and size: between -20 % and -5 %.
    lesion = rows["lesion bone 12 mm"]
    assert -20 < lesion.max_difference_percent < -5 and -20 < lesion.mean_difference_percent < -5
    # the marrow, all of whose LORs cross the vertebra, loses more than any soft-tissue region
    assert rows["vertebral marrow"].mean_difference_percent < -10


def test_bone_template_at_least_halves_the_bone_bias(rows):
    # The criterion. The template's mu (0.116 cm^-1) is within 3 % of the phantom's spongiosa (0.113),
    # and its 40 x 32 mm ellipse covers most of the 42 mm vertebra, so the remaining error is a few percent
    # (measured ~+2 %, against -16 % and -20 % with 4 classes); halving leaves room for a slice's misplacement.
    for name in ("lesion bone 12 mm", "vertebral marrow"):
        row = rows[name]
        assert abs(row.max_difference_bone_percent) < 0.5 * abs(row.max_difference_percent), row
        assert abs(row.mean_difference_bone_percent) < 0.5 * abs(row.mean_difference_percent), row


def test_bone_template_keeps_soft_tissue_within_three_percent(rows):
    # the template changes mu only inside the vertebra: soft tissue keeps the 4-class map's agreement with CT
    for row in rows.values():
        if row.region.tissue == "soft tissue":
            assert abs(row.max_difference_bone_percent) < 3 and abs(row.mean_difference_bone_percent) < 3, row


def test_low_uptake_background_shifts_little_in_absolute_terms(rows):
    # the bone error spread along the LORs through the spine reaches cold tissue too: ~+3.5 % of SUV 0.8
    background = rows["body background"]
    assert abs(background.suv_mean_dixon - background.suv_mean_ct) < 0.05


def test_the_table_lists_every_region(rows):
    table = bias_table_markdown(list(rows.values()))
    assert all(name in table for name in rows) and table.count("\n") == len(rows) + 1
    assert "Dixon+bone" in table
