"""Sub-commands ``harmonize`` (EARL protocols and image filters) and ``filter`` (apply an image filter to a series)."""

from __future__ import annotations

import argparse

from petrecon.checks import check_memory
from petrecon.errors import ParameterError
from petrecon.io.atomic import check_outputs

#: float32 sinograms a harmonisation holds at once (prompts, corrections, projections): for the memory check.
SINOGRAM_COPIES = 12


def harmonisation_layout(scanner_name: str, n_rings: int | None):
    """The scanner's full layout, or its reduced sampling with ``n_rings`` rings
    (:func:`petrecon.geometry.reduced.reduced_sampling`: its image grid is the reduced scanner's default)."""
    import math

    from petrecon.geometry import get_scanner
    from petrecon.geometry.reduced import full_sampling, reduced_sampling
    from petrecon.quant.nema import BACKGROUND_SLICE_OFFSETS_MM

    # NU 2 background ROIs lie on slices up to 20 mm from the sphere plane (z = 0): slices of half the ring
    # spacing must reach them
    fewest = math.ceil(max(BACKGROUND_SLICE_OFFSETS_MM) / (get_scanner(scanner_name).ring_spacing_mm / 2)) + 1
    if n_rings is not None and n_rings < fewest:
        raise ParameterError(f"--rings {n_rings}: the {scanner_name} needs at least {fewest} rings to image the "
                             f"NEMA background slices {max(BACKGROUND_SLICE_OFFSETS_MM):g} mm from the spheres")
    sampling = full_sampling(scanner_name) if n_rings is None else reduced_sampling(scanner_name, n_rings=n_rings)
    check_memory(sampling.layout.shape, "the phantom's sinogram", copies=SINOGRAM_COPIES)
    return sampling.layout


def _cmd_harmonize(args: argparse.Namespace) -> None:
    check_outputs([args.out], overwrite=args.overwrite)
    from petrecon import harmonize

    if args.nema_image:
        if args.scanner or args.rings or args.image_filter:
            raise ParameterError("--nema-image analyses an existing image: give no --scanner, --rings or "
                                 "--image-filter")
        from petrecon.cli.quant import _pet_volume

        result = harmonize.image_filter_search(_pet_volume(args.nema_image, None), args.standard,
                                               activity_ratio=args.ratio, isotope=args.isotope,
                                               source=str(args.nema_image))
        result.harmonisation.save(args.out, overwrite=args.overwrite)
    else:
        if not args.scanner:
            raise ParameterError("give --scanner (simulate its IEC phantom) or --nema-image (a phantom image)")
        if args.ratio is not None:
            raise ParameterError("--ratio is for --nema-image; the simulated phantom is filled 10:1")
        from petrecon.recon import ReconstructionProtocol

        layout = harmonisation_layout(args.scanner, args.rings)
        isotope = args.isotope or "F18"
        progress = not args.quiet
        if args.image_filter:
            result = harmonize.image_filter_for_scanner(layout, args.standard, isotope=isotope, progress=progress,
                                                        base=ReconstructionProtocol.load(args.protocol))
            result.harmonisation.save(args.out, overwrite=args.overwrite)
        else:
            if args.protocol != "clinical":
                raise ParameterError("--protocol is the base of --image-filter; a harmonised protocol sets its "
                                     "own iterations and filter")
            result = harmonize.harmonise(layout, args.standard, isotope=isotope, progress=progress)
            result.protocol.save(args.out, overwrite=args.overwrite)
    print("\n".join(result.summary_lines()))
    print(f"written          {args.out}")


def _cmd_filter(args: argparse.Namespace) -> None:
    check_outputs([args.dicom], overwrite=args.overwrite)
    from petrecon.quant.image_harmonisation import ImageHarmonisation, filter_pet_series

    harmonisation = ImageHarmonisation.load(args.harmonisation)
    files = filter_pet_series(args.series, harmonisation, args.dicom, overwrite=args.overwrite)
    print(f"{harmonisation.name}: extra {harmonisation.fwhm_mm:g} mm Gaussian on {args.series}")
    print(f"written          {args.dicom} ({len(files)} slices)")


def register(commands: argparse._SubParsersAction) -> None:
    harmonize = commands.add_parser(
        "harmonize", help="find the protocol, or the extra image filter, that puts NEMA recovery in the EARL bands",
        epilog="examples:\n"
               "  petrecon harmonize --scanner mmr --standard earl1 --rings 28 --out earl1-mmr.toml\n"
               "  petrecon harmonize --scanner b64 --standard earl2 --rings 28 --isotope Ga68 --out earl2-b64.toml\n"
               "  petrecon harmonize --scanner b64 --standard earl1 --image-filter --rings 28 --out earl1-b64.toml\n"
               "  petrecon harmonize --nema-image iec_series/ --standard earl1 --ratio 10 --out earl1-site.toml",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    harmonize.add_argument("--scanner", help="registry name, e.g. mmr, b64: simulate its IEC phantom")
    harmonize.add_argument("--nema-image", metavar="IEC_SERIES_OR_H5",
                           help="an IEC phantom image (DICOM series folder or HDF5 container) reconstructed with "
                                "the clinical protocol: find the extra image filter on it")
    harmonize.add_argument("--standard", required=True, choices=["earl1", "earl2"], help="EARL standard")
    harmonize.add_argument("--image-filter", action="store_true",
                           help="with --scanner: reconstruct the phantom once with --protocol and find the extra "
                                "image filter (an image harmonisation file for `petrecon filter` and batch)")
    harmonize.add_argument("--protocol", default="clinical",
                           help="base protocol of --image-filter (file or shipped name; default clinical: 4 x 8, "
                                "5 mm)")
    harmonize.add_argument("--rings", type=int, default=None,
                           help="simulate the scanner's reduced sampling with this many rings (28: about a minute "
                                "per run on two CPU cores; in-plane recovery is the scanner's)")
    harmonize.add_argument("--isotope", default=None,
                           help="isotope of the phantom (default F18, EARL's; e.g. Ga68: its positron range lowers "
                                "recovery, so the filter found is narrower)")
    harmonize.add_argument("--ratio", type=float, default=None,
                           help="with --nema-image: true sphere:background ratio (default: the image's recorded "
                                "truth, else EARL's 10)")
    harmonize.add_argument("--out", required=True, help="protocol TOML (or image harmonisation TOML) to write")
    harmonize.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    harmonize.add_argument("--quiet", action="store_true", help="no progress bars")
    harmonize.set_defaults(run=_cmd_harmonize)

    filter_ = commands.add_parser(
        "filter", help="apply an image harmonisation file to a PET DICOM series, writing a new series",
        epilog="examples:\n  petrecon filter pet_series/ --harmonisation earl1-b64.toml --dicom pet_earl1/",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    filter_.add_argument("series", help="PET DICOM series folder (Units BQML, DecayCorrection START)")
    filter_.add_argument("--harmonisation", required=True, help="image harmonisation TOML (petrecon harmonize "
                                                                "--image-filter / --nema-image)")
    filter_.add_argument("--dicom", required=True, help="output folder of the new series")
    filter_.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    filter_.set_defaults(run=_cmd_filter)
