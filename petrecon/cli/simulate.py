"""Sub-commands ``phantoms`` and ``simulate``."""

from __future__ import annotations

import argparse


def _cmd_phantoms(args: argparse.Namespace) -> None:
    from petrecon.simulate.phantom import load_phantom, shipped_phantoms

    for name in shipped_phantoms():
        phantom = load_phantom(name)
        parameters = ", ".join(f"{key}={value}" for key, value in phantom.parameters.items())
        print(f"{name:18s} {phantom.description}")
        if parameters and args.verbose:
            print(f"{'':18s} parameters: {parameters}")


def _phantom_parameters(args: argparse.Namespace) -> dict:
    from petrecon.errors import ParameterError

    parameters = {}
    for item in args.set or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ParameterError(f"--set expects NAME=VALUE, got {item!r}")
        parameters[key] = {"true": True, "false": False}.get(value.lower(), None)
        if parameters[key] is None:
            try:
                parameters[key] = float(value)
            except ValueError:
                raise ParameterError(f"--set {key}: {value!r} is neither a number nor true/false") from None
    if args.ratio is not None:
        parameters["ratio"] = args.ratio
    return parameters


def _reduced(args: argparse.Namespace):
    """The reduced sampling asked for by ``--reduced``, ``--rings``, ``--fov-mm`` or ``--view-mashing``; else None."""
    from petrecon.geometry.reduced import (DEFAULT_FIELD_OF_VIEW_MM, DEFAULT_RINGS, DEFAULT_VIEW_MASHING,
                                           reduced_sampling)

    if not (args.reduced or args.rings is not None or args.fov_mm is not None or args.view_mashing is not None):
        return None
    return reduced_sampling(args.scanner, n_rings=DEFAULT_RINGS if args.rings is None else args.rings,
                            field_of_view_mm=DEFAULT_FIELD_OF_VIEW_MM if args.fov_mm is None else args.fov_mm,
                            view_mashing=DEFAULT_VIEW_MASHING if args.view_mashing is None else args.view_mashing)


def _cmd_simulate(args: argparse.Namespace) -> None:
    from petrecon.errors import ParameterError

    sampling = _reduced(args)
    if sampling is not None and args.span is not None:
        raise ParameterError("--span: the reduced sampling keeps the scanner's span; "
                             "drop --span or the reduced options")
    scanner = args.scanner if sampling is None else sampling.layout
    if sampling is not None:
        print(f"sampling {sampling.description}")
    if args.beds is not None:  # whole-body: overlapping bed positions (petrecon.simulate.multibed)
        from petrecon.simulate.multibed import simulate_whole_body_to_file

        if args.listmode or args.ct_dicom or args.dixon_dicom:
            raise ParameterError("--listmode, --ct-dicom and --dixon-dicom are for single-bed studies; drop them or "
                                 "--beds")
        study, paths = simulate_whole_body_to_file(
            args.out, args.phantom, overwrite=args.overwrite, n_beds=args.beds, overlap_percent=args.overlap_percent,
            scanner=scanner, span=args.span, isotope=args.isotope, parameters=_phantom_parameters(args) or None,
            injected_activity_bq=None if args.activity_mbq is None else args.activity_mbq * 1e6,
            duration_s=args.duration_s, frame_start_s=args.frame_start_s, seed=args.seed, noise=args.noise,
            scatter=args.scatter, progress=not args.quiet, patient_position=args.patient_position)
        for b, (offset, start) in enumerate(zip(study.bed_offsets_mm(), study.frame_starts_s())):
            print(f"bed {b}    table {offset:+8.1f} mm, start {start:.0f} s, "
                  f"{study.beds[b].attributes['counts']['prompts']:.4g} prompts")
        for path in paths:
            print(f"wrote    {path}")
        return
    from petrecon.simulate.acquisition import simulate_to_file
    from petrecon.simulate.anatomy import check_anatomy_outputs, write_study_anatomy
    from petrecon.simulate.phantom import load_phantom

    phantom = load_phantom(args.phantom, _phantom_parameters(args) or None)
    check_anatomy_outputs(args.ct_dicom, args.dixon_dicom, overwrite=args.overwrite)
    study, paths = simulate_to_file(
        args.out, phantom, overwrite=args.overwrite, scanner=scanner, span=args.span, isotope=args.isotope,
        injected_activity_bq=None if args.activity_mbq is None else args.activity_mbq * 1e6,
        duration_s=args.duration_s, frame_start_s=args.frame_start_s, seed=args.seed, noise=args.noise,
        scatter=args.scatter, listmode=args.listmode, progress=not args.quiet, patient_position=args.patient_position,
        bed_position_mm=args.bed_position_mm)
    attributes = study.container.attributes
    print(f"phantom {attributes['phantom']} on {attributes['scanner']} ({study.container.layout.shape}), "
          f"{attributes['isotope']}, {attributes['injected_activity_bq'] / 1e6:.1f} MBq, "
          f"frame {attributes['frame_start_s']:.0f} + {attributes['duration_s']:.0f} s, seed {attributes['seed']}")
    for key, value in attributes["counts"].items():
        print(f"{key:8s} {value:14.4g} counts")
    paths += write_study_anatomy(phantom, study.container, ct_folder=args.ct_dicom, dixon_folder=args.dixon_dicom,
                                 overwrite=args.overwrite)
    for path in paths:
        print(f"wrote    {path}")


