"""Reading and writing raw data and images: HDF5 container, PETLINK list-mode, ..."""

from petrecon.io.container import Container, read_container, write_container

__all__ = ["Container", "read_container", "write_container"]
