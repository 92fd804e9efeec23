"""One synthetic picture (`draw_scene`): a street backdrop, one or two figures, a label map of what
each pixel shows, the exact polygons of every garment seen, and the painted image.

A garment that nothing covers keeps its drawn polygon(s); a covered one gets the outline of its
visible pixels traced along pixel edges, so each annotation matches what the picture shows.
"""
import numpy as np

from helpers.modanet import CLASS_NAMES
from helpers.sample.figure import Figure, choose_outfit
from helpers.sample.masks import absorb, mask_polygons, raster, signed_area, trace_loops
from helpers.sample.paint import hsv, pattern_mask, random_paint, season_paint
from helpers.sample.shapes import figure_parts

MIN_VISIBLE_PX = 16              # a garment showing fewer pixels is painted over, not annotated
MIN_FRAGMENT_PX = 6              # so is a visible piece smaller than this


def draw_scene(rng, size, target=None, target_season=None):
    """One picture: (rgb, labels, garments). labels[y, x] = index of the part seen there (0 =
    background); garments = one dict per annotated garment: its part "index", class "name",
    "polygons", whether it is the "target" and its "visible_fraction"."""
    width, height = size
    background = _background(rng, width, height)
    parts = _dress(rng, _place_figures(rng, size, target), target, target_season)
    labels = np.zeros((height, width), np.int32)
    designed = []
    for index, part in enumerate(parts, start=1):
        mask = raster(part["polygons"], height, width)
        labels[mask] = index
        designed.append(mask)
    garments = [i for i, part in enumerate(parts, start=1) if part["kind"] == "garment"]
    _paint_over_specks(labels, designed, garments)
    annotated = _annotated(labels, designed, garments, parts)
    rgb = _render(rng, background, labels, parts)
    return rgb, labels, annotated


def _place_figures(rng, size, target):
    """The figures, back to front: the main one, and (without a target, at times) a smaller one
    behind it to one side."""
    width, height = size
    figure_height = height * rng.uniform(0.78, 0.93)
    unit = figure_height / 8.0
    two = target is None and rng.random() < 0.25
    cx = width * (rng.uniform(0.34, 0.66) if not two else rng.choice([0.38, 0.62]) + rng.uniform(-0.05, 0.05))
    top = rng.uniform(0.45 * unit, max(0.45 * unit, height - figure_height - 1))
    figures = []
    if two:
        back_unit = unit * rng.uniform(0.62, 0.8)
        back_cx = cx + (1 if cx < width / 2 else -1) * width * rng.uniform(0.3, 0.45)
        back_top = top + 8 * unit - 8 * back_unit - height * rng.uniform(0.02, 0.08)
        figures.append(Figure(rng, back_cx, back_top, back_unit, size))
    figures.append(Figure(rng, cx, top, unit, size))
    return figures


def _dress(rng, figures, target, target_season):
    """Every figure's parts, back to front; the main figure wears `target` in `target_season`'s
    look, and its target garment is marked "target"."""
    parts = []
    for k, fig in enumerate(figures):
        main = k == len(figures) - 1
        outfit = choose_outfit(rng, target if main else None)
        paints = {name: random_paint(rng) for name in CLASS_NAMES}
        if main and target is not None:
            paints[target] = season_paint(rng, target_season)
        fig_parts = figure_parts(rng, fig, outfit, paints)
        if main and target is not None:
            for part in fig_parts:
                part["target"] = part["kind"] == "garment" and part["name"] == target
        parts += fig_parts
    return parts


def _paint_over_specks(labels, designed, garments):
    """Give the pixels of a garment that shows too little, or of a visible piece of it too small
    to annotate, to what surrounds them."""
    height, width = labels.shape
    for index in garments:
        visible = labels == index
        count = int(visible.sum())
        if count == 0 or np.array_equal(visible, designed[index - 1]):
            continue
        if count < MIN_VISIBLE_PX:
            absorb(labels, visible, index)
            continue
        for loop in trace_loops(visible):
            if signed_area(loop) > 0:
                piece = raster([[v for p in loop for v in p]], height, width) & visible
                if 0 < piece.sum() < MIN_FRAGMENT_PX:
                    absorb(labels, piece, index)


