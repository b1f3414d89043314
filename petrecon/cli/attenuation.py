"""Sub-command ``mumap``: mu-maps at 511 keV from CT or Dixon MR."""

from __future__ import annotations

import argparse

from petrecon.checks import check_mu_map
from petrecon.io.atomic import check_outputs


def _cmd_mumap(args: argparse.Namespace) -> None:
    check_outputs([args.out], overwrite=args.overwrite)
    from petrecon.attenuation.mumap import mu_map_from_ct_series, mu_map_from_dixon_series, write_mu_map
    from petrecon.geometry import get_scanner
    from petrecon.volume import ImageGrid

    scanner = get_scanner(args.scanner)
    grid = ImageGrid.centred(scanner.default_image_shape, scanner.default_voxel_size_mm)
    frame = {"patient_position": args.patient_position, "bed_position_mm": args.bed_position_mm}
    if args.ct:
        mu, inputs = mu_map_from_ct_series(args.ct, grid, fwhm_mm=args.fwhm_mm, **frame), [args.ct]
    else:
        kind = "in_opposed" if args.in_opposed else "water_fat"
        mu, inputs = mu_map_from_dixon_series(*args.dixon, grid, kind=kind, **frame), list(args.dixon)
    check_mu_map(mu.data, " ".join(inputs))
    write_mu_map(args.out, mu, scanner=args.scanner, inputs=inputs, overwrite=args.overwrite)
    truncated = mu.metadata.get("truncated_slices") or []
    print(f"mu-map           {mu.metadata['source']} -> {args.scanner} grid {grid.shape}, "
          f"max {float(mu.data.max()):.4f} cm^-1")
    if truncated:
        print(f"warning          the body touches the CT field of view in {len(truncated)} CT slices")
    print(f"written          {args.out} (volume mu_per_cm)")


def register(commands: argparse._SubParsersAction) -> None:
    mumap = commands.add_parser("mumap", help="mu-map at 511 keV from a CT or Dixon MR DICOM series (HDF5)",
                                epilog="examples:\n  petrecon mumap --ct ct_series/ --scanner b64 --out mumap.h5\n"
                                       "  petrecon mumap --dixon water/ fat/ --scanner mmr --out mumap.h5",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    source = mumap.add_mutually_exclusive_group(required=True)
    source.add_argument("--ct", metavar="DICOMDIR", help="low-dose CT series (HU; kVp from the header)")
    source.add_argument("--dixon", nargs=2, metavar=("WATERDIR", "FATDIR"),
                        help="Dixon water and fat series (or in- and opposed-phase with --in-opposed)")
    mumap.add_argument("--in-opposed", action="store_true", help="the Dixon series are in- and opposed-phase")
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
