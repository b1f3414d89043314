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


def _cmd_simulate(args: argparse.Namespace) -> None:
    if args.beds is not None:  # whole-body: overlapping bed positions (petrecon.simulate.multibed)
        from petrecon.errors import ParameterError
        from petrecon.simulate.multibed import simulate_whole_body_to_file

        if args.listmode:
            raise ParameterError("--listmode is for single-bed studies; drop it or --beds")
        study, paths = simulate_whole_body_to_file(
            args.out, args.phantom, overwrite=args.overwrite, n_beds=args.beds, overlap_percent=args.overlap_percent,
            scanner=args.scanner, span=args.span, isotope=args.isotope, parameters=_phantom_parameters(args) or None,
            injected_activity_bq=None if args.activity_mbq is None else args.activity_mbq * 1e6,
            duration_s=args.duration_s, frame_start_s=args.frame_start_s, seed=args.seed, noise=args.noise,
            progress=not args.quiet, patient_position=args.patient_position)
        for b, (offset, start) in enumerate(zip(study.bed_offsets_mm(), study.frame_starts_s())):
            print(f"bed {b}    table {offset:+8.1f} mm, start {start:.0f} s, "
                  f"{study.beds[b].attributes['counts']['prompts']:.4g} prompts")
        for path in paths:
            print(f"wrote    {path}")
        return
    from petrecon.simulate.acquisition import simulate_to_file

    study, paths = simulate_to_file(
        args.out, args.phantom, overwrite=args.overwrite, scanner=args.scanner, span=args.span,
        isotope=args.isotope, parameters=_phantom_parameters(args) or None,
        injected_activity_bq=None if args.activity_mbq is None else args.activity_mbq * 1e6,
        duration_s=args.duration_s, frame_start_s=args.frame_start_s, seed=args.seed, noise=args.noise,
        listmode=args.listmode, progress=not args.quiet, patient_position=args.patient_position,
        bed_position_mm=args.bed_position_mm)
    attributes = study.container.attributes
    print(f"phantom {attributes['phantom']} on {attributes['scanner']} ({study.container.layout.shape}), "
          f"{attributes['isotope']}, {attributes['injected_activity_bq'] / 1e6:.1f} MBq, "
          f"frame {attributes['frame_start_s']:.0f} + {attributes['duration_s']:.0f} s, seed {attributes['seed']}")
    for key, value in attributes["counts"].items():
        print(f"{key:8s} {value:14.4g} counts")
    for path in paths:
        print(f"wrote    {path}")



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
               "--out torso.h5",
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
    simulate.add_argument("--out", default="study.h5", help="output container (default study.h5)")
    simulate.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    simulate.add_argument("--quiet", action="store_true", help="no progress bars")
    simulate.set_defaults(run=_cmd_simulate)
