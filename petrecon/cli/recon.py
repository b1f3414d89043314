"""Sub-command ``recon``: AW-OSEM reconstruction of any supported input to Bq/ml (HDF5 and/or DICOM), static or dynamic."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os

from petrecon.io.atomic import check_outputs

_EPILOG = """examples:
  petrecon recon study.h5 --out recon.h5                                 # petrecon container
  petrecon recon scan.s.hdr --norm norm.s.hdr --mumap-ct ct/ --out recon.h5 --dicom pet/   # Interfile sinograms
  petrecon recon scan.mhdr --mumap-ct ct/ --calibration 1.02 --out recon.h5              # Interfile main header
  petrecon recon PETLM.l --scanner mmr --isotope F18 --norm norm.h5 \\
      --mumap-dixon water/ fat/ --calibration 1.02 --out recon.h5                     # PETLINK list-mode
  petrecon recon export/ --mumap-dixon water/ fat/ --dicom pet/                          # Siemens raw-data export
  petrecon recon export/ --mumap-scanner export/UMAP/ --hardware-mumap hw/umap_PT_2291734.v.hdr \\
      hw/umap_HNMCL_10606489.v.hdr hw/umap_HNMCU_10606489.v.hdr --dicom pet/   # the mMR's own mu-maps
  petrecon recon scan.petsird --scanner test --isotope F18 --no normalisation --out r.h5 # PETSIRD
  petrecon recon PETLM.l --scanner mmr --frames 6x10s,4x60s,5x300s --out dyn.h5 --dicom dyn/   # dynamic
  petrecon recon study.h5 --protocol site.toml --no scatter --psf-fwhm-mm 4 --backend cuda --out r.h5
  petrecon recon wb.h5 --whole-body joint --dicom wb/     # whole-body: all beds in one OSEM (default: stitched)

