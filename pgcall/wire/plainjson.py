"""When orjson's JSON is the stdlib json module's: the check that lets ``protocol`` read and
``encode`` write with orjson, and fall back to the stdlib whenever the two could differ. Pure.

orjson writes and reads JSON's own Python types as the stdlib does, with three exceptions
that concern this module: a float's spelling when repr uses an exponent (orjson ``1e-7`` or
``0.00001``, repr ``1e-07`` and ``1e-05``), NaN and the infinities (orjson writes ``null``),
and integers beyond 64 bits (orjson reads them as floats). Other types (UUIDs, enums) it
writes where the stdlib refuses them.
"""

from __future__ import annotations

from typing import Any


def plain_within(obj: object, low: float, high: float) -> bool:
    """True when `obj` holds only dict, list, tuple, str, int, bool, None and float - exactly
    those types, no subclass - and each float is zero or has ``low <= abs(x) < high`` (so is
    neither NaN nor infinite). Dict keys are not looked at.

    Only for a value orjson has just written or read: that bounds its depth (orjson's limit)
    and rules out a cycle, which would make this loop forever.
    """
    # A flat dict (every frame's header) in one pass, without the walk's stack.
    if type(obj) is not dict:
        return _walk(obj, low, high)
    for item in obj.values():
        kind = type(item)
        if kind is str or kind is int or kind is bool or item is None:
            continue
        if kind is not float:
            return _walk(obj, low, high)
        if not (item == 0.0 or low <= abs(item) < high):  # NaN fails both
            return False
    return True


def _walk(obj: object, low: float, high: float) -> bool:
    stack: list[Any] = [obj]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or kind is int or kind is bool or item is None:
            continue
        if kind is float:
            if not (item == 0.0 or low <= abs(item) < high):
                return False
        elif kind is dict:
            stack.extend(item.values())
        elif kind is list or kind is tuple:
            stack.extend(item)
        else:
            return False
    return True
