"""Write docs/attenuation-bias.md: SUV differences between CT-, Dixon- and bone-aware Dixon attenuation on the torso phantom.

Run from the repository root: ``python docs/make_attenuation_bias.py`` (two slabs, three reconstructions each:
about 3 min on 2 idle cores).
"""

from pathlib import Path

from petrecon.validation.attenuation_bias import (
    THORAX_BED_POSITION_MM, THORAX_REGIONS, bias_table_markdown, torso_slab_comparison)

HEADER = """# PET/CT vs PET/MR attenuation: SUV differences on the 68Ga-pentixafor torso phantom

One noise-free simulation of the `pentixafor-torso` phantom (68Ga, 200 MBq, 62 min p.i., true attenuation
with cortical bone and spongiosa), reconstructed three times by AW-OSEM 4 x 8 + 5 mm with the same scatter and
randoms: with the CT-based mu-map (bilinear, 120 kVp, smoothed to 4 mm), with the 4-class Dixon mu-map, and
with the bone-aware Dixon mu-map (`bone="atlas"`: the vertebral-body template as a fifth class,
`petrecon.attenuation.bone_atlas`). Difference = Dixon / CT - 1. Set-up:
`petrecon.validation.attenuation_bias.torso_slab_comparison` (an axially short Biograph mMR, 28 rings, 114 mm);
regenerate with `python docs/make_attenuation_bias.py`.

"""


def main() -> None:
    abdomen = bias_table_markdown(torso_slab_comparison(bone=True))
    thorax = bias_table_markdown(torso_slab_comparison(bone=True, bed_position_mm=THORAX_BED_POSITION_MM,
                                                       regions=THORAX_REGIONS))
    text = (HEADER + "## Abdomen (bed position 0: S = -57 to 57 mm)\n\n" + abdomen + "\n\n"
            + f"## Thorax (bed position {THORAX_BED_POSITION_MM:g} mm: S = 63 to 177 mm)\n\n" + thorax + "\n")
    Path(__file__).with_name("attenuation-bias.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
