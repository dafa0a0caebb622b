"""Tasks waiting for the replication stream to show a row: a session that must not answer
before this relay has seen its own write (its users row, its room membership).

Owns: the waiters, by key, each with a test of the row it waits for; waking the ones a row
satisfies. Does not own: when rows arrive (``hub``) or what the key means.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

import trio

from .mirror import Row

K = TypeVar("K", bound=Hashable)


def any_row(row: Row) -> bool:
    return True


class RowWaiters(Generic[K]):
    def __init__(self) -> None:
        self._waiting: dict[K, list[tuple[Callable[[Row], bool], trio.Event]]] = {}

    async def wait(self, key: K, current: Row | None,
                   accept: Callable[[Row], bool] = any_row) -> None:
        """Until a row under ``key`` that ``accept``s is shown (``current`` is the one the
        mirror holds now, if any)."""
        if current is not None and accept(current):
            return
        waiter = (accept, trio.Event())
        waiters = self._waiting.setdefault(key, [])
        waiters.append(waiter)
        try:
            await waiter[1].wait()
        finally:
            waiters.remove(waiter)
            if not waiters:
                self._waiting.pop(key, None)

    def wake(self, key: K, row: Row) -> None:
        for accept, event in self._waiting.get(key, ()):
            if accept(row):
                event.set()

    def keys(self) -> list[K]:
        return list(self._waiting)
