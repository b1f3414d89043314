"""Exceptions raised by petrecon.

Every error says what is wrong, where (file and field where there is one) and
what was expected, so that the command line can print it as one line.
"""


class PetreconError(Exception):
    """Base class of every error petrecon raises on purpose."""


class GeometryError(PetreconError, ValueError):
    """A scanner, sinogram layout or image grid is inconsistent or unknown."""


class FormatError(PetreconError, ValueError):
    """A file does not say what we need; names the file and the field.

    Examples
    --------
    >>> str(FormatError("study.s.hdr", "%segment table", "sums to 835 sinograms, data holds 837"))
    'study.s.hdr: %segment table: sums to 835 sinograms, data holds 837'
    """

    def __init__(self, path: str, field: str, message: str) -> None:
        self.path = str(path)
        self.field = field
        self.message = message
        super().__init__(f"{self.path}: {field}: {message}")


class ParameterError(PetreconError, ValueError):
    """A reconstruction or analysis parameter is outside its meaningful range."""
