"""Where each person goes on an exported video's picture (docs/recording.md "Export"). Pure.

Owns: the rectangles of the two layouts — ``grid`` (everyone in tiles of one size, in the
order they joined, in the number of columns that gives the largest 16:9 tiles) and
``speaker`` (the main person large above a strip of everyone else) — and fitting a picture
into a tile without distorting it. Every rectangle has even coordinates and sizes, as the
4:2:0 pictures of H.264 need.
Does not own: who the main person is (``timeline``), drawing (``export``).
"""

from __future__ import annotations

import math

import attrs

ASPECT = 16 / 9  # of a tile: the cameras' 640x360 and the thumbnails' 160x90
STRIP_SHARE = 5  # the speaker layout's strip is 1/5 of the picture's height
GAP = 4  # pixels between tiles


@attrs.frozen
class Rect:
    x: int
    y: int
    w: int
    h: int


def _even(value: float) -> int:
    return max(2, int(value) // 2 * 2)


def _even_floor(value: float) -> int:
    return max(0, int(value) // 2 * 2)


def fit(src_w: int, src_h: int, box: Rect) -> Rect:
    """The largest rectangle of ``src_w``:``src_h`` inside ``box``, centred in it."""
    if src_w <= 0 or src_h <= 0:
        return box
    scale = min(box.w / src_w, box.h / src_h)
    w, h = min(box.w, _even(src_w * scale)), min(box.h, _even(src_h * scale))
    return Rect(box.x + _even_floor((box.w - w) / 2), box.y + _even_floor((box.h - h) / 2), w, h)


def _tile_size(cols: int, rows: int, width: int, height: int) -> tuple[float, float]:
    w = min((width - GAP * (cols + 1)) / cols, (height - GAP * (rows + 1)) / rows * ASPECT)
    return w, w / ASPECT


def grid_columns(n: int, width: int, height: int) -> int:
    """The number of columns that gives ``n`` tiles the largest 16:9 size."""
    best, best_w = 1, -1.0
    for cols in range(1, max(1, n) + 1):
        w, _ = _tile_size(cols, math.ceil(max(1, n) / cols), width, height)
        if w > best_w + 1e-9:
            best, best_w = cols, w
    return best


def grid(n: int, width: int, height: int) -> list[Rect]:
    """``n`` tiles in rows, filled left to right, the whole centred; a last row that is not
    full is centred too."""
    if n <= 0:
        return []
    cols = grid_columns(n, width, height)
    rows = math.ceil(n / cols)
    tw, th = _tile_size(cols, rows, width, height)
    w, h = _even(tw), _even(th)
    top = (height - rows * h - (rows - 1) * GAP) / 2
    out = []
    for i in range(n):
        row, col = divmod(i, cols)
        in_row = min(cols, n - row * cols)
        left = (width - in_row * w - (in_row - 1) * GAP) / 2
        out.append(Rect(_even_floor(left + col * (w + GAP)), _even_floor(top + row * (h + GAP)),
                        w, h))
    return out


def speaker(others: int, width: int, height: int) -> tuple[Rect, list[Rect]]:
    """(the main tile, the tiles of ``others`` people in a strip under it). Alone, the main
    tile has the whole picture."""
    if others <= 0:
        return fit(16, 9, Rect(0, 0, width, height)), []
    strip_h = _even(height / STRIP_SHARE)
    th: float = strip_h - 2 * GAP
    tw = th * ASPECT
    if others * tw + (others + 1) * GAP > width:  # too many for the strip: smaller tiles
        tw = (width - (others + 1) * GAP) / others
        th = tw / ASPECT
    w, h = _even(tw), _even(th)
    left = (width - others * w - (others - 1) * GAP) / 2
    y = height - strip_h + _even_floor((strip_h - h) / 2)
    strip = [Rect(_even_floor(left + i * (w + GAP)), y, w, h) for i in range(others)]
    main = fit(16, 9, Rect(0, 0, width, height - strip_h))
    return main, strip
