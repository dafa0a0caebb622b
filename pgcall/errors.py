"""Which failures are the user's to fix, and the one line that says so.

Owns: the mapping from start-up exceptions (possibly wrapped in trio's exception groups) to a
message for the command line. Anything not listed is a bug and keeps its traceback.
"""

from __future__ import annotations

from .pg.binaries import BinariesNotFound
from .pg.checks import StartupCheckFailed
from .pg.conn import PgError
from .pg.embedded import EmbeddedError
from .preflight import StartupError

USER_ERRORS = (BinariesNotFound, StartupCheckFailed, EmbeddedError, PgError, StartupError)


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in _leaves(sub)]
    return [exc]


def user_facing(exc: BaseException) -> str | None:
    """One line for a user error, or None when ``exc`` should propagate."""
    leaves = _leaves(exc)
    for leaf in leaves:
        if isinstance(leaf, USER_ERRORS):
            # One line, even when a library's message spans several.
            return " ".join(part.strip() for part in str(leaf).splitlines() if part.strip())
    return None
