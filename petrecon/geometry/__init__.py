"""Scanner geometry, sinogram layouts and the scanner registry."""

from petrecon.geometry.registry import SCANNERS, default_layout, get_scanner
from petrecon.geometry.scanner import ScannerGeometry, TofSpec
from petrecon.geometry.sinogram import SinogramLayout, layout_from_dict

__all__ = ["SCANNERS", "ScannerGeometry", "SinogramLayout", "TofSpec", "default_layout", "get_scanner", "layout_from_dict"]
