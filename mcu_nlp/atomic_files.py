"""Durable, atomic file writes: a unique temporary file beside the target, fsync, rename.

A reader sees the old file or the new one, never half of one; two writers never share a
temporary file; after a crash the renamed file and its directory entry are on disk.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def fsync_directory(directory: str | Path) -> None:
    """Flush a directory's entries (a rename in it) to disk; a no-op where that is unsupported."""
    try:
        handle = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:  # some file systems cannot sync a directory
        pass
    finally:
        os.close(handle)


def write_bytes_atomically(path: str | Path, data: bytes) -> Path:
    """Replace ``path`` with ``data`` atomically and durably; returns ``path``."""
    target = Path(path)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                         suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    fsync_directory(target.parent)
    return target


def write_text_atomically(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Replace ``path`` with ``text`` atomically and durably; returns ``path``."""
    return write_bytes_atomically(path, text.encode(encoding))
