"""Atomic file output (ARCHITECTURE contract 7): write to a temporary sibling, then rename."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from petrecon.errors import PetreconError


def _checked_target(path: str | os.PathLike, overwrite: bool) -> tuple[Path, Path]:
    """The final path (checked: absent unless ``overwrite``, folder exists) and its temporary sibling."""
    final = Path(path)
    if final.exists() and not overwrite:
        raise PetreconError(f"{final}: exists; pass overwrite=True (--overwrite) to replace it")
    if not final.parent.is_dir():
        raise PetreconError(f"{final}: folder {final.parent} does not exist")
    return final, final.with_name(f".{final.name}.{os.getpid()}.partial")


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds.

    Parameters
    ----------
    path : path-like
        Final file name.
    overwrite : bool
        Replace an existing file; without it an existing ``path`` is an error.

    Raises
    ------
    PetreconError
        If ``path`` exists and ``overwrite`` is False, or its folder does not exist.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> with atomic_output(target) as temporary:
    ...     _ = temporary.write_text("done")
    >>> target.read_text()
    'done'
    """
    final, temporary = _checked_target(path, overwrite)
    try:
        yield temporary
        os.replace(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder next to ``path``; it becomes ``path`` only if the block succeeds.

    With ``overwrite`` an existing folder is replaced (removed after the new one is in place).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "series"
    >>> with atomic_folder(target) as temporary:
    ...     _ = (temporary / "1.dcm").write_text("x")
    >>> sorted(p.name for p in target.iterdir())
    ['1.dcm']
    """
    import shutil

    final, temporary = _checked_target(path, overwrite)
    previous = final.with_name(f".{final.name}.{os.getpid()}.previous")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir()
    try:
        yield temporary
        if final.exists():
            os.replace(final, previous)
        os.replace(temporary, final)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
        shutil.rmtree(previous, ignore_errors=True)
