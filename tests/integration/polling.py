"""Asking PostgreSQL again until something holds, for what it tells no one about (a slot
dropped, a row committed by another connection), under a deadline."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

POLL_S = 0.05


async def poll_until(check: Callable[[], Awaitable[bool]], deadline: float) -> None:
    """Return once ``check()`` is true; ``trio.TooSlowError`` if it is not within ``deadline``
    seconds."""
    with trio.fail_after(deadline):
        while True:
            if await check():
                return
            await trio.sleep(POLL_S)
