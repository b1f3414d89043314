"""Sub-command ``recon``: AW-OSEM reconstruction of a study to Bq/ml."""

from __future__ import annotations

import argparse


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
    from petrecon.io.multibed import is_whole_body

    if is_whole_body(args.study):  # whole-body multi-bed study: beds stitched into one volume (HDF5)
        from petrecon.recon.wholebody import reconstruct_whole_body_to_file

        print("\n".join(reconstruct_whole_body_to_file(args.study, _recon_protocol(args), args.out,
                                                       mu=_recon_mu_map(args), overwrite=args.overwrite,
                                                       progress=not args.quiet)))
        return
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


def register(commands: argparse._SubParsersAction) -> None:
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
