"""Atomic file output (ARCHITECTURE contract 7): write to a temporary sibling, then rename.

Inside :func:`all_or_nothing` (every ``petrecon`` command runs in one) the
outputs of one invocation are committed together: when a later output or
step fails, the outputs already renamed into place are removed again and the
files they replaced are put back. Temporary siblings a killed run left behind
(``.NAME.PID.partial``, ``.NAME.PID.previous`` of a process that no longer
runs) are removed when the same output is written again.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

from petrecon.errors import PetreconError

#: The outputs committed by the running :func:`all_or_nothing` block: (final, previous or None); None outside one.
_COMMITTED: list[tuple[Path, Path | None]] | None = None



#: What an existing output is told, from the command line and from Python alike.
EXISTS = "exists; replace it with --overwrite (overwrite=True from Python)"

def check_outputs(paths: Sequence[str | os.PathLike | None], *, overwrite: bool = False) -> None:
    """Check, before any work, that every output can be written: absent (or ``overwrite``), folder writable.

    ``None`` entries (outputs not asked for) are skipped. Run it first, so that a
    long computation does not end in a refusal.

    Raises
    ------
    PetreconError
        Naming the first output that cannot be written, or one given twice.

    Examples
    --------
    >>> check_outputs([None])
    """
    given = [Path(p) for p in paths if p is not None]
    for path in given:
        _checked_target(path, overwrite)
    resolved = [p.resolve() for p in given]
    for k, path in enumerate(resolved):
        if path in resolved[:k]:
            raise PetreconError(f"{given[k]}: given as two outputs of one command")


def _checked_target(path: str | os.PathLike, overwrite: bool) -> tuple[Path, Path]:
    """The final path (checked: absent unless ``overwrite``, folder exists and is writable) and its temporary sibling."""
    final = Path(path)
    if final.exists() and not overwrite:
        raise PetreconError(f"{final}: {EXISTS}")
    if not final.parent.is_dir():
        raise PetreconError(f"{final}: folder {final.parent} does not exist")
    if not os.access(final.parent, os.W_OK | os.X_OK):
        raise PetreconError(f"{final}: folder {final.parent} is not writable")
    _remove_stale_siblings(final)
    return final, final.with_name(f".{final.name}.{os.getpid()}.partial")


def _remove_stale_siblings(final: Path) -> None:
    """Remove ``.NAME.PID.partial`` / ``.previous`` left by runs of ``final`` whose process has ended."""
    for sibling in final.parent.glob(f".{final.name}.*.*"):
        pid_text, _, kind = sibling.name[len(final.name) + 2:].partition(".")
        if kind in ("partial", "previous") and pid_text.isdigit() and not _process_runs(int(pid_text)):
            _remove(sibling)


def _process_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _commit(temporary: Path, final: Path) -> None:
    """Rename ``temporary`` onto ``final``; the file or folder it replaces is kept until the transaction ends."""
    previous = final.with_name(f".{final.name}.{os.getpid()}.previous") if final.exists() else None
    if previous is not None:
        _remove(previous)
        os.replace(final, previous)
    try:
        os.replace(temporary, final)
    except BaseException:
        if previous is not None:
            os.replace(previous, final)
        raise
    if _COMMITTED is not None:
        _COMMITTED.append((final, previous))
    elif previous is not None:
        _remove(previous)


@contextlib.contextmanager
def all_or_nothing() -> Iterator[None]:
    """Commit every atomic output written in the block together: on an error, undo the ones already in place.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> try:
    ...     with all_or_nothing():
    ...         with atomic_output(folder / "a.txt") as temporary:
    ...             _ = temporary.write_text("first output")
    ...         raise PetreconError("the second output failed")
    ... except PetreconError:
    ...     pass
    >>> (folder / "a.txt").exists()
    False
    """
    global _COMMITTED
    outer, _COMMITTED = _COMMITTED, []
    committed = _COMMITTED
    try:
        yield
    except BaseException:
        for final, previous in reversed(committed):
            _remove(final)
            if previous is not None:
                os.replace(previous, final)
        raise
    finally:
        _COMMITTED = outer
    if outer is not None:  # nested: the enclosing block decides
        outer.extend(committed)
        return
    for _, previous in committed:
        if previous is not None:
            _remove(previous)


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
        _commit(temporary, final)
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
    final, temporary = _checked_target(path, overwrite)
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir()
    try:
        yield temporary
        _commit(temporary, final)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
