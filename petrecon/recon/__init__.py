"""Reconstruction: OSEM / AW-OSEM over linear operators, subsets, post-filter."""

from petrecon.recon.osem import OsemProtocol, osem, poisson_log_likelihood
from petrecon.recon.protocol import CorrectionSettings, ReconstructionProtocol
from petrecon.recon.subsets import view_subsets

__all__ = ["CorrectionSettings", "OsemProtocol", "ReconstructionProtocol", "osem", "poisson_log_likelihood",
           "view_subsets"]
