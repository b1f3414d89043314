"""Sub-command ``norm``: the component-based normalisation of a calibration acquisition, written to a file."""

from __future__ import annotations

import argparse

from petrecon.io.atomic import check_outputs


def _cmd_norm(args: argparse.Namespace) -> None:
    check_outputs([args.out], overwrite=args.overwrite)
    from petrecon.io.container import make_provenance, read_container
    from petrecon.recon.corrections.normalisation_file import normalisation_from_calibration, write_normalisation

    container = read_container(args.calibration)
    normalisation = normalisation_from_calibration(container)
    provenance = make_provenance(scanner=container.layout.scanner.name, input_files=[args.calibration],
                                 command="petrecon norm", calibration_attributes=container.attributes)
    path = write_normalisation(args.out, normalisation, provenance, overwrite=args.overwrite)
    efficiencies = normalisation.crystal_efficiencies[normalisation.crystal_efficiencies > 0]
    print(f"normalisation of {container.layout.scanner.name} {container.layout.shape}: crystal efficiencies "
          f"{efficiencies.mean():.4f} +- {efficiencies.std():.4f}, counts {float(container.sinograms['prompts'].sum()):.4g}")
    print(f"wrote {path}")


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``norm``."""
    norm = commands.add_parser("norm", help="estimate the normalisation of a calibration scan (cylinder, plane) "
                                            "and store it")
    norm.add_argument("calibration", help="calibration container (prompts, the known activity volume, attenuation)")
    norm.add_argument("--out", default="norm.h5", help="output normalisation file (default norm.h5)")
    norm.add_argument("--overwrite", action="store_true", help="replace an existing output")
    norm.set_defaults(run=_cmd_norm)
