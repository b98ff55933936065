"""Files the service writes (exports, reports, the SQLite database, frame uploads) are
private to the service's user: directories 0o700, files 0o600.

Two layers, because either alone can fail: the process umask is narrowed at start-up
(``create_app``, so the web app, the worker and every CLI command), which covers files a
library creates on its own (SQLite's WAL, openpyxl's workbook); and each writer here creates
its files and directories with explicit modes, which holds whatever umask the caller had
(a test, an embedding application)."""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_UMASK = 0o077
DIR_MODE = 0o700
FILE_MODE = 0o600


def restrict_umask() -> int:
    """Narrow the process umask so group and others get nothing; returns the new umask.
    Bits the caller already withheld stay withheld."""
    old = os.umask(PRIVATE_UMASK)
    new = old | PRIVATE_UMASK
    os.umask(new)
    return new


def private_dir(path: str | Path) -> Path:
    """Make ``path`` and any missing parents as 0o700 directories. Directories that already
    exist are left as they are (the export directory may be a shared mount point)."""
    directory = Path(path)
    missing = []
    cursor = directory
    while not cursor.exists():
        missing.append(cursor)
        if cursor.parent == cursor:
            break
        cursor = cursor.parent
    for made in reversed(missing):
        try:
            made.mkdir(mode=DIR_MODE)
        except FileExistsError:   # another process made it meanwhile
            continue
        os.chmod(made, DIR_MODE)   # mkdir's mode is masked by the umask; this is not
    return directory


def private_file(path: str | Path) -> Path:
    """Create (or truncate) ``path`` as an empty 0o600 file, so that a library opening it
    by name afterwards ("w" truncates and keeps the mode) writes into a private file."""
    target = Path(path)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)   # an existing file keeps its mode through O_CREAT
    finally:
        os.close(fd)
    return target
