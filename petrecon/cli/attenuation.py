"""Sub-command ``mumap``: mu-maps at 511 keV from CT, Dixon MR or the mMR's own mu-map, plus hardware mu-maps."""

from __future__ import annotations

import argparse

from petrecon.checks import check_mu_map
from petrecon.io.atomic import check_outputs


def with_hardware(args: argparse.Namespace, mu, bed_position_mm: float, cover, recorded_table_origin=None):
    """``mu`` plus the ``--hardware-mumap`` parts (unchanged without them), placed for ``bed_position_mm``.

    The table position origin: ``--table-origin-mm``, else the list-mode's
    CSA value (``recorded_table_origin``); the gantry table home offset:
    ``--gantry-table-offset-mm``, else the scanner mu-map series' CSA value.
    """
    if not args.hardware_mumap:
        return mu
    from petrecon.attenuation.mumap import add_hardware_mu_maps
    from petrecon.errors import ParameterError
    from petrecon.io.hardware_mumap import TablePlacement

    if mu is None:
        raise ParameterError("--hardware-mumap adds to a patient mu-map: give one (--mumap-scanner, --mumap-dixon, "
                             "--mumap)")
    origin = args.table_origin_mm or recorded_table_origin
    offset = args.gantry_table_offset_mm or mu.metadata.get("gantry_table_home_offset_mm")
    if origin is None:
        raise ParameterError("--hardware-mumap: the list-mode records no TablePositionOrigin; give "
                             "--table-origin-mm X Y Z")
    if offset is None:
        raise ParameterError("--hardware-mumap: the mu-map records no GantryTableHomeOffset; give "
                             "--gantry-table-offset-mm X Y Z")
    placement = TablePlacement(float(bed_position_mm), tuple(map(float, origin)), tuple(map(float, offset)))
    return add_hardware_mu_maps(mu, args.hardware_mumap, placement, cover=cover)


def add_hardware_options(parser: argparse.ArgumentParser) -> None:
    """The hardware mu-map options of ``petrecon mumap`` and ``petrecon recon``."""
    parser.add_argument("--hardware-mumap", nargs="+", metavar="UMAP.v.hdr", default=None,
                        help="the scanner's hardware mu-maps (table, coils: umap_*.v.hdr) to add, placed by the "
                             "bed position")
    parser.add_argument("--table-origin-mm", nargs=3, type=float, metavar=("X", "Y", "Z"), default=None,
                        help="TablePositionOrigin (mm) when the list-mode's CSA header does not give it")
    parser.add_argument("--gantry-table-offset-mm", nargs=3, type=float, metavar=("X", "Y", "Z"), default=None,
                        help="GantryTableHomeOffset (mm) when the mu-map series' CSA header does not give it")


def _cmd_mumap(args: argparse.Namespace) -> None:
    check_outputs([args.out], overwrite=args.overwrite)
    from petrecon.attenuation.mumap import (mu_map_from_ct_series, mu_map_from_dixon_series,
                                            mu_map_from_scanner_series, write_mu_map)
    from petrecon.geometry import get_scanner
    from petrecon.volume import ImageGrid

    if args.bone != "none" and not args.dixon:
        from petrecon.errors import ParameterError

        raise ParameterError(f"--bone {args.bone}: the bone template is placed from Dixon images; give --dixon")
    scanner = get_scanner(args.scanner)
    grid = ImageGrid.centred(scanner.default_image_shape, scanner.default_voxel_size_mm)
    frame = {"patient_position": args.patient_position, "bed_position_mm": args.bed_position_mm}
    if args.ct:
        mu, inputs = mu_map_from_ct_series(args.ct, grid, fwhm_mm=args.fwhm_mm, **frame), [args.ct]
    elif args.scanner_mumap:
        mu, inputs = mu_map_from_scanner_series(args.scanner_mumap, grid, **frame), [args.scanner_mumap]
    else:
        kind = "in_opposed" if args.in_opposed else "water_fat"
        mu = mu_map_from_dixon_series(*args.dixon, grid, kind=kind, bone=args.bone, **frame)
        inputs = list(args.dixon)
    mu = with_hardware(args, mu, args.bed_position_mm, grid)
    check_mu_map(mu.data, " ".join(inputs))
    write_mu_map(args.out, mu, scanner=args.scanner, inputs=inputs, overwrite=args.overwrite,
                 files=args.hardware_mumap or ())
    truncated = mu.metadata.get("truncated_slices") or []
    print(f"mu-map           {mu.metadata['source']} -> {args.scanner} grid {mu.grid.shape}, "
          f"max {float(mu.data.max()):.4f} cm^-1")
    for part in mu.metadata.get("hardware_mu_maps", []):
        print(f"hardware         {part}")
    if truncated:
        print(f"warning          the body touches the CT field of view in {len(truncated)} CT slices")
    print(f"written          {args.out} (volume mu_per_cm)")


def register(commands: argparse._SubParsersAction) -> None:
    mumap = commands.add_parser("mumap", help="mu-map at 511 keV from a CT, Dixon MR or the mMR's own mu-map series, plus hardware mu-maps (HDF5)",
                                epilog="examples:\n  petrecon mumap --ct ct_series/ --scanner b64 --out mumap.h5\n"
                                       "  petrecon mumap --dixon water/ fat/ --scanner mmr --out mumap.h5\n"
                                       "  petrecon mumap --dixon water/ fat/ --bone atlas --scanner mmr "
                                       "--out mumap-bone.h5\n"
                                       "  petrecon mumap --scanner-mumap umap/ --hardware-mumap umap_PT_2291734.v.hdr "
                                       "--table-origin-mm 0 0 -1258 --bed-position-mm -812.5 --scanner mmr "
                                       "--out mumap.h5",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    source = mumap.add_mutually_exclusive_group(required=True)
    source.add_argument("--ct", metavar="DICOMDIR", help="low-dose CT series (HU; kVp from the header)")
    source.add_argument("--dixon", nargs=2, metavar=("WATERDIR", "FATDIR"),
                        help="Dixon water and fat series (or in- and opposed-phase with --in-opposed)")
    source.add_argument("--scanner-mumap", metavar="DICOMDIR",
                        help="the mMR's own mu-map series (MR images of mu x 10000)")
    mumap.add_argument("--in-opposed", action="store_true", help="the Dixon series are in- and opposed-phase")
    mumap.add_argument("--bone", choices=["none", "atlas"], default="none",
                       help="Dixon only: 'atlas' adds the vertebral bodies as a fifth class (bone template placed "
                            "from the Dixon images; verified on simulated images only); default none (4 classes)")
    add_hardware_options(mumap)
    mumap.add_argument("--scanner", required=True, help="registry name: the mu-map is made on its image grid")
    mumap.add_argument("--fwhm-mm", type=float, default=4.0, help="CT smoothing to PET resolution (default 4 mm)")
    mumap.add_argument("--patient-position", default=None, choices=["HFS", "HFP", "FFS", "FFP"], type=str.upper,
                       help="the PET acquisition's patient position (default: the series' PatientPosition)")
    mumap.add_argument("--bed-position-mm", type=float, default=0.0, metavar="MM",
                       help="the PET acquisition's 'start horizontal bed position': the mu-map is made in its "
                            "gantry frame (default 0)")
    mumap.add_argument("--out", required=True, help="output HDF5 container (volume mu_per_cm)")
    mumap.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    mumap.set_defaults(run=_cmd_mumap)


# --- quantification: SUV of ROIs, NEMA NU 2 image quality, cohort statistics ----------------------
