"""Files written so that a kill leaves the old or the new content, and folders one process writes at a time."""

import contextlib
import errno
import fcntl
import os
import pathlib
import reprlib

LOCK_FILE = ".lock"


def as_path(value, argument, purpose=""):
    """`value` (str, bytes or os.PathLike) as a `pathlib.Path`; anything else is a TypeError.

    The message names `argument` and, if given, `purpose` (e.g. " to a .keras file").
    """
    if not isinstance(value, (str, bytes, os.PathLike)):
        raise TypeError(
            f"{argument} must be a path (str, bytes or os.PathLike){purpose}, got {reprlib.repr(value)} "
            f"({type(value).__name__})."
        )
    path = os.fsdecode(os.fspath(value))
    if not path:
        raise ValueError(f"{argument} is an empty path; expected a path{purpose}.")  # Path("") would be "."
    return pathlib.Path(path)


def write_atomically(path, write, partial_suffix=".partial"):
    """Calls `write(partial_path)` on a temporary path in `path`'s folder, then renames it to `path`.

    A kill at any point leaves the old file or the new one, never half of one. `partial_suffix`
    ends the temporary name (`.keras` for Keras, which checks the suffix of what it saves).
    """
    path = pathlib.Path(os.fsdecode(os.fspath(path)))
    partial = path.with_name(f".{path.stem}.{os.getpid()}.partial{partial_suffix}")
    try:
        write(partial)
        os.replace(partial, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            partial.unlink()
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFullError(
                error.errno,
                f"No space left to write {path} ({error.strerror or error}); the previous version, if any, "
                f"is intact and nothing was half-written. Free some space in {path.parent} and run again "
                f"(a training run resumes from its last checkpoint)",
            ) from error
        raise


def atomic_write_text(path, text):
    """Writes `text` to `path` atomically (see `write_atomically`)."""
    write_atomically(path, lambda partial: partial.write_text(text))


def atomic_write_bytes(path, content):
    """Writes `content` to `path` atomically (see `write_atomically`)."""
    write_atomically(path, lambda partial: partial.write_bytes(content))


class DiskFullError(OSError):
    """A write failed for lack of space (ENOSPC, EDQUOT); the message names the file and what to do."""


class FolderInUseError(ValueError):
    """Another process is writing to this folder (a run or an export); the message names its pid."""


@contextlib.contextmanager
def folder_lock(folder):
    """Holds an exclusive lock on `folder` for the block; a second holder gets `FolderInUseError`.

    An `fcntl.flock` on `<folder>/.lock`, which holds the holder's pid. The kernel drops the
    lock when its process dies, so a killed run leaves no stale lock behind.
    """
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK_FILE, "a+") as handle:  # closing the file releases the lock
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise FolderInUseError(
                f"{folder} is in use by another process (pid {holder}); wait for it to finish, "
                f"or choose another output folder."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
