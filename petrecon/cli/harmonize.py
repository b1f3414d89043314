"""Sub-command ``harmonize``: EARL protocols for a scanner."""

from __future__ import annotations

import argparse

from petrecon.checks import check_memory
from petrecon.io.atomic import check_outputs

#: float32 sinograms a harmonisation holds at once (prompts, corrections, projections): for the memory check.
SINOGRAM_COPIES = 12


def harmonisation_layout(scanner_name: str, n_rings: int | None):
    """The scanner's default layout, or an axially short copy of it (``n_rings`` rings around the sphere plane)."""
    import dataclasses

    from petrecon.geometry import SinogramLayout, default_layout, get_scanner
    from petrecon.volume import ImageGrid

    layout = default_layout(scanner_name)
    scanner = layout.scanner
    if n_rings is None:
        return layout, ImageGrid.centred(scanner.default_image_shape, scanner.default_voxel_size_mm)
    short = dataclasses.replace(get_scanner(scanner_name), n_rings=n_rings, virtual_ring_positions=())
    layout = SinogramLayout(short, layout.span, min(layout.max_ring_difference, n_rings - 1), layout.n_radial_bins,
                            layout.view_mashing)
    check_memory(layout.shape, f"--rings {n_rings}: the sinogram", copies=SINOGRAM_COPIES)
    shape = (*scanner.default_image_shape[:2], 2 * n_rings - 1)
    return layout, ImageGrid.centred(shape, (*scanner.default_voxel_size_mm[:2], short.ring_spacing_mm / 2))


def _cmd_harmonize(args: argparse.Namespace) -> None:
    check_outputs([args.out], overwrite=args.overwrite)
    from petrecon.harmonize import harmonise

    layout, grid = harmonisation_layout(args.scanner, args.rings)
    result = harmonise(layout, args.standard, grid=grid, progress=not args.quiet)
    result.protocol.save(args.out, overwrite=args.overwrite)
    print("\n".join(result.summary_lines()))
    print(f"written          {args.out}")


def register(commands: argparse._SubParsersAction) -> None:
    harmonize = commands.add_parser(
        "harmonize", help="find the protocol that puts the NEMA recovery of a scanner inside the EARL bands",
        epilog="examples:\n  petrecon harmonize --scanner mmr --standard earl1 --out earl1-mmr.toml\n"
               "  petrecon harmonize --scanner b64 --standard earl2 --rings 28 --out earl2-b64.toml",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    harmonize.add_argument("--scanner", required=True, help="registry name, e.g. mmr, b64")
    harmonize.add_argument("--standard", required=True, choices=["earl1", "earl2"], help="EARL standard")
    harmonize.add_argument("--rings", type=int, default=None,
                           help="simulate an axially short scanner of this many rings around the sphere plane "
                                "(faster on a CPU; in-plane recovery is unchanged)")
    harmonize.add_argument("--out", required=True, help="protocol TOML to write")
    harmonize.add_argument("--overwrite", action="store_true", help="replace an existing protocol file")
    harmonize.add_argument("--quiet", action="store_true", help="no progress bars")
    harmonize.set_defaults(run=_cmd_harmonize)
