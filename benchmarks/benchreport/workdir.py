"""The scratch directory of a benchmark run: its PostgreSQL data, sockets and logs.

Owns: where it is (a short path under the temporary directory: a Unix socket's path must stay
under 107 bytes), who may enter it (when run as root the embedded server runs as another user
and must get in), and removing it afterwards. Does not own: what goes in it (``cluster``).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    workdir.chmod(0o711)
    try:
        yield workdir
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