Corrections the input cannot support (no normalisation, no delays, no mu-map,
no live fraction, no isotope) are switched off with a warning and recorded in
the output's provenance ("corrections_not_applied"); the DICOM CorrectedImage
lists what was applied."""


def _recon_protocol(args: argparse.Namespace):
    from petrecon.recon import OsemProtocol, ReconstructionProtocol

    protocol = ReconstructionProtocol.load(args.protocol)
    osem = protocol.osem
    osem = OsemProtocol(osem.n_iterations if args.iterations is None else args.iterations,
                        osem.n_subsets if args.subsets is None else args.subsets,
                        osem.post_filter_fwhm_mm if args.fwhm_mm is None else args.fwhm_mm)
    switched_off = {name: False for name in ("normalisation", "attenuation", "randoms", "scatter", "dead_time", "decay")
                    if name in args.no}
    corrections = dataclasses.replace(protocol.corrections, **switched_off)
    psf = protocol.psf_fwhm_mm if args.psf_fwhm_mm is None else args.psf_fwhm_mm
    calibration = protocol.calibration_bq_per_ml_per_unit if args.calibration is None else args.calibration
    return dataclasses.replace(protocol, osem=osem, corrections=corrections, psf_fwhm_mm=psf,
                               calibration_bq_per_ml_per_unit=calibration,
                               whole_body=args.whole_body or protocol.whole_body)


def _recon_mu_map(args: argparse.Namespace, attributes: dict, cover=None):
    """The mu-map the options name, in the gantry frame of the study with container ``attributes``.

    Hardware mu-maps (``--hardware-mumap``) are added on a grid that also
    covers ``cover`` (the reconstruction grid), placed for the study's bed
    position (:func:`petrecon.cli.attenuation.with_hardware`). A whole-body
    study's mu-map is made in the frame of bed position 0 and moved into
    each bed's frame with the patient (:func:`petrecon.recon.wholebody.bed_frame`):
    the hardware parts ride on the table, so they move with it.
    """
    from petrecon.attenuation.mumap import mu_map_from_ct_series, mu_map_from_dixon_series, mu_map_from_scanner_series
    from petrecon.cli.attenuation import with_hardware
    from petrecon.geometry.patient import study_bed_position_mm
    from petrecon.io import read_container

    frame = {"patient_position": attributes.get("patient_position"),
             "bed_position_mm": study_bed_position_mm(attributes)}
    mu = None
    if args.dixon_bone != "none" and not args.mumap_dixon:
        from petrecon.errors import ParameterError
        raise ParameterError(f"--dixon-bone {args.dixon_bone}: the bone template is placed from Dixon images; "
                             "give --mumap-dixon")
    if args.mumap_ct:
        mu = mu_map_from_ct_series(args.mumap_ct, **frame)
    elif args.mumap_dixon:
        mu = mu_map_from_dixon_series(*args.mumap_dixon, kind="in_opposed" if args.in_opposed else "water_fat",
                                      bone=args.dixon_bone, **frame)
    elif args.mumap_scanner:
        mu = mu_map_from_scanner_series(args.mumap_scanner, **frame)
    elif args.mumap:
        volumes = read_container(args.mumap).volumes
        if "mu_per_cm" not in volumes:
            from petrecon.errors import FormatError

            raise FormatError(args.mumap, "/volumes/mu_per_cm", "is missing: not a mu-map container")
        mu = volumes["mu_per_cm"]
        mu.metadata.setdefault("series", args.mumap)
    return with_hardware(args, mu, frame["bed_position_mm"], cover, attributes.get("table_position_origin_mm"))


@contextlib.contextmanager
def _backend(name: str):
    """The default backend is ``name`` while the command runs (``auto``: left as it is); yields the device used."""
    from petrecon import backend

    if name == "auto":
        yield backend.default_backend()
        return
    chosen = backend.resolve_backend(name)
    previous = os.environ.get(backend.ENV_VARIABLE)
    os.environ[backend.ENV_VARIABLE] = chosen
    backend.default_backend.cache_clear()
    try:
        yield chosen
    finally:
        if previous is None:
            os.environ.pop(backend.ENV_VARIABLE, None)
        else:
            os.environ[backend.ENV_VARIABLE] = previous
        backend.default_backend.cache_clear()


def _warn(message: str) -> None:
    logging.getLogger("petrecon.recon").warning(message)


def _study_facts(study, args: argparse.Namespace) -> None:
    """Command-line study facts (isotope, activity, patient, tracer) over the input's attributes."""
    if args.isotope:
        study.attributes.pop("half_life_s", None)
    study.attributes.update(_option_facts(args))
    study.attributes.update(_frame_facts(args, study.attributes))


def _option_facts(args: argparse.Namespace) -> dict:
    """The study facts the options give, as container attributes."""
    options = {"isotope": args.isotope, "radiopharmaceutical": args.tracer, "patient_weight_kg": args.weight_kg,
               "patient_size_m": args.height_m, "patient_sex": args.sex,
               "injected_activity_bq": None if args.injected_mbq is None else args.injected_mbq * 1e6}
    return {name: value for name, value in options.items() if value is not None}


def _frame_facts(args: argparse.Namespace, recorded: dict | None = None) -> dict:
    """Patient and bed position: the options, else what the input records (:mod:`petrecon.geometry.patient`)."""
    from petrecon.geometry.patient import bed_attributes, check_patient_position

    recorded = recorded or {}
    facts = {"patient_position": check_patient_position(args.patient_position or recorded.get("patient_position"),
                                                        source="--patient-position")}
    if args.bed_position_mm is not None:
        facts.update(bed_attributes(args.bed_position_mm))
    return facts


def _dicom_fields(attributes: dict, args: argparse.Namespace, protocol, mu) -> dict:
    """write_pet_series keywords: the options over the study's ``attributes``, the protocol's
    ReconstructionMethod, and the study and frame of reference of the CT/MR that gave ``mu``."""
    from petrecon.io.study_input import pet_series_fields

    reference = mu.metadata.get("dicom_reference") if mu is not None else None
    fields, notes = pet_series_fields({**attributes, **_option_facts(args)}, injection_datetime=args.injection_time,
                                      scan_datetime=args.scan_time, reference=reference)
    for note in notes:
        _warn(note)
    return {**fields, "reconstruction_method": protocol.dicom_method()}