def _range(text: str) -> tuple[float, float]:
    """``LOW:HIGH`` (or one number) as a pair of floats, for argparse."""
    low, _, high = text.partition(":")
    try:
        return float(low), float(high or low)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW:HIGH (numbers), got {text!r}") from None


def _cmd_simulate_cohort(args: argparse.Namespace) -> None:
    from petrecon.errors import ParameterError
    from petrecon.simulate.cohort_study import simulate_cohort

    harmonisation = {}
    for item in args.harmonisation or []:
        scanner, sep, path = item.partition("=")
        if not sep or not path:
            raise ParameterError(f"--harmonisation expects SCANNER=FILE, got {item!r}")
        harmonisation[scanner] = path
    reduced = args.rings is not None or args.fov_mm is not None or args.view_mashing is not None
    if args.full and reduced:
        raise ParameterError("--full and --rings/--fov-mm/--view-mashing exclude each other")
    options = {key: value for key, value in (("n_rings", args.rings), ("field_of_view_mm", args.fov_mm),
                                             ("view_mashing", args.view_mashing)) if value is not None}
    result = simulate_cohort(args.out, n_patients=args.patients, scanners=args.scanners.split(","), full=args.full,
                             seed=args.seed, activity_mbq=args.activity_mbq, uptake_min=args.uptake_min,
                             weight_kg=args.weight_kg, lesions=args.lesions, harmonisation=harmonisation,
                             scatter=args.scatter, overwrite=args.overwrite, progress=not args.quiet, **options)
    for scanner, description in result.samplings.items():
        print(f"sampling {description}")
    for study in result.studies:
        print(f"{study['id']:10s} uptake {study['uptake_min']:3d} min, {study['counts']['prompts']:.4g} prompts, "
              f"{study['raw'].relative_to(result.out_dir)} + "
              + " + ".join(str(path.relative_to(result.out_dir)) for path in study["anatomy"]))
    for line in result.outside_fov:
        print(f"outside  {line} (within 10 mm of an end of the axial field of view, or beyond)")
    print(f"wrote    {result.cohort_file}\nwrote    {result.truth_file}")
    print(f"time     {result.seconds:.1f} s for {len(result.studies)} studies")


REDUCED_HELP = ("reduced sampling for CPUs (petrecon.geometry.reduced): keeps the ring radius, crystal pitch, radial "
                "bin size, in-plane voxel size and span, so in-plane resolution and recovery are the scanner's; cuts "
                "the axial extent (N rings around the axial centre, default 28: ~112 mm), crops radial bins and image "
                "to a transaxial field of view (default 400 mm) and mashes views (default 2). The reduced layout is "
                "recorded in the container: petrecon recon and batch need no options.")


