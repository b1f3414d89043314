"""The ``petrecon`` command: thin wrappers, one library call per sub-command.

Errors that petrecon raises on purpose print as one line with exit code 2;
``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from petrecon import __version__
from petrecon.errors import FormatError, PetreconError


def _cmd_scanners(args: argparse.Namespace) -> None:
    from petrecon.geometry import SCANNERS

    for key, scanner in SCANNERS.items():
        print(f"{key:12s} {scanner.description}")


def _cmd_info(args: argparse.Namespace) -> None:
    from petrecon.geometry import default_layout

    layout = default_layout(args.scanner, span=args.span, tof=args.tof)
    summary = layout.to_dict()
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    for key, value in summary.items():
        print(f"{key:28s} {value}")


def _cmd_demo(args: argparse.Namespace) -> None:
    from petrecon.demo import run_demo
    from petrecon.recon import OsemProtocol

    protocol = OsemProtocol(args.iterations, args.subsets, args.fwhm_mm)
    report = run_demo(Path(args.out), protocol=protocol, total_counts=args.counts, seed=args.seed,
                      overwrite=args.overwrite)
    for line in report.summary_lines():
        print(line)


# ----- raw data and image I/O -------------------------------------------------------------------------------
def _cmd_histogram(args: argparse.Namespace) -> None:
    import time

    from petrecon.geometry import default_layout
    from petrecon.io.listmode import histogram_listmode_to_container, parse_frame

    start_s, end_s = parse_frame(args.frame) if args.frame else (0.0, None)
    layout = default_layout(args.scanner, span=args.span, tof=False)
    started = time.perf_counter()
    result = histogram_listmode_to_container(Path(args.listmode), layout, Path(args.out), start_s=start_s,
                                             end_s=end_s, progress=args.progress, overwrite=args.overwrite)
    elapsed_s = time.perf_counter() - started
    for line in result.summary_lines():
        print(line)
    print(f"written          {args.out} ({elapsed_s:.1f} s in all: input hashing and HDF5 compression included)")


def _cmd_export(args: argparse.Namespace) -> None:
    from petrecon.io.siemens import open_export

    lines = open_export(Path(args.folder)).summary_lines()
    print("\n".join(lines) if lines else f"no Siemens raw-data objects in {args.folder}")


def _add_io_commands(commands: argparse._SubParsersAction) -> None:
    histogram = commands.add_parser("histogram", help="histogram PETLINK list-mode into prompts/delays sinograms (HDF5)")
    histogram.add_argument("listmode", help="list-mode: .l / .bf file, Siemens DICOM wrapper (.dcm) or export folder")
    histogram.add_argument("--scanner", required=True, help="registry name, e.g. mmr")
    histogram.add_argument("--span", type=int, default=None, help="axial compression, e.g. 1 or 11 (default: the scanner's)")
    histogram.add_argument("--frame", default=None, help="time frame START_S:END_S in seconds (END_S may be empty)")
    histogram.add_argument("--out", required=True, help="output HDF5 container (datasets prompts, delays)")
    histogram.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                           help="progress bar (--no-progress or --quiet to hide)")
    histogram.add_argument("--quiet", dest="progress", action="store_false", help="same as --no-progress")
    histogram.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    histogram.set_defaults(run=_cmd_histogram)

    export = commands.add_parser("export", help="list the raw-data objects of a Siemens export folder")
    export.add_argument("folder", help="folder the scanner exported (.dcm wrappers + .bf payloads)")
    export.set_defaults(run=_cmd_export)


# ----- attenuation ---------------------------------------------------------------------------------------------
def _cmd_mumap(args: argparse.Namespace) -> None:
    from petrecon.attenuation.mumap import mu_map_from_ct_series, mu_map_from_dixon_series, write_mu_map
    from petrecon.geometry import get_scanner
    from petrecon.volume import ImageGrid

    scanner = get_scanner(args.scanner)
    grid = ImageGrid.centred(scanner.default_image_shape, scanner.default_voxel_size_mm)
    if args.ct:
        mu, inputs = mu_map_from_ct_series(args.ct, grid, fwhm_mm=args.fwhm_mm), [args.ct]
    else:
        kind = "in_opposed" if args.in_opposed else "water_fat"
        mu, inputs = mu_map_from_dixon_series(*args.dixon, grid, kind=kind), list(args.dixon)
    write_mu_map(args.out, mu, scanner=args.scanner, inputs=inputs, overwrite=args.overwrite)
    truncated = mu.metadata.get("truncated_slices") or []
    print(f"mu-map           {mu.metadata['source']} -> {args.scanner} grid {grid.shape}, "
          f"max {float(mu.data.max()):.4f} cm^-1")
    if truncated:
        print(f"warning          the body touches the CT field of view in {len(truncated)} CT slices")
    print(f"written          {args.out} (volume mu_per_cm)")


def _add_attenuation_commands(commands: argparse._SubParsersAction) -> None:
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
    mumap.add_argument("--out", required=True, help="output HDF5 container (volume mu_per_cm)")
    mumap.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    mumap.set_defaults(run=_cmd_mumap)


# --- quantification: SUV of ROIs, NEMA NU 2 image quality, cohort statistics ----------------------

def _pet_volume(path: str, name: str | None):
    """The PET volume of a DICOM series folder, or the named (or only) volume of an HDF5 container."""
    from petrecon.io import read_container
    from petrecon.io.dicom import read_pet_series

    if Path(path).is_dir():
        return read_pet_series(path)
    container = read_container(path)
    names = list(container.volumes)
    name = name or (names[0] if len(names) == 1 else None)
    if name not in container.volumes:
        raise FormatError(path, f"/volumes/{name or ''}",
                          f"name one volume with --volume; the container holds {', '.join(names) or 'none'}")
    return container.volumes[name]


def _cmd_suv(args: argparse.Namespace) -> None:
    from petrecon.quant.report import roi_records
    from petrecon.quant.suv_dicom import suv_volume

    from petrecon.io.dicom import PATIENT_POSITION_SIGNS

    volume = _pet_volume(args.input, args.volume)
    if not str(volume.metadata.get("units", "")).upper().startswith("SUV"):
        volume = suv_volume(volume, args.normalisation)
    signs = PATIENT_POSITION_SIGNS.get(str(volume.metadata.get("patient_position", "HFS")), (1, 1, 1))
    records = roi_records(volume, args.roi, axis_signs=signs)
    if args.json:
        print(json.dumps(records, indent=2))
        return
    print(f"units {volume.metadata.get('units')}")
    for r in records:
        print(f"{r['roi']}: max {r['suv_max']:.3f}  mean {r['suv_mean']:.3f}  peak {r['suv_peak']:.3f}  "
              f"SD {r['suv_sd']:.3f}  volume {r['volume_ml']:.2f} ml  TLG {r['tlg']:.2f}")


def _cmd_nema(args: argparse.Namespace) -> None:
    from petrecon.quant.nema import analyse_nema
    from petrecon.quant.plot import plot_recovery

    volume = _pet_volume(args.input, args.volume)
    truth = volume.metadata.get("nema_truth", {})
    ratio = args.ratio if args.ratio is not None else truth.get("activity_ratio")
    activity = args.sphere_activity if args.sphere_activity is not None else truth.get("sphere_activity")
    result = analyse_nema(volume, activity_ratio=ratio, sphere_activity=activity)
    if args.plot:
        plot_recovery(result, args.plot, overwrite=args.overwrite)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return
    print(f"background mean {result.background_mean:.6g}, lung residual {result.lung_residual_percent:.1f} %, "
          f"true sphere {result.sphere_activity:.6g} ({result.activity_ratio:.2f}:1)")
    print("d_mm   max        mean_a50   peak       RCmax  RCa50  RCpeak  Q_H%   N%")
    for s in result.spheres:
        print(f"{s.diameter_mm:<6g} {s.max:<10.4g} {s.mean_a50:<10.4g} {s.peak:<10.4g} {s.rc_max:<6.3f} "
              f"{s.rc_mean_a50:<6.3f} {s.rc_peak:<7.3f} {s.contrast_percent:<6.1f} {s.background_variability_percent:.2f}")
    for standard, verdict in result.earl.items():
        print(f"{standard.upper()}: {'passes' if verdict['passes'] else 'fails'}")


def _cmd_cohort(args: argparse.Namespace) -> None:
    from petrecon.quant.cohort import analyse_cohort, format_table, read_lesions, write_tables

    report = analyse_cohort(read_lesions(args.lesions))
    if args.out:
        write_tables(report, args.out, overwrite=args.overwrite)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return
    for title, rows in (("per patient", report.patients), ("per entity", report.entities),
                        ("per site", report.sites), ("tests", [t.__dict__ for t in report.tests])):
        print(f"== {title}\n{format_table(rows)}\n")
    if report.comparison:
        print(f"== tracer comparison per lesion\n{format_table([report.comparison])}")


def _add_quant_commands(commands: argparse._SubParsersAction) -> None:
    suv = commands.add_parser("suv", help="SUV statistics of ROIs in a PET volume (SUV from its DICOM header)")
    suv.add_argument("input", help="PET DICOM series folder, or petrecon HDF5 container holding the PET volume")
    suv.add_argument("--volume", help="volume name in the container (default: its only volume)")
    suv.add_argument("--roi", action="append", required=True,
                     help="sphere:x,y,z,r or box:x0,y0,z0,x1,y1,z1 in mm, DICOM patient coordinates (repeatable)")
    suv.add_argument("--normalisation", default="bw",
                     choices=["bw", "lbm-james", "lbm-janmahasatian", "bsa", "ibw"], help="SUV normalisation")
    suv.add_argument("--json", action="store_true", help="print JSON (one record per ROI)")
    suv.set_defaults(run=_cmd_suv)

    nema = commands.add_parser("nema", help="NEMA NU 2 image quality and EARL recovery of an IEC phantom volume")
    nema.add_argument("input", help="PET DICOM series folder (any scanner), or petrecon HDF5 container")
    nema.add_argument("--volume", help="volume name in the container (default: its only volume)")
    nema.add_argument("--ratio", type=float, help="true sphere:background ratio (default: metadata nema_truth)")
    nema.add_argument("--sphere-activity", type=float, help="true sphere concentration in image units")
    nema.add_argument("--json", action="store_true", help="print JSON (one record per sphere)")
    nema.add_argument("--plot", help="write recovery curves with the EARL bands to this PNG")
    nema.add_argument("--overwrite", action="store_true", help="replace an existing plot")
    nema.set_defaults(run=_cmd_nema)

    cohort = commands.add_parser("cohort", help="summaries and statistics of a lesion table (CSV)")
    cohort.add_argument("lesions", help="CSV: patient, entity, lesion, site, tracer, suv_max, tb_ratio, detected")
    cohort.add_argument("--out", help="folder for patients.csv, entities.csv, sites.csv, tests.csv, comparison.csv")
    cohort.add_argument("--json", action="store_true", help="print JSON")
    cohort.add_argument("--overwrite", action="store_true", help="replace existing tables")
    cohort.set_defaults(run=_cmd_cohort)

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
    from petrecon.simulate.acquisition import simulate_to_file

    study, paths = simulate_to_file(
        args.out, args.phantom, overwrite=args.overwrite, scanner=args.scanner, span=args.span,
        isotope=args.isotope, parameters=_phantom_parameters(args) or None,
        injected_activity_bq=None if args.activity_mbq is None else args.activity_mbq * 1e6,
        duration_s=args.duration_s, frame_start_s=args.frame_start_s, seed=args.seed, noise=args.noise,
        listmode=args.listmode, progress=not args.quiet)
    attributes = study.container.attributes
    print(f"phantom {attributes['phantom']} on {attributes['scanner']} ({study.container.layout.shape}), "
          f"{attributes['isotope']}, {attributes['injected_activity_bq'] / 1e6:.1f} MBq, "
          f"frame {attributes['frame_start_s']:.0f} + {attributes['duration_s']:.0f} s, seed {attributes['seed']}")
    for key, value in attributes["counts"].items():
        print(f"{key:8s} {value:14.4g} counts")
    for path in paths:
        print(f"wrote    {path}")


# ----- reconstruction ------------------------------------------------------------------------------------------
def _recon_protocol(args: argparse.Namespace):
    import dataclasses

    from petrecon.recon import OsemProtocol, ReconstructionProtocol

    protocol = ReconstructionProtocol.load(args.protocol)
    osem = protocol.osem
    osem = OsemProtocol(args.iterations or osem.n_iterations, args.subsets or osem.n_subsets,
                        osem.post_filter_fwhm_mm if args.fwhm_mm is None else args.fwhm_mm)
    switched_off = {name: False for name in ("normalisation", "attenuation", "randoms", "scatter", "dead_time", "decay")
                    if name in args.no}
    corrections = dataclasses.replace(protocol.corrections, **switched_off)
    psf = protocol.psf_fwhm_mm if args.psf_fwhm_mm is None else args.psf_fwhm_mm
    return dataclasses.replace(protocol, osem=osem, corrections=corrections, psf_fwhm_mm=psf)


def _recon_mu_map(args: argparse.Namespace):
    from petrecon.attenuation.mumap import mu_map_from_ct_series, mu_map_from_dixon_series
    from petrecon.io import read_container

    if args.mumap_ct:
        return mu_map_from_ct_series(args.mumap_ct)
    if args.mumap_dixon:
        return mu_map_from_dixon_series(*args.mumap_dixon, kind="in_opposed" if args.in_opposed else "water_fat")
    if args.mumap:
        return read_container(args.mumap).volumes["mu_per_cm"]
    return None


def _cmd_recon(args: argparse.Namespace) -> None:
    from petrecon.io import Container, read_container, write_container
    from petrecon.io.container import make_provenance
    from petrecon.recon.study import reconstruct_study

    protocol = _recon_protocol(args)
    study = read_container(args.study)
    result = reconstruct_study(study, protocol, mu=_recon_mu_map(args), progress=not args.quiet)
    provenance = make_provenance(protocol=protocol, scanner=study.layout.scanner.name, input_files=[args.study],
                                 corrected_image=list(result.corrected))
    write_container(args.out, Container(volumes={"activity_bq_per_ml": result.volume}, attributes=study.attributes,
                                        provenance=provenance), overwrite=args.overwrite)
    volume = result.volume
    print(f"reconstructed    {args.study}: {protocol.osem.n_iterations} iterations x {protocol.osem.n_subsets} "
          f"subsets, {protocol.osem.post_filter_fwhm_mm:g} mm post-filter, image {volume.grid.shape}")
    print(f"corrections      {' '.join(result.corrected) or 'none'}")
    print(f"activity         max {float(volume.data.max()):.4g} Bq/ml, mean {float(volume.data.mean()):.4g} Bq/ml")
    print(f"written          {args.out} (volume activity_bq_per_ml)")


def _add_recon_commands(commands: argparse._SubParsersAction) -> None:
    recon = commands.add_parser(
        "recon", help="AW-OSEM reconstruction of a study container to Bq/ml (HDF5)",
        epilog="examples:\n  petrecon recon study.h5 --out recon.h5\n"
               "  petrecon recon study.h5 --mumap-ct ct_series/ --out recon_ct.h5\n"
               "  petrecon recon study.h5 --mumap-dixon water/ fat/ --no scatter --out recon_mr.h5",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    recon.add_argument("study", help="study container (petrecon simulate, petrecon histogram + corrections)")
    recon.add_argument("--protocol", default="clinical", help="protocol TOML file or shipped name (default clinical)")
    mu = recon.add_mutually_exclusive_group()
    mu.add_argument("--mumap-ct", metavar="DICOMDIR", help="attenuation from this CT series (replaces the study's)")
    mu.add_argument("--mumap-dixon", nargs=2, metavar=("WATERDIR", "FATDIR"), help="attenuation from Dixon MR")
    mu.add_argument("--mumap", metavar="MUMAP.h5", help="attenuation from a petrecon mumap container")
    recon.add_argument("--in-opposed", action="store_true", help="the Dixon series are in- and opposed-phase")
    recon.add_argument("--no", action="append", default=[], metavar="CORRECTION",
                       choices=["normalisation", "attenuation", "randoms", "scatter", "dead_time", "decay"],
                       help="turn a correction off (repeatable): normalisation, attenuation, randoms, scatter, "
                            "dead_time, decay")
    recon.add_argument("--iterations", type=int, default=None, help="override the protocol's iterations")
    recon.add_argument("--subsets", type=int, default=None, help="override the protocol's subsets")
    recon.add_argument("--fwhm-mm", type=float, default=None, help="override the post-filter FWHM (mm)")
    recon.add_argument("--psf-fwhm-mm", type=float, default=None, help="image-space PSF in the system model (mm)")
    recon.add_argument("--out", required=True, help="output container (volume activity_bq_per_ml)")
    recon.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    recon.add_argument("--quiet", action="store_true", help="no progress bars")
    recon.set_defaults(run=_cmd_recon)


# ----- harmonisation ---------------------------------------------------------------------------------------------
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
    shape = (*scanner.default_image_shape[:2], 2 * n_rings - 1)
    return layout, ImageGrid.centred(shape, (*scanner.default_voxel_size_mm[:2], short.ring_spacing_mm / 2))


def _cmd_harmonize(args: argparse.Namespace) -> None:
    from petrecon.harmonize import harmonise

    layout, grid = harmonisation_layout(args.scanner, args.rings)
    result = harmonise(layout, args.standard, grid=grid, progress=not args.quiet)
    result.protocol.save(args.out, overwrite=args.overwrite)
    print("\n".join(result.summary_lines()))
    print(f"written          {args.out}")


def _add_harmonize_commands(commands: argparse._SubParsersAction) -> None:
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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``petrecon`` command."""
    parser = argparse.ArgumentParser(prog="petrecon", description="Quantitative PET reconstruction for Siemens Biograph data.")
    parser.add_argument("--version", action="version", version=f"petrecon {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    commands = parser.add_subparsers(dest="command", required=True)

    scanners = commands.add_parser("scanners", help="list the scanner registry")
    scanners.set_defaults(run=_cmd_scanners)

    info = commands.add_parser("info", help="geometry and sinogram shape of one scanner")
    info.add_argument("scanner", help="registry name, e.g. mmr, mct, mct-tof, b64, b64-truev, test")
    info.add_argument("--span", type=int, default=None, help="axial compression (default: the scanner's)")
    info.add_argument("--tof", action=argparse.BooleanOptionalAction, default=None, help="TOF sinogram (TOF scanners only)")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(run=_cmd_info)

    demo = commands.add_parser("demo", help="simulate a phantom, reconstruct it by AW-OSEM, report recovery")
    demo.add_argument("--out", default="petrecon-demo", help="output folder (default: ./petrecon-demo)")
    demo.add_argument("--iterations", type=int, default=4, help="OSEM iterations (default 4)")
    demo.add_argument("--subsets", type=int, default=8, help="OSEM subsets (default 8)")
    demo.add_argument("--fwhm-mm", type=float, default=5.0, help="Gaussian post-filter FWHM in mm (default 5)")
    demo.add_argument("--counts", type=float, default=2e7, help="expected true counts (default 2e7)")
    demo.add_argument("--seed", type=int, default=0, help="seed of the Poisson noise (default 0)")
    demo.add_argument("--overwrite", action="store_true", help="replace the outputs of an earlier run")
    demo.set_defaults(run=_cmd_demo)
    _add_io_commands(commands)
    _add_attenuation_commands(commands)
    _add_recon_commands(commands)
    _add_harmonize_commands(commands)
    _add_quant_commands(commands)


    phantoms = commands.add_parser("phantoms", help="list the shipped phantoms")
    phantoms.add_argument("--verbose", "-v", action="store_true", help="also list each phantom's parameters")
    phantoms.set_defaults(run=_cmd_phantoms)

    simulate = commands.add_parser("simulate", help="simulate a phantom analytically into a study container")
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
    simulate.add_argument("--listmode", action="store_true", help="also write PETLINK list-mode (OUT with suffix .l)")
    simulate.add_argument("--out", default="study.h5", help="output container (default study.h5)")
    simulate.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    simulate.add_argument("--quiet", action="store_true", help="no progress bars")
    simulate.set_defaults(run=_cmd_simulate)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``petrecon`` console script."""
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except PetreconError as error:
        if args.debug:
            raise
        print(f"petrecon: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