def _cmd_recon(args: argparse.Namespace) -> None:
    if not args.out and not args.dicom:
        from petrecon.errors import ParameterError

        raise ParameterError("give an output: --out FILE.h5 and/or --dicom FOLDER")
    check_outputs([args.out, args.dicom], overwrite=args.overwrite)
    with _backend(args.backend) as backend:
        _reconstruct(args, backend)


def _reconstruct(args: argparse.Namespace, backend: str) -> None:
    from petrecon.io.multibed import is_whole_body
    from petrecon.io.study_input import open_listmode, open_study, plan_corrections
    from petrecon.recon.study import image_grid

    protocol = _recon_protocol(args)
    progress = not args.quiet
    if is_whole_body(args.study):  # whole-body multi-bed study: beds stitched into one volume (frame at bed 0)
        _whole_body(args, protocol, _recon_mu_map(args, {"patient_position": args.patient_position}), progress)
        return
    if args.frames:
        from petrecon.recon.dynamic import parse_frame_schedule

        frames = parse_frame_schedule(args.frames)
        source, study = open_listmode(args.study, scanner=args.scanner, normalisation=args.norm)
    else:
        study = open_study(args.study, scanner=args.scanner, normalisation=args.norm, progress=progress)
    _study_facts(study, args)
    mu = _recon_mu_map(args, study.attributes, cover=image_grid(protocol, study.layout))
    protocol, not_applied = plan_corrections(study, protocol, mu_given=mu is not None,
                                             listmode_frames=bool(args.frames))
    for name, reason in not_applied.items():
        _warn(f"{name} correction off: {reason}")
    fields = _dicom_fields(study.attributes, args, protocol, mu) if args.dicom else None
    provenance = dict(protocol=protocol.to_dict(), scanner=study.layout.scanner.name,
                      input_files=[p for p in study.provenance.get("inputs_read", [args.study])
                                   if _is_file(p)],
                      backend=backend, input_format=study.attributes.get("input_format"))
    if args.frames:
        _dynamic(args, source, study, frames, protocol, mu, not_applied, fields, provenance, progress)
    else:
        _static(args, study, protocol, mu, not_applied, fields, provenance, progress)


def _whole_body(args, protocol, mu, progress) -> None:
    from petrecon.errors import ParameterError
    from petrecon.recon.wholebody import reconstruct_whole_body_to_file

    if args.frames:
        raise ParameterError(f"{args.study}: --frames needs list-mode, not a whole-body study")
    for line in reconstruct_whole_body_to_file(args.study, protocol, args.out, dicom=args.dicom, mu=mu,
                                               overwrite=args.overwrite, progress=progress,
                                               dicom_fields=lambda attributes: _dicom_fields(attributes, args,
                                                                                             protocol, mu)):
        print(line)


def _is_file(path) -> bool:
    from pathlib import Path

    return Path(path).is_file()


def _static(args, study, protocol, mu, not_applied, fields, provenance, progress) -> None:
    from petrecon.io import Container, write_container
    from petrecon.io.container import make_provenance
    from petrecon.io.dicom import write_pet_series
    from petrecon.recon.study import reconstruct_study

    result = reconstruct_study(study, protocol, mu=mu, progress=progress)
    record = make_provenance(**provenance, corrected_image=list(result.corrected),
                             corrections_not_applied=not_applied)
    volume = result.volume
    print(f"reconstructed    {args.study}: {protocol.osem.n_iterations} iterations x {protocol.osem.n_subsets} "
          f"subsets, {protocol.osem.post_filter_fwhm_mm:g} mm post-filter, image {volume.grid.shape}")
    print(f"corrections      {' '.join(result.corrected) or 'none'}")
    print(f"activity         max {float(volume.data.max()):.4g} Bq/ml, mean {float(volume.data.mean()):.4g} Bq/ml")
    if args.out:
        attributes = {k: v for k, v in study.attributes.items() if k != "bucket_singles_per_s"}
        write_container(args.out, Container(volumes={"activity_bq_per_ml": volume}, attributes=attributes,
                                            provenance=record), overwrite=args.overwrite)
        print(f"written          {args.out} (volume activity_bq_per_ml)")
    if args.dicom:
        write_pet_series(volume, args.dicom, frame_duration_s=float(study.attributes["duration_s"]),
                         corrected_image=result.corrected, provenance=record,
                         manufacturer_model_name=study.layout.scanner.name, overwrite=args.overwrite, **fields)
        print(f"written          {args.dicom} (PET DICOM series, {volume.grid.shape[2]} slices)")


