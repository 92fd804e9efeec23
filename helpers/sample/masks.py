"""Masks to exact polygons and back: `raster` (pycocotools), `trace_loops` / `mask_polygons` (the
outline of a mask's pixels, along pixel edges), and `absorb` (a speck painted over by its surroundings)."""
import numpy as np
from pycocotools import mask as mask_utils


def raster(polygons, height, width):
    rles = mask_utils.frPyObjects([list(map(float, p)) for p in polygons], height, width)
    return mask_utils.decode(mask_utils.merge(rles)).astype(bool)


_RIGHT = {(1, 0): (0, 1), (0, 1): (-1, 0), (-1, 0): (0, -1), (0, -1): (1, 0)}


def trace_loops(mask):
    """Every boundary loop of a boolean mask, along pixel edges (pixel-corner coordinates).

    Outer boundaries run clockwise on screen (positive shoelace area), holes the other way.
    At a corner where two pixels touch only diagonally the trace turns so as to keep to its
    pixel, i.e. regions are 4-connected."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return []
    oy, ox = int(rows[0]), int(cols[0])          # trace inside the mask's box, then shift back
    m = np.pad(mask[oy:rows[-1] + 1, ox:cols[-1] + 1].astype(bool), 1)
    core = m[1:-1, 1:-1]
    out = {}
    for edges, (dx0, dy0, dx1, dy1) in (
            (core & ~m[:-2, 1:-1], (0, 0, 1, 0)),    # top edge, heading east
            (core & ~m[1:-1, 2:], (1, 0, 1, 1)),     # right edge, heading south
            (core & ~m[2:, 1:-1], (1, 1, 0, 1)),     # bottom edge, heading west
            (core & ~m[1:-1, :-2], (0, 1, 0, 0))):   # left edge, heading north
        rows, cols = np.nonzero(edges)
        for r, c in zip(rows.tolist(), cols.tolist()):
            out.setdefault((c + ox + dx0, r + oy + dy0), []).append((c + ox + dx1, r + oy + dy1))
    loops = []
    while out:
        start = next(iter(out))
        first = out[start].pop()
        if not out[start]:
            del out[start]
        first_dir = (first[0] - start[0], first[1] - start[1])
        loop, v, heading = [start], first, first_dir
        while True:
            right = _RIGHT[heading]
            left = (-right[0], -right[1])
            chosen = None
            for d in (right, heading, left):
                if v == start and d == first_dir:
                    chosen = "close"
                    break
                nxt = (v[0] + d[0], v[1] + d[1])
                if nxt in out.get(v, ()):
                    chosen = nxt
                    break
            if chosen == "close" or chosen is None:
                break
            out[v].remove(chosen)
            if not out[v]:
                del out[v]
            loop.append(v)
            heading, v = (chosen[0] - v[0], chosen[1] - v[1]), chosen
        # keep corners only
        n = len(loop)
        corners = [loop[i] for i in range(n)
                   if (loop[i][0] - loop[i - 1][0], loop[i][1] - loop[i - 1][1])
                   != (loop[(i + 1) % n][0] - loop[i][0], loop[(i + 1) % n][1] - loop[i][1])]
        loops.append(corners)
    return loops


def signed_area(loop):
    return 0.5 * sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(loop, loop[1:] + loop[:1]))


def mask_polygons(mask):
    """Polygons (COCO [x1, y1, ...], integer pixel corners) whose union is exactly `mask`.

    COCO polygons cannot have holes, so a region with a hole is cut in two through the hole."""
    loops = trace_loops(mask)
    holes = [loop for loop in loops if signed_area(loop) < 0]
    if not holes:
        return [[v for point in loop for v in point] for loop in loops]
    cut = min(x for x, _ in holes[0])
    left, right = mask.copy(), mask.copy()
    left[:, cut:] = False
    right[:, :cut] = False
    return mask_polygons(left) + mask_polygons(right)


def _dilate4(mask):
    grown = mask.copy()
    grown[1:] |= mask[:-1]
    grown[:-1] |= mask[1:]
    grown[:, 1:] |= mask[:, :-1]
    grown[:, :-1] |= mask[:, 1:]
    return grown


def absorb(labels, piece, own):
    """Give the pixels of `piece` to the label most common around it (0 if none)."""
    ring = _dilate4(piece) & ~piece
    around = labels[ring]
    around = around[around != own]
    labels[piece] = np.bincount(around).argmax() if around.size else 0