def _add_reduced_options(parser: argparse.ArgumentParser, *, flag: bool) -> None:
    """``--rings``, ``--fov-mm``, ``--view-mashing`` (and ``--reduced`` when ``flag``), one group."""
    group = parser.add_argument_group("reduced sampling", REDUCED_HELP)
    if flag:
        group.add_argument("--reduced", action="store_true", help="the reduced sampling with its defaults")
    implies = " (implies --reduced)" if flag else ""
    group.add_argument("--rings", type=int, default=None, metavar="N", help=f"rings kept (default 28){implies}")
    group.add_argument("--fov-mm", type=float, default=None, metavar="MM",
                       help=f"transaxial field of view (default 400){implies}")
    group.add_argument("--view-mashing", type=int, default=None, metavar="N",
                       help=f"views mashed together (default 2){implies}")


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``phantoms`` and ``simulate``."""
    phantoms = commands.add_parser("phantoms", help="list the shipped phantoms",
                                   epilog="examples:\n  petrecon phantoms\n  petrecon phantoms --verbose", formatter_class=argparse.RawDescriptionHelpFormatter)
    phantoms.add_argument("--verbose", "-v", action="store_true", help="also list each phantom's parameters")
    phantoms.set_defaults(run=_cmd_phantoms)

    simulate = commands.add_parser(
        "simulate", help="simulate a phantom analytically into a study container",
        epilog="examples:\n  petrecon simulate nema-iec --scanner mmr --ratio 10 --out nema.h5\n"
               "  petrecon simulate uniform-cylinder --scanner test --duration-s 60 --out cyl.h5 --quiet\n"
               "  petrecon simulate pentixafor-torso --scanner mmr --isotope Ga68 --activity-mbq 200 --listmode "
               "--out torso.h5\n"
               "  petrecon simulate pentixafor-torso --scanner b64 --reduced --bed-position-mm 40 --out torso-cpu.h5\n"
               "  petrecon simulate pentixafor-torso --scanner mmr --reduced --dixon-dicom mr/ --out torso-mr.h5\n"
               "  petrecon simulate nema-iec --scanner mmr --rings 20 --ratio 10 --out nema-cpu.h5",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    simulate.add_argument("phantom", help="shipped phantom name (petrecon phantoms) or a TOML file")
    simulate.add_argument("--scanner", default="mmr", help="registry scanner (default mmr)")
    simulate.add_argument("--span", type=int, default=None, help="axial compression (default: the scanner's)")
    simulate.add_argument("--isotope", default=None, help="F18, Ga68, ... (default: the phantom's)")
    simulate.add_argument("--activity-mbq", type=float, default=None, help="injected activity (default: the phantom's)")
    simulate.add_argument("--duration-s", type=float, default=None, help="frame duration (default: the phantom's)")
    simulate.add_argument("--frame-start-s", type=float, default=None, help="frame start after injection (default: the phantom's)")
    simulate.add_argument("--ratio", type=float, default=None, help="sphere:background ratio (NEMA: 4 or 10)")
    simulate.add_argument("--set", action="append", metavar="NAME=VALUE", help="set a phantom parameter (repeatable)")
    simulate.add_argument("--seed", type=int, default=0, help="seed of every random draw (default 0)")
    simulate.add_argument("--noise", action=argparse.BooleanOptionalAction, default=True, help="Poisson noise (default on)")
    simulate.add_argument("--scatter", action=argparse.BooleanOptionalAction, default=True,
                          help="single scatter scaled to the scanner's NEMA scatter fraction (default on)")
    simulate.add_argument("--listmode", action="store_true",
                          help="also write PETLINK list-mode (OUT with suffix .l, Interfile header .l.hdr)")
    simulate.add_argument("--patient-position", default="HFS", choices=["HFS", "HFP", "FFS", "FFP"], type=str.upper,
                          help="how the phantom (patient coordinates) lies in the gantry (default HFS)")
    simulate.add_argument("--bed-position-mm", type=float, default=0.0, metavar="MM",
                          help="single bed: the Siemens 'start horizontal bed position' (default 0)")
    simulate.add_argument("--beds", type=int, default=None, metavar="N",
                          help="whole-body: N overlapping bed positions (OUT + OUT.bed<i>.h5 files)")
    simulate.add_argument("--overlap-percent", type=float, default=25.0,
                          help="whole-body: bed overlap in %% of the axial field of view (default 25)")
    simulate.add_argument("--ct-dicom", metavar="DIR", default=None,
                          help="also write the phantom's CT (HU of its materials) as a DICOM CT series, placed as the "
                               "emission (the PET/CT's attenuation CT)")
    simulate.add_argument("--dixon-dicom", metavar="DIR", default=None,
                          help="also write its Dixon MR as DIR/water and DIR/fat DICOM series (the PET/MR's: "
                               "petrecon recon --mumap-dixon DIR/water DIR/fat makes the 4-class mu-map without bone)")
    _add_reduced_options(simulate, flag=True)
    simulate.add_argument("--out", default="study.h5", help="output container (default study.h5)")
    simulate.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    simulate.add_argument("--quiet", action="store_true", help="no progress bars")
    simulate.set_defaults(run=_cmd_simulate)

    cohort = commands.add_parser(
        "simulate-cohort", help="simulate a 68Ga-pentixafor PET/CT + PET/MR cohort (raw data, CT, Dixon MR, "
                                "cohort file, truth)",
        description="Simulate each patient on each scanner (raw/<patient>-<scanner>.h5), with the PET/CT's low-dose "
                    "CT (ct/<patient>/) and the PET/MR's Dixon water and fat series (mr/<patient>/water, fat), "
                    "the cohort file of petrecon batch (cohort.toml) and the phantom truth (truth.csv). Reduced "
                    "sampling unless --full.",
        epilog="examples:\n  petrecon simulate-cohort --out study/\n"
               "  petrecon simulate-cohort --out study/ --patients 6 --lesions random --seed 3 --quiet\n"
               "  petrecon simulate-cohort --out study/ --harmonisation b64=earl1-b64.toml "
               "--harmonisation mmr=earl1-mmr.toml\n"
               "  petrecon batch study/cohort.toml --out results/",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    cohort.add_argument("--out", required=True, help="output folder (created)")
    cohort.add_argument("--patients", type=int, default=4, help="number of patients (default 4)")
    cohort.add_argument("--scanners", default="b64,mmr",
                        help="scanners, in scan order (default b64,mmr: PET/CT then PET/MR; mmr gets Dixon MR, "
                             "the others CT)")
    cohort.add_argument("--full", action="store_true", help="the scanners' full sampling (for a GPU)")
    cohort.add_argument("--seed", type=int, default=0, help="seed of the patients and the simulations (default 0)")
    cohort.add_argument("--activity-mbq", type=_range, default=(150.0, 250.0), metavar="LOW:HIGH",
                        help="injected activity range (default 150:250; study 147-275 MBq)")
    cohort.add_argument("--uptake-min", type=_range, default=(55.0, 75.0), metavar="LOW:HIGH",
                        help="injection to first scan (default 55:75 min); the next scanner 10 min later")
    cohort.add_argument("--weight-kg", type=_range, default=(60.0, 95.0), metavar="LOW:HIGH",
                        help="body weight range (default 60:95)")
    cohort.add_argument("--lesions", choices=["all", "random"], default="all",
                        help="all four catalogue lesions, or a random subset of at least 2 per patient")
    cohort.add_argument("--harmonisation", action="append", metavar="SCANNER=FILE",
                        help="image-harmonisation file of a scanner's studies (repeatable)")
    cohort.add_argument("--scatter", action=argparse.BooleanOptionalAction, default=True,
                        help="simulate scatter (default on; --no-scatter: ~4x faster, attenuation effects alone)")
    _add_reduced_options(cohort, flag=False)
    cohort.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    cohort.add_argument("--quiet", action="store_true", help="no progress bar")
    cohort.set_defaults(run=_cmd_simulate_cohort)