def _dynamic(args, source, study, frames, protocol, mu, not_applied, fields, provenance, progress) -> None:
    from petrecon.io import write_container
    from petrecon.io.container import make_provenance
    from petrecon.io.dicom import write_dynamic_pet_series
    from petrecon.recon.dynamic import frames_container, reconstruct_listmode_frames

    dead_time_s = None if args.dead_time_ns is None else args.dead_time_ns * 1e-9
    result = reconstruct_listmode_frames(source, study, frames, protocol, mu=mu, dead_time_s=dead_time_s,
                                         progress=progress)
    not_applied = {**not_applied, **result.not_applied}
    for name, reason in result.not_applied.items():
        _warn(f"{name} correction off: {reason}")
    record = make_provenance(**provenance, corrected_image=list(result.corrected),
                             corrections_not_applied=not_applied, frames=args.frames)
    print(f"reconstructed    {args.study}: {len(frames)} frames ({args.frames}), {protocol.osem.n_iterations} "
          f"iterations x {protocol.osem.n_subsets} subsets, image {result.volumes[0].grid.shape}")
    print(f"corrections      {' '.join(result.corrected) or 'none'}")
    for frame, extra, volume in zip(result.frames, result.frame_attributes, result.volumes):
        print(f"frame {frame.start_s:8.1f} s + {frame.duration_s:6.1f} s  prompts {extra['n_prompts']:>10d}  "
              f"mean {float(volume.data.mean()):.4g} Bq/ml")
    if args.out:
        write_container(args.out, frames_container(result, study.attributes, record), overwrite=args.overwrite)
        print(f"written          {args.out} (volumes frame_000 .. frame_{len(frames) - 1:03d})")
    if args.dicom:
        write_dynamic_pet_series(result.volumes, args.dicom, frame_start_s=[f.start_s for f in frames],
                                 frame_duration_s=[f.duration_s for f in frames], corrected_image=result.corrected,
                                 provenance=record, manufacturer_model_name=study.layout.scanner.name,
                                 overwrite=args.overwrite, **fields)
        print(f"written          {args.dicom} (dynamic PET DICOM series, {len(frames)} frames)")


