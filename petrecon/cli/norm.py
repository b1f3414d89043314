"""Sub-command ``norm``: a normalisation written to a file, from a calibration acquisition or the scanner's own file.

``petrecon norm calibration.h5 --out norm.h5`` fits the components to a
calibration scan (:mod:`petrecon.recon.corrections.normalisation_file`).
``petrecon norm scan.n.hdr --span 11 --out norm.h5`` expands the scanner's
component-based normalisation (``.n.hdr`` or its DICOM wrapper) into the bin
efficiencies of a layout (:mod:`petrecon.recon.corrections.component_norm`)
and writes them as a container with a ``normalisation`` sinogram, to inspect
or to give to ``petrecon recon --norm``.
"""

from __future__ import annotations

import argparse

from petrecon.io.atomic import check_outputs


def _cmd_norm(args: argparse.Namespace) -> None:
    check_outputs([args.out], overwrite=args.overwrite)
    from pathlib import Path

    from petrecon.io.study_input import is_siemens_component_file

    if is_siemens_component_file(Path(args.calibration)):
        _expand_siemens(args)
        return
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


def _expand_siemens(args: argparse.Namespace) -> None:
    import dataclasses

    import numpy as np

    from petrecon.geometry import default_layout
    from petrecon.io import Container, write_container
    from petrecon.io.container import make_provenance
    from petrecon.io.siemens_norm import read_component_normalisation
    from petrecon.recon.corrections.component_norm import bin_efficiencies

    norm = read_component_normalisation(args.calibration, args.scanner)
    layout = default_layout(norm.scanner.name, span=args.span or norm.native_span, tof=False)
    layout = dataclasses.replace(layout, view_mashing=args.view_mashing or layout.view_mashing)
    inputs = [args.calibration] + ([args.span1_axial_factors] if args.span1_axial_factors else [])
    factors = np.load(args.span1_axial_factors) if args.span1_axial_factors else None
    efficiency = bin_efficiencies(norm, layout, span1_axial_factors=factors)
    attributes = {"component_normalisation": str(args.calibration)}
    if norm.quantification_factor is not None:
        attributes["calibration_bq_per_ml_per_unit"] = norm.quantification_factor
    provenance = make_provenance(scanner=norm.scanner.name, input_files=inputs, command="petrecon norm",
                                 layout=layout.to_dict())
    path = write_container(args.out, Container({"normalisation": efficiency}, layout=layout, attributes=attributes,
                                               provenance=provenance), overwrite=args.overwrite)
    live = efficiency[efficiency > 0]
    print(f"expanded {norm.scanner.name} component normalisation into {layout.shape} (span {layout.span}, "
          f"mashing {layout.view_mashing}): bin efficiencies {live.mean():.4g} +- {live.std():.4g}, "
          f"{int((efficiency == 0).sum())} gap bins; quantification factor {norm.quantification_factor}")
    print(f"wrote {path}")


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``norm``."""
    norm = commands.add_parser("norm", help="estimate the normalisation of a calibration scan (cylinder, plane), "
                                            "or expand the scanner's component file (.n.hdr), and store it")
    norm.add_argument("calibration", help="calibration container (prompts, the known activity volume, attenuation), "
                                          "or a Siemens component normalisation (.n.hdr or its .dcm wrapper)")
    norm.add_argument("--out", default="norm.h5", help="output normalisation file (default norm.h5)")
    norm.add_argument("--overwrite", action="store_true", help="replace an existing output")
    norm.add_argument("--scanner", default=None, help="component file: registry scanner it must belong to")
    norm.add_argument("--span", type=int, default=None, help="component file: span of the expanded layout "
                                                             "(default the file's own)")
    norm.add_argument("--view-mashing", type=int, default=None, help="component file: view mashing of the layout")
    norm.add_argument("--span1-axial-factors", metavar="FILE.npy", default=None,
                      help="component file: one factor per span-1 sinogram (needed for any span but the file's)")
    norm.set_defaults(run=_cmd_norm)