def _annotated(labels, designed, garments, parts):
    """One dict per garment left visible: its drawn polygons when nothing covers it, else the
    outline of its visible pixels."""
    height, width = labels.shape
    annotated = []
    for index in garments:
        visible = labels == index
        if visible.sum() < MIN_VISIBLE_PX:
            if visible.any():
                absorb(labels, visible, index)
            continue
        part = parts[index - 1]
        if np.array_equal(visible, designed[index - 1]):
            polygons = [p for p in part["polygons"] if raster([p], height, width).any()]
        else:
            polygons = mask_polygons(visible)
        annotated.append({"index": index, "name": part["name"], "polygons": polygons,
                          "target": part.get("target", False),
                          "visible_fraction": float(visible.sum() / max(designed[index - 1].sum(), 1))})
    return annotated


def _background(rng, width, height):
    """A street-like backdrop: wall or sky gradient, facades with windows, a pavement, noise."""
    u = rng.uniform
    top, bottom = hsv(u(0, 1), u(0, 0.35), u(0.55, 0.95)), hsv(u(0, 1), u(0, 0.3), u(0.35, 0.8))
    t = np.linspace(0, 1, height)[:, None, None]
    img = np.broadcast_to(top * (1 - t) + bottom * t, (height, width, 3)).copy()
    horizon = int(height * u(0.62, 0.86))
    for _ in range(rng.integers(2, 6)):
        x0 = int(u(-0.2, 0.9) * width)
        x1 = x0 + int(u(0.2, 0.6) * width)
        y0 = int(u(0, 0.5) * horizon)
        colour = hsv(u(0, 1), u(0, 0.4), u(0.25, 0.9))
        img[y0:horizon, max(x0, 0):max(x1, 0)] = colour
        if rng.random() < 0.7:
            window = colour * u(0.3, 0.7)
            step_x, step_y = int(u(8, 16)), int(u(10, 20))
            for wy in range(y0 + 4, horizon - 6, step_y):
                for wx in range(max(x0, 0) + 3, min(x1, width) - 4, step_x):
                    img[wy:wy + step_y // 2, wx:wx + step_x // 2] = window
    ground = hsv(u(0, 1), u(0, 0.2), u(0.3, 0.75))
    img[horizon:] = ground * np.linspace(0.85, 1.1, height - horizon)[:, None, None]
    img[horizon:horizon + 1] *= 0.6
    return img


def _render(rng, background, labels, parts):
    """The picture: each part in its look, shaded across its width, then noise, and darker edges
    where one part meets another."""
    img = background.copy()
    for index, part in enumerate(parts, start=1):
        where = labels == index
        rows = np.flatnonzero(where.any(axis=1))
        if rows.size == 0:
            continue
        cols = np.flatnonzero(where.any(axis=0))
        y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(float)
        paint = part["paint"]
        second = pattern_mask(paint, xs - x0, ys - y0, part["unit"])
        colour = np.where(second[..., None], paint["c2"], paint["c1"])
        centre, half = (x0 + x1 - 1) / 2, max((x1 - x0) / 2, 1.0)
        shade = np.clip(1.0 - 0.28 * ((xs - centre) / half) ** 2, 0.6, 1.0)
        region = where[y0:y1, x0:x1]
        img[y0:y1, x0:x1][region] = (colour * shade[..., None])[region]
    img += rng.normal(0.0, 3.5, img.shape)
    edge = np.zeros(labels.shape, bool)
    edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    edge[:-1] |= labels[:-1] != labels[1:]
    img[edge] *= 0.78
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)
