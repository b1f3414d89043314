"""Line projectors between images and lines of response (LORs)."""

from petrecon.projectors.joseph import adjoint_lors, forward_lors
from petrecon.projectors.tof import adjoint_lors_tof, forward_lors_tof

__all__ = ["forward_lors", "adjoint_lors", "forward_lors_tof", "adjoint_lors_tof"]