def register(commands: argparse._SubParsersAction) -> None:
    from petrecon.cli.attenuation import add_hardware_options

    recon = commands.add_parser(
        "recon", help="AW-OSEM reconstruction of a container, Interfile, list-mode, Siemens export or PETSIRD "
                      "input to Bq/ml (HDF5, DICOM), static or dynamic",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    recon.add_argument("study", metavar="INPUT", help="petrecon container (.h5), Interfile sinograms (.hs/.s.hdr/.mhdr), PETLINK "
                                     "list-mode (.l/.bf), Siemens raw-data DICOM (.dcm or export folder), PETSIRD")
    recon.add_argument("--protocol", default="clinical", help="protocol TOML file or shipped name (default clinical)")
    recon.add_argument("--scanner", default=None, help="registry scanner for inputs that do not name it (list-mode)")
    recon.add_argument("--norm", metavar="FILE", help="normalisation: a petrecon norm file (components), an "
                                                      "Interfile header, Siemens wrapper or container sinogram, "
                                                      "or the scanner's component file (.n.hdr or its .dcm; "
                                                      "expanded, and its quantification factor calibrates) "
                                                      "(replaces the input's)")
    mu = recon.add_mutually_exclusive_group()
    mu.add_argument("--mumap-ct", metavar="DICOMDIR", help="attenuation from this CT series (replaces the study's); "
                                                           "the DICOM output joins its study and frame of reference")
    mu.add_argument("--mumap-dixon", nargs=2, metavar=("WATERDIR", "FATDIR"),
                    help="attenuation from Dixon MR; the DICOM output joins its study and frame of reference")
    mu.add_argument("--mumap-scanner", metavar="DICOMDIR", help="attenuation from the mMR's own mu-map series "
                                                                "(MR images of mu x 10000)")
    mu.add_argument("--mumap", metavar="MUMAP.h5", help="attenuation from a container's mu_per_cm volume")
    recon.add_argument("--in-opposed", action="store_true", help="the Dixon series are in- and opposed-phase")
    recon.add_argument("--dixon-bone", choices=["none", "atlas"], default="none",
                       help="with --mumap-dixon: 'atlas' adds the vertebral bodies as a fifth class (default none)")
    add_hardware_options(recon)
    recon.add_argument("--no", action="append", default=[], metavar="CORRECTION",
                       choices=["normalisation", "attenuation", "randoms", "scatter", "dead_time", "decay"],
                       help="turn a correction off (repeatable): normalisation, attenuation, randoms, scatter, "
                            "dead_time, decay")
    recon.add_argument("--frames", metavar="SCHEDULE", help="dynamic frames of list-mode, e.g. 6x10s,4x60s,5x300s")
    recon.add_argument("--dead-time-ns", type=float, default=None,
                       help="bucket dead time (ns) for live fractions from list-mode singles (dynamic frames)")
    recon.add_argument("--iterations", type=int, default=None, help="override the protocol's iterations")
    recon.add_argument("--subsets", type=int, default=None, help="override the protocol's subsets")
    recon.add_argument("--fwhm-mm", type=float, default=None, help="override the post-filter FWHM (mm)")
    recon.add_argument("--psf-fwhm-mm", type=float, default=None, help="image-space PSF in the system model (mm)")
    recon.add_argument("--whole-body", choices=["stitched", "joint"], default=None,
                       help="whole-body studies: stitch beds reconstructed one by one (protocol default) or "
                            "reconstruct all beds jointly in one OSEM")
    recon.add_argument("--calibration", type=float, default=None, metavar="BQ_PER_ML_PER_UNIT",
                       help="cross-calibration factor (overrides the protocol's and the study's)")
    recon.add_argument("--backend", default="auto", choices=["auto", "cpu", "cuda"], help="compute device")
    facts = recon.add_argument_group("study facts (when the input does not record them)")
    facts.add_argument("--isotope", default=None, help="F18, Ga68, ... (decay correction, positron fraction)")
    facts.add_argument("--injected-mbq", type=float, default=None, help="injected activity (DICOM dose)")
    facts.add_argument("--injection-time", default=None, help="injection date/time, ISO 8601")
    facts.add_argument("--scan-time", default=None, help="scan start date/time, ISO 8601")
    facts.add_argument("--weight-kg", type=float, default=None, help="patient weight (DICOM, SUV)")
    facts.add_argument("--height-m", type=float, default=None, help="patient height (DICOM PatientSize; lean-mass "
                                                                    "and surface-area SUVs)")
    facts.add_argument("--sex", default=None, choices=["M", "F", "O"], type=str.upper, help="patient sex (DICOM)")
    facts.add_argument("--tracer", default=None, metavar="NAME",
                       help="radiopharmaceutical, e.g. Fluorodeoxyglucose or Pentixafor (default: the input's "
                            "header, else 'unknown' with a warning)")
    facts.add_argument("--patient-position", default=None, choices=["HFS", "HFP", "FFS", "FFP"], type=str.upper,
                       help="patient position (default: the input's, else HFS)")
    facts.add_argument("--bed-position-mm", type=float, default=None, metavar="MM",
                       help="Siemens 'start horizontal bed position' for raw data whose header lacks it "
                            "(places the DICOM output and the CT/MR mu-map; default: the header's, else 0)")
    recon.add_argument("--out", default=None, help="output container (HDF5)")
    recon.add_argument("--dicom", metavar="FOLDER", default=None, help="also write a PET DICOM series here")
    recon.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    recon.add_argument("--quiet", action="store_true", help="no progress bars")
    recon.set_defaults(run=_cmd_recon)
