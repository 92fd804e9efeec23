"""A synthetic ModaNet-like data set and a custom season set, drawn on the CPU in seconds.

Why: the course must run end to end without the real ModaNet (tens of GB and a licence to
accept). `generate_modanet_sample` draws street-like pictures of standing figures wearing
garments of the 13 ModaNet classes and writes them in ModaNet's own COCO form;
`generate_custom_set` draws the `<class>_<season>_<n>.jpg` photos of notebook 05, where the
season shows in the named garment's palette and pattern. `build_sample` does both for a
profile (and skips when nothing changed); `python -m helpers.sample` is its command line.

How the annotations stay exact: every shape is a polygon with integer pixel-corner
coordinates, rasterised with pycocotools and painted in z-order into a label map. A garment
that nothing covers keeps its drawn polygon(s); a covered one gets the outline of its visible
pixels traced along pixel edges, so each annotation matches what the picture shows.
Same seed and size give identical JSON and identical pixels.
"""
import argparse
import colorsys
import math
import re
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils
from tqdm.auto import tqdm

from helpers.io import DataError, atomic_write, read_json, write_json_atomic
from helpers.modanet import CATEGORY_ID_BY_NAME, CLASS_NAMES, INFO, categories, class_slug
from helpers.seasons import SEASON_CODES, canonical_class, custom_file_name
from helpers.seasons import parse_custom_name as parse_any_custom_name

GENERATOR_VERSION = 1            # bump when the drawing changes, so build_sample rebuilds
TRAIN_FILE = "modanet2018_instances_train.json"
VAL_FILE = "modanet2018_instances_val.json"
MANIFEST_FILE = "sample_manifest.json"
JPEG_QUALITY = 90
MIN_VISIBLE_PX = 16              # a garment showing fewer pixels is painted over, not annotated
MIN_FRAGMENT_PX = 6              # so is a visible piece smaller than this
SAMPLE_YEAR = 2018               # ModaNet's "year"
SAMPLE_LICENSES = [{
    "url": "https://opensource.org/licenses/MIT",
    "id": 1,
    "name": "Synthetic picture drawn by helpers.sample (MIT, like the course code)",
}]
SAMPLE_INFO = dict(
    INFO,
    contributor="ModaNet Seasons course (helpers.sample)",
    description="Synthetic ModaNet-like sample drawn by helpers.sample; not MODA-NET data",
)

ARM_LENGTH = 2.65                # figure units (one unit = one head height, a figure is 8)
WAIST_Y = 3.0


# --- colours and patterns ---------------------------------------------------------------

def _hsv(h, s, v):
    return np.array(colorsys.hsv_to_rgb(h % 1.0, float(np.clip(s, 0, 1)), float(np.clip(v, 0, 1)))) * 255.0


def season_paint(rng, season):
    """The look of a garment in `season`: a palette and a pattern that tell the season apart."""
    u = rng.uniform
    if season == "yaz":      # summer: bright warm colours, plain
        c1 = _hsv(u(-0.06, 0.15), u(0.75, 1.0), u(0.9, 1.0))
        return {"c1": c1, "c2": c1, "pattern": "solid", "scale": 0.3, "thick": 0.0}
    if season == "sonb":     # autumn: browns and oranges, stripes
        return {"c1": _hsv(u(0.04, 0.1), u(0.65, 0.9), u(0.45, 0.62)),
                "c2": _hsv(u(0.03, 0.09), u(0.6, 0.9), u(0.2, 0.3)),
                "pattern": "stripes", "scale": u(0.22, 0.32), "angle": u(0, math.pi), "thick": 0.0}
    if season == "ilkb":     # spring: pastels with white dots
        return {"c1": _hsv(u(0, 1), u(0.2, 0.38), u(0.9, 1.0)), "c2": _hsv(0, 0, u(0.97, 1.0)),
                "pattern": "dots", "scale": u(0.22, 0.3), "thick": 0.0}
    if season == "kis":      # winter: dark blues and greys, thick and quilted
        c1 = _hsv(u(0.56, 0.66), u(0.3, 0.6), u(0.2, 0.34))
        return {"c1": c1, "c2": c1 * 0.7, "pattern": "quilt", "scale": u(0.25, 0.35), "thick": 0.07}
    if season == "4mev":    # all seasons: black and white check, a neutral grey overall
        dark, light = _hsv(0, 0, u(0.05, 0.18)), _hsv(0, 0, u(0.82, 0.95))
        c1, c2 = (dark, light) if rng.random() < 0.5 else (light, dark)
        return {"c1": c1, "c2": c2, "pattern": "check", "scale": u(0.14, 0.2), "thick": 0.0}
    raise ValueError(f"Unknown season code {season!r}: use one of {', '.join(SEASON_CODES)}")


def random_paint(rng):
    """A garment look from a wide palette: any hue and brightness, sometimes a season's look."""
    if rng.random() < 0.35:
        return season_paint(rng, SEASON_CODES[rng.integers(len(SEASON_CODES))])
    c1 = _hsv(rng.random(), rng.random() ** 0.7, rng.uniform(0.1, 0.97))
    c2 = _hsv(rng.random(), rng.random(), rng.uniform(0.1, 0.97))
    pattern = ("solid", "solid", "solid", "stripes", "dots", "check")[rng.integers(6)]
    return {"c1": c1, "c2": c2, "pattern": pattern, "scale": rng.uniform(0.18, 0.35),
            "angle": rng.uniform(0, math.pi), "thick": 0.0}


SKIN_TONES = [(0.07, 0.25, 0.96), (0.07, 0.35, 0.9), (0.06, 0.45, 0.8), (0.07, 0.5, 0.68),
              (0.06, 0.55, 0.55), (0.05, 0.6, 0.42), (0.05, 0.55, 0.32)]
HAIR_COLOURS = [(0.07, 0.3, 0.08), (0.07, 0.6, 0.25), (0.09, 0.5, 0.45), (0.12, 0.45, 0.85),
                (0.03, 0.7, 0.5), (0.0, 0.0, 0.7)]


def _solid(rgb):
    return {"c1": np.asarray(rgb, dtype=float), "c2": np.asarray(rgb, dtype=float),
            "pattern": "solid", "scale": 0.3, "thick": 0.0}


# --- geometry: figure units to integer pixel polygons -----------------------------------

class _Figure:
    """One standing figure: maps figure units (x from the body's centre line, y down from
    the top of the head; a figure is 8 units tall) to pixels."""

    def __init__(self, rng, cx, top, unit, size):
        self.cx, self.top, self.unit = cx, top, unit
        self.width, self.height = size
        self.wf = rng.uniform(0.85, 1.12)                       # body width factor
        self.stance = rng.uniform(0.0, 0.22)                    # feet apart
        self.arm_angle = {-1: math.radians(rng.uniform(4, 22)), 1: math.radians(rng.uniform(4, 22))}

    def polygon(self, points):
        """Integer pixel polygon [x1, y1, ...] clamped to the image, or None if degenerate."""
        out = []
        for x, y in points:
            px = int(round(min(max(self.cx + x * self.unit * self.wf, 0), self.width)))
            py = int(round(min(max(self.top + y * self.unit, 0), self.height)))
            if not out or out[-1] != (px, py):
                out.append((px, py))
        if len(out) > 1 and out[0] == out[-1]:
            out.pop()
        if len(set(out)) < 3:
            return None
        return [v for p in out for v in p]

    def arm(self, side, t, offset):
        """A point `t` units down the arm of `side` (-1 left, +1 right), `offset` units outward."""
        a = self.arm_angle[side]
        return (side * 0.92 + t * side * math.sin(a) + offset * side * math.cos(a),
                1.38 + t * math.cos(a) - offset * math.sin(a))

    def leg_x(self, y):
        """|x| of a leg's centre line at height y (hips to ankles)."""
        f = min(max((y - 3.6) / 4.0, 0.0), 1.0)
        return 0.4 + f * (0.3 + self.stance - 0.4)


def _leg_half_width(y):
    return float(np.interp(y, [3.6, 5.7, 7.6], [0.38, 0.27, 0.12]))


def _ellipse(cx, cy, rx, ry, start=0.0, stop=2 * math.pi, n=16):
    return [(cx + rx * math.cos(t), cy + ry * math.sin(t)) for t in np.linspace(start, stop, n, endpoint=False)]


def _mirror(points):
    return [(-x, y) for x, y in reversed(points)]


# --- the outfit ---------------------------------------------------------------------------

def _choose_outfit(rng, target=None):
    """Which garments one figure wears: random but plausible; `target` is always worn."""
    p = rng.random
    outfit = {
        "upper": "dress" if p() < 0.28 else "top",
        "outer": p() < 0.35,
        "bottom": None,
        "feet": ("footwear", "footwear", "footwear", "boots", "boots", None)[rng.integers(6)],
        "belt": p() < 0.3,
        "bag": p() < 0.45,
        "headwear": p() < 0.3,
        "sunglasses": p() < 0.3,
        "scarf/tie": p() < 0.3,
        "long_coat_ok": True,
    }
    if outfit["upper"] == "top":
        outfit["bottom"] = ("pants", "pants", "pants", "shorts", "shorts", "skirt", "skirt")[rng.integers(7)]
    if target in ("top", "dress"):
        outfit["upper"], outfit["outer"] = target, False
        outfit["bottom"] = (outfit["bottom"] or "pants") if target == "top" else None
    elif target in ("pants", "shorts", "skirt"):
        outfit["upper"], outfit["bottom"], outfit["long_coat_ok"] = "top", target, False
    elif target in ("footwear", "boots"):
        outfit["feet"] = target
    elif target == "outer":
        outfit["outer"] = True
    elif target == "belt":
        outfit["belt"], outfit["outer"] = True, False
    elif target is not None:
        outfit[target] = True
    if outfit["upper"] == "top" and outfit["bottom"] is None:
        outfit["bottom"] = "pants"
    return outfit


def _figure_parts(rng, fig, outfit, paints):
    """The figure's shapes in drawing order (back to front): body parts and garments.

    Each part is a dict: kind ("body"/"garment"), name (a ModaNet class for garments),
    polygons (pixel polygons), paint, unit (pixels per figure unit)."""
    parts = []

    def add(kind, name, point_lists, paint):
        polys = [poly for poly in (fig.polygon(pts) for pts in point_lists) if poly is not None]
        if polys:
            parts.append({"kind": kind, "name": name, "polygons": polys, "paint": paint, "unit": fig.unit})

    u = rng.uniform
    skin = _solid(_hsv(*SKIN_TONES[rng.integers(len(SKIN_TONES))]))
    hair = _solid(_hsv(*HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))]))
    long_hair = rng.random() < 0.45
    waist = WAIST_Y + u(-0.1, 0.1)
    belt = outfit["belt"]
    bottom_top = waist + 0.1 if belt else waist

    # body, back to front
    if long_hair:
        add("body", "hair", [[(-0.42, 0.3), (-0.56, u(1.5, 2.1)), (0.56, u(1.5, 2.1)), (0.42, 0.3)]], hair)
    for side in (-1, 1):
        lx7, lx57 = fig.leg_x(7.6), fig.leg_x(5.7)
        leg = [(0.0, 3.4), (0.8, 3.4), (lx57 + 0.27, 5.7), (lx7 + 0.12, 7.6), (lx7 + 0.14, 7.7),
               (lx7 - 0.14, 7.7), (lx7 - 0.12, 7.6), (lx57 - 0.27, 5.7), (0.02, 4.1)]
        foot = [(lx7 - 0.13, 7.6), (lx7 + 0.13, 7.6), (lx7 + 0.2, 8.0), (lx7 - 0.16, 8.0)]
        add("body", "leg", [[(side * x, y) for x, y in leg], [(side * x, y) for x, y in foot]], skin)
        arm = [fig.arm(side, 0, 0.15), fig.arm(side, ARM_LENGTH, 0.1), fig.arm(side, ARM_LENGTH, -0.1),
               fig.arm(side, 0.4, -0.15), fig.arm(side, 0, -0.15)]
        add("body", "arm", [arm], skin)
    torso = [(-0.14, 0.9), (-0.14, 1.25), (-0.95, 1.33), (-0.86, 1.95), (-0.6, waist), (-0.82, 3.6)]
    add("body", "torso", [torso + _mirror(torso)], skin)
    add("body", "head", [_ellipse(0, 0.5, 0.33, 0.5)], skin)
    add("body", "hair", [_ellipse(0, 0.48, 0.37, 0.53, math.pi + 0.45, 2 * math.pi - 0.45 + 1e-9, 12)], hair)

    def torso_side(side, neck_w, sleeve, hem_y, hem_w, extra):
        pts = [(neck_w, 1.22), (0.98 + extra, 1.3)]
        if sleeve > 0:
            def arm_pt(t, off):
                x, y = fig.arm(side, t, off)
                return (side * x, y)
            pts += [arm_pt(-0.02, 0.18 + extra), arm_pt(sleeve * ARM_LENGTH, 0.15 + extra),
                    arm_pt(sleeve * ARM_LENGTH, -0.15 - extra)]
        pts.append((0.86 + extra, 1.95))
        if hem_y <= waist:
            x_at_hem = float(np.interp(hem_y, [1.95, waist], [0.86, 0.6]))
            pts.append((x_at_hem + extra, hem_y))
        else:
            pts.append((0.62 + extra, waist))
            if hem_y > 3.6:
                pts.append((0.84 + extra, 3.6))
            pts.append((hem_w + extra, hem_y))
        return [(side * x, y) for x, y in pts]

    def torso_garment(name, sleeve, hem_y, hem_w, paint):
        extra = paint["thick"] + u(0.0, 0.05)
        neck_w = u(0.14, 0.22)
        left = torso_side(-1, neck_w, sleeve, hem_y, hem_w, extra)
        right = torso_side(1, neck_w, sleeve, hem_y, hem_w, extra)
        add("garment", name, [left + list(reversed(right)) + [(0, 1.22 + u(0.05, 0.4))]], paint)

    def leg_garment(name, hem_y, pad):
        pts = [(0.62 + pad * 0.3, bottom_top), (0.84 + pad * 0.5, 3.6)]
        if hem_y > 5.7:
            pts.append((fig.leg_x(5.7) + 0.27 + pad, 5.7))
        pts += [(fig.leg_x(hem_y) + _leg_half_width(hem_y) + pad, hem_y),
                (max(0.03, fig.leg_x(hem_y) - _leg_half_width(hem_y) - pad), hem_y)]
        if hem_y > 5.7:
            pts.append((max(0.03, fig.leg_x(5.7) - 0.27 - pad), 5.7))
        left = [(-x, y) for x, y in pts]
        add("garment", name, [left + [(0.0, 4.15)] + list(reversed(pts))], paints[name])

    # garments, back to front
    feet = outfit["feet"]
    shoe_top = u(7.45, 7.62)
    if outfit["bottom"] == "pants":
        pants_hem = shoe_top if feet == "footwear" else u(7.4, 7.7)
        leg_garment("pants", pants_hem, u(0.04, 0.16) + paints["pants"]["thick"])
    if feet:
        shoes = []
        boot_top = u(5.9, 6.8)
        for side in (-1, 1):
            lx = fig.leg_x(7.6)
            if feet == "boots":
                hw = _leg_half_width(boot_top) + 0.06 + paints["boots"]["thick"]
                bx = fig.leg_x(boot_top)
                pts = [(bx - hw, boot_top), (bx + hw, boot_top), (lx + 0.18, 7.6), (lx + 0.25, 8.0),
                       (lx - 0.2, 8.0), (lx - 0.18, 7.6)]
            else:
                pts = [(lx - 0.16, shoe_top), (lx + 0.16, shoe_top), (lx + 0.23, 7.82), (lx + 0.25, 8.0),
                       (lx - 0.2, 8.0), (lx - 0.2, 7.8)]
            shoes.append([(side * x, y) for x, y in pts])
        add("garment", feet, shoes, paints[feet])
    if outfit["bottom"] == "shorts":
        leg_garment("shorts", u(4.4, 5.0), u(0.05, 0.12) + paints["shorts"]["thick"])
    if outfit["bottom"] == "skirt":
        hem_w = u(0.85, 1.35) + paints["skirt"]["thick"]
        hem_y = u(4.6, 6.0)
        side = [(-0.64, bottom_top), (-0.84, 3.6), (-hem_w, hem_y)]
        add("garment", "skirt", [side + _mirror(side)], paints["skirt"])
    if outfit["upper"] == "dress":
        torso_garment("dress", (0, 0, 0.25, 0.4)[rng.integers(4)], u(5.2, 6.0), u(0.95, 1.4), paints["dress"])
    else:
        style = rng.integers(6)
        hem_y = {0: u(2.7, 2.85), 1: u(3.35, 3.6)}.get(style, waist - 0.1 if belt else waist)
        torso_garment("top", (0, 0.25, 0.4, 0.75, 0.97, 0.97)[rng.integers(6)], hem_y, u(0.7, 0.85), paints["top"])
    if belt:
        add("garment", "belt", [[(-0.67, waist - 0.1), (0.67, waist - 0.1), (0.69, waist + 0.1),
                                 (-0.69, waist + 0.1)]], paints["belt"])
    if outfit["outer"]:
        long_coat = outfit["long_coat_ok"] and rng.random() < 0.4
        hem_y = u(4.6, 5.6) if long_coat else u(3.2, 3.6)
        hem_w = u(0.95, 1.15)
        gap = u(0.14, 0.35)
        extra = 0.08 + paints["outer"]["thick"]
        neck_w = u(0.18, 0.25)
        left = torso_side(-1, neck_w, 0.95, hem_y, hem_w, extra) + [(-gap, hem_y), (-gap, u(1.7, 2.2))]
        right = torso_side(1, neck_w, 0.95, hem_y, hem_w, extra) + [(gap, hem_y), (gap, u(1.7, 2.2))]
        add("garment", "outer", [left, right], paints["outer"])
    if outfit["scarf/tie"]:
        if rng.random() < 0.45:   # a tie
            tip = u(2.2, 2.6)
            tie = [(-0.06, 1.2), (0.06, 1.2), (0.09, 1.33), (0.05, 1.42), (0.13, tip - 0.15), (0, tip),
                   (-0.13, tip - 0.15), (-0.05, 1.42), (-0.09, 1.33)]
            add("garment", "scarf/tie", [tie], paints["scarf/tie"])
        else:                       # a scarf round the neck with one end hanging
            s = 1 if rng.random() < 0.5 else -1
            end = u(2.2, 3.2)
            scarf = [(-0.32, 1.0), (0.32, 1.0), (0.36, 1.3), (0.22, 1.45), (0.28, end), (0.06, end + 0.05),
                     (0.04, 1.46), (-0.36, 1.3)]
            add("garment", "scarf/tie", [[(s * x, y) for x, y in scarf]], paints["scarf/tie"])
    for side in (-1, 1):
        add("body", "hand", [_ellipse(*fig.arm(side, ARM_LENGTH + 0.12, 0), 0.13, 0.16, n=10)], skin)
    if outfit["bag"]:
        side = 1 if rng.random() < 0.5 else -1
        style = rng.integers(3)
        if style == 0:              # a handbag held by its handle
            hx, hy = fig.arm(side, ARM_LENGTH + 0.1, 0)
            top, height, width = hy + 0.2, u(0.55, 0.95), u(0.7, 1.05)
            bx = hx + side * u(0.0, 0.15)
            bag = [(hx - 0.07, hy - 0.06), (hx + 0.07, hy - 0.06), (hx + 0.12, top), (bx + width / 2, top),
                   (bx + width / 2 + 0.06, top + height), (bx - width / 2 - 0.06, top + height),
                   (bx - width / 2, top), (hx - 0.12, top)]
            add("garment", "bag", [bag], paints["bag"])
        else:                       # a shoulder or cross-body bag on its strap
            top, height, width = u(3.2, 3.8), u(0.55, 0.8), u(0.7, 1.0)
            bx = side * u(0.95, 1.25)
            strap_from = side * 0.78 if style == 1 else -side * 0.7
            body = [(bx - width / 2, top), (bx + width / 2, top), (bx + width / 2 + 0.04, top + height),
                    (bx - width / 2 - 0.04, top + height)]
            anchor = bx - side * 0.15
            strap = [(strap_from - 0.1, 1.28), (strap_from + 0.1, 1.28), (anchor + 0.1, top), (anchor - 0.1, top)]
            add("garment", "bag", [strap, body], paints["bag"])
    if outfit["sunglasses"]:
        y0 = u(0.38, 0.44)
        glasses = [(-0.34, y0), (-0.34, y0 + 0.13), (-0.22, y0 + 0.2), (-0.08, y0 + 0.15), (-0.05, y0 + 0.07),
                   (0.05, y0 + 0.07), (0.08, y0 + 0.15), (0.22, y0 + 0.2), (0.34, y0 + 0.13), (0.34, y0),
                   (0.0, y0 + 0.03)]
        add("garment", "sunglasses", [glasses], paints["sunglasses"])
    if outfit["headwear"]:
        style = rng.integers(3)
        if style == 0:              # a brimmed hat
            crown = u(-0.45, -0.2)
            hat = [(-0.64, 0.24), (0.64, 0.24), (0.5, 0.11), (0.34, 0.11), (0.3, crown), (-0.3, crown),
                   (-0.34, 0.11), (-0.5, 0.11)]
        elif style == 1:            # a beanie
            hat = _ellipse(0, 0.32, 0.42, 0.44, math.pi, 2 * math.pi + 1e-9, 12) + [(0.43, 0.36), (-0.43, 0.36)]
        else:                       # a cap with a visor
            dome = _ellipse(0, 0.3, 0.39, 0.38, math.pi, 2 * math.pi + 1e-9, 12)   # left to right
            visor = [(0.72, 0.33), (0.3, 0.36), (-0.39, 0.33)]                     # peak to the right
            hat = dome + visor if rng.random() < 0.5 else [(-x, y) for x, y in dome + visor]
        add("garment", "headwear", [hat], paints["headwear"])
    return parts


# --- rasterising, tracing, painting --------------------------------------------------------

def _raster(polygons, height, width):
    rles = mask_utils.frPyObjects([list(map(float, p)) for p in polygons], height, width)
    return mask_utils.decode(mask_utils.merge(rles)).astype(bool)


_RIGHT = {(1, 0): (0, 1), (0, 1): (-1, 0), (-1, 0): (0, -1), (0, -1): (1, 0)}


def _trace_loops(mask):
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


def _signed_area(loop):
    return 0.5 * sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(loop, loop[1:] + loop[:1]))


def mask_polygons(mask):
    """Polygons (COCO [x1, y1, ...], integer pixel corners) whose union is exactly `mask`.

    COCO polygons cannot have holes, so a region with a hole is cut in two through the hole."""
    loops = _trace_loops(mask)
    holes = [loop for loop in loops if _signed_area(loop) < 0]
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


def _absorb(labels, piece, own):
    """Give the pixels of `piece` to the label most common around it (0 if none)."""
    ring = _dilate4(piece) & ~piece
    around = labels[ring]
    around = around[around != own]
    labels[piece] = np.bincount(around).argmax() if around.size else 0


def _pattern(paint, xs, ys, unit):
    period = max(2.0, paint["scale"] * unit)
    kind = paint["pattern"]
    if kind == "stripes":
        a = paint.get("angle", 0.0)
        return ((xs * math.cos(a) + ys * math.sin(a)) / period) % 1.0 < 0.5
    if kind == "dots":
        gx = (xs % period) - period / 2
        gy = (ys % period) - period / 2
        return gx * gx + gy * gy < (0.32 * period) ** 2
    if kind == "check":
        return ((np.floor(xs / period) + np.floor(ys / period)) % 2) == 1
    if kind == "quilt":
        return (ys % period) < 1.0
    return np.zeros(xs.shape, bool)


def _background(rng, width, height):
    """A street-like backdrop: wall or sky gradient, facades with windows, a pavement, noise."""
    u = rng.uniform
    top, bottom = _hsv(u(0, 1), u(0, 0.35), u(0.55, 0.95)), _hsv(u(0, 1), u(0, 0.3), u(0.35, 0.8))
    t = np.linspace(0, 1, height)[:, None, None]
    img = np.broadcast_to(top * (1 - t) + bottom * t, (height, width, 3)).copy()
    horizon = int(height * u(0.62, 0.86))
    for _ in range(rng.integers(2, 6)):
        x0 = int(u(-0.2, 0.9) * width)
        x1 = x0 + int(u(0.2, 0.6) * width)
        y0 = int(u(0, 0.5) * horizon)
        colour = _hsv(u(0, 1), u(0, 0.4), u(0.25, 0.9))
        img[y0:horizon, max(x0, 0):max(x1, 0)] = colour
        if rng.random() < 0.7:
            window = colour * u(0.3, 0.7)
            step_x, step_y = int(u(8, 16)), int(u(10, 20))
            for wy in range(y0 + 4, horizon - 6, step_y):
                for wx in range(max(x0, 0) + 3, min(x1, width) - 4, step_x):
                    img[wy:wy + step_y // 2, wx:wx + step_x // 2] = window
    ground = _hsv(u(0, 1), u(0, 0.2), u(0.3, 0.75))
    img[horizon:] = ground * np.linspace(0.85, 1.1, height - horizon)[:, None, None]
    img[horizon:horizon + 1] *= 0.6
    return img


def _render(rng, background, labels, parts):
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
        second = _pattern(paint, xs - x0, ys - y0, part["unit"])
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


def _draw_scene(rng, size, target=None, target_season=None):
    """One picture: (rgb, labels, garments). labels[y, x] = index of the part seen there (0 =
    background); garments = [(part index, class name, polygons)] for the annotated ones."""
    width, height = size
    background = _background(rng, width, height)
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
        figures.append(_Figure(rng, back_cx, back_top, back_unit, size))
    figures.append(_Figure(rng, cx, top, unit, size))

    parts = []
    for k, fig in enumerate(figures):
        main = k == len(figures) - 1
        outfit = _choose_outfit(rng, target if main else None)
        paints = {name: random_paint(rng) for name in CLASS_NAMES}
        if main and target is not None:
            paints[target] = season_paint(rng, target_season)
        fig_parts = _figure_parts(rng, fig, outfit, paints)
        if main and target is not None:
            for part in fig_parts:
                part["target"] = part["kind"] == "garment" and part["name"] == target
        parts += fig_parts

    labels = np.zeros((height, width), np.int32)
    designed = []
    for index, part in enumerate(parts, start=1):
        mask = _raster(part["polygons"], height, width)
        labels[mask] = index
        designed.append(mask)

    garments = [i for i, part in enumerate(parts, start=1) if part["kind"] == "garment"]
    for index in garments:        # paint over specks too small to annotate
        visible = labels == index
        count = int(visible.sum())
        if count == 0 or np.array_equal(visible, designed[index - 1]):
            continue
        if count < MIN_VISIBLE_PX:
            _absorb(labels, visible, index)
            continue
        for loop in _trace_loops(visible):
            if _signed_area(loop) > 0:
                piece = _raster([[v for p in loop for v in p]], height, width) & visible
                if 0 < piece.sum() < MIN_FRAGMENT_PX:
                    _absorb(labels, piece, index)

    annotated = []
    for index in garments:
        visible = labels == index
        if visible.sum() < MIN_VISIBLE_PX:
            if visible.any():
                _absorb(labels, visible, index)
            continue
        part = parts[index - 1]
        if np.array_equal(visible, designed[index - 1]):
            polygons = [p for p in part["polygons"] if _raster([p], height, width).any()]
        else:
            polygons = mask_polygons(visible)
        annotated.append({"index": index, "name": part["name"], "polygons": polygons,
                          "target": part.get("target", False),
                          "visible_fraction": float(visible.sum() / max(designed[index - 1].sum(), 1))})
    rgb = _render(rng, background, labels, parts)
    return rgb, labels, annotated


# --- COCO records -------------------------------------------------------------------------

def _annotation(ann_id, image_id, name, polygons, height, width):
    xs = [v for p in polygons for v in p[0::2]]
    ys = [v for p in polygons for v in p[1::2]]
    area = int(mask_utils.area(mask_utils.merge(mask_utils.frPyObjects(
        [list(map(float, p)) for p in polygons], height, width))))
    return {"segmentation": [list(p) for p in polygons], "area": area, "iscrowd": 0, "image_id": image_id,
            "bbox": [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)],
            "category_id": CATEGORY_ID_BY_NAME[name], "id": ann_id}


def _coco(images, annotations):
    return {"year": SAMPLE_YEAR, "categories": categories(), "licenses": SAMPLE_LICENSES, "type": "instances",
            "info": SAMPLE_INFO, "images": images, "annotations": annotations}


def _write_jpeg(path, rgb):
    with atomic_write(path, "wb") as f:
        Image.fromarray(rgb).save(f, format="JPEG", quality=JPEG_QUALITY)


def _check_size(size):
    try:
        width, height = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be (width, height) in pixels, got {size!r}") from None
    if width < 64 or height < 128:
        raise ValueError(f"size {width}x{height} is too small: use at least 64x128 pixels "
                         "(width x height), or small garments vanish")
    return width, height


def _image_entry(file_name, image_id, width, height):
    return {"file_name": file_name, "width": width, "id": image_id, "license": 1, "height": height}


def val_image_count(n_images):
    """How many extra, unannotated 'val' pictures go with `n_images` train pictures."""
    return max(1, min(50, n_images // 20))


def _annotate(garments, image_id, labels, annotations, label_maps, file_name):
    """Append one COCO annotation per visible garment; with `label_maps`, record the image's
    map of annotation ids (for the tests' pixel-exact check)."""
    height, width = labels.shape
    ann_map = np.zeros(labels.shape, np.int32) if label_maps is not None else None
    for garment in garments:
        ann = _annotation(len(annotations) + 1, image_id, garment["name"], garment["polygons"], height, width)
        annotations.append(ann)
        if ann_map is not None:
            ann_map[labels == garment["index"]] = ann["id"]
    if ann_map is not None:
        label_maps[file_name] = ann_map


def generate_modanet_sample(root, n_images, size=(128, 192), seed=42, progress=True, return_label_maps=False):
    """Draw `n_images` ModaNet-like pictures under `root` and write them in ModaNet's COCO form.

    Writes root/images/<id>.jpg, root/annotations/modanet2018_instances_train.json (with
    polygons) and root/annotations/modanet2018_instances_val.json (a few extra images, no
    annotations, like the real val file). Returns a summary dict; with
    `return_label_maps=True` it also holds "label_maps": {file_name: int32 array whose pixels
    are the annotation id seen there, 0 for none}."""
    if int(n_images) < 1:
        raise ValueError(f"n_images must be at least 1, got {n_images!r}")
    n_images = int(n_images)
    width, height = _check_size(size)
    root = Path(root)
    image_dir = root / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    n_val = val_image_count(n_images)
    train_images, val_images, annotations, label_maps = [], [], [], {}
    for k in tqdm(range(n_images + n_val), desc="Drawing ModaNet-like sample", disable=not progress):
        image_id = k + 1
        file_name = f"{image_id:07d}.jpg"
        rng = np.random.default_rng([int(seed), 0, k])
        rgb, labels, garments = _draw_scene(rng, (width, height))
        _write_jpeg(image_dir / file_name, rgb)
        entry = _image_entry(file_name, image_id, width, height)
        if k >= n_images:
            val_images.append(entry)
            continue
        train_images.append(entry)
        _annotate(garments, image_id, labels, annotations, label_maps if return_label_maps else None, file_name)
    train_path = write_json_atomic(root / "annotations" / TRAIN_FILE, _coco(train_images, annotations))
    val_path = write_json_atomic(root / "annotations" / VAL_FILE, _coco(val_images, []))
    summary = _summarise(train_images, annotations)
    summary.update({"val_images": len(val_images), "size": [width, height], "seed": int(seed),
                    "train_annotations": str(train_path), "val_annotations": str(val_path)})
    if return_label_maps:
        summary["label_maps"] = label_maps
    return summary


def _summarise(images, annotations):
    per_class = {name: 0 for name in CLASS_NAMES}
    images_with = {name: set() for name in CLASS_NAMES}
    for ann in annotations:
        name = CLASS_NAMES[ann["category_id"] - 1]
        per_class[name] += 1
        images_with[name].add(ann["image_id"])
    return {"images": len(images), "annotations": len(annotations),
            "multi_part_annotations": sum(len(a["segmentation"]) > 1 for a in annotations),
            "annotations_per_class": per_class,
            "images_per_class": {name: len(ids) for name, ids in images_with.items()}}


def parse_custom_name(file_name):
    """A name this generator writes: 'scarf_tie_kis_3.jpg' -> ('scarf/tie', 'kis', 3).

    Stricter than helpers.seasons.parse_custom_name (which also reads English seasons and
    other extensions): ValueError for any name that is not canonical."""
    parsed = parse_any_custom_name(file_name)
    expected = custom_file_name(*parsed)
    if Path(file_name).name != expected:
        raise ValueError(f"{file_name}: not a name helpers.sample writes (it would be {expected})")
    return parsed


def _is_custom_name(file_name):
    try:
        parse_custom_name(file_name)
    except ValueError:
        return False
    return True


def generate_custom_set(root, classes, per_label, size=(128, 192), seed=43, progress=True,
                        return_label_maps=False):
    """Draw the custom season set: `per_label` pictures for every (class, season) label.

    Writes root/custom/images/<slug>_<season>_<n>.jpg, where the named garment is worn in
    the season's look, and the hidden truth root/custom/truth.json: COCO with ModaNet's
    categories, every visible garment annotated, each image entry carrying "target_class"
    and "season". Returns a summary dict (plus "label_maps" like generate_modanet_sample)."""
    if isinstance(classes, str):
        classes = [classes]
    classes = [canonical_class(c) for c in classes]
    if not classes:
        raise ValueError("classes is empty: name at least one ModaNet class")
    if len(set(classes)) != len(classes):
        raise ValueError(f"classes lists a class twice: {classes}")
    if int(per_label) < 1:
        raise ValueError(f"per_label must be at least 1, got {per_label!r}")
    per_label = int(per_label)
    width, height = _check_size(size)
    root = Path(root)
    image_dir = root / "custom" / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(c, s, n) for c in classes for s in SEASON_CODES for n in range(1, per_label + 1)]
    images, annotations, label_maps = [], [], {}
    for image_id, (name, season, n) in enumerate(
            tqdm(jobs, desc="Drawing custom season set", disable=not progress), start=1):
        file_name = f"{class_slug(name)}_{season}_{n}.jpg"
        rng = np.random.default_rng([int(seed), 1, CLASS_NAMES.index(name), SEASON_CODES.index(season), n])
        for _ in range(50):
            rgb, labels, garments = _draw_scene(rng, (width, height), target=name, target_season=season)
            target = [g for g in garments if g["target"]]
            if target and target[0]["visible_fraction"] >= 0.6:
                break
        else:
            raise ValueError(f"could not draw a clearly visible {name} for {file_name}: "
                             "try a larger size or another seed")
        _write_jpeg(image_dir / file_name, rgb)
        entry = _image_entry(file_name, image_id, width, height)
        entry.update({"target_class": name, "season": season})
        images.append(entry)
        _annotate(garments, image_id, labels, annotations, label_maps if return_label_maps else None, file_name)
    truth_path = write_json_atomic(root / "custom" / "truth.json", _coco(images, annotations))
    summary = _summarise(images, annotations)
    summary.update({"classes": classes, "seasons": list(SEASON_CODES), "per_label": per_label,
                    "labels": len(classes) * len(SEASON_CODES), "size": [width, height], "seed": int(seed),
                    "truth": str(truth_path)})
    if return_label_maps:
        summary["label_maps"] = label_maps
    return summary


# --- one call per profile, and the command line -------------------------------------------

def sample_parameters(profile):
    """What the sample of `profile` depends on (compared with the manifest to skip a re-run)."""
    return {"generator_version": GENERATOR_VERSION, "sample_images": int(profile.sample_images),
            "sample_size": [int(v) for v in profile.sample_size],
            "custom_classes": [canonical_class(c) for c in profile.custom_classes],
            "custom_per_label": int(profile.custom_per_label), "seed": int(profile.seed)}


def _remove_stale(folder, keep, is_ours):
    removed = 0
    for path in sorted(folder.glob("*.jpg")):
        if path.name not in keep and is_ours(path.name):
            path.unlink()
            removed += 1
    return removed


def build_sample(profile, force=False, progress=True, root=None):
    """Write the profile's synthetic sample and custom set under its data root (or `root`).

    A re-run with the same parameters returns the existing manifest ("skipped": True);
    other parameters, or force=True, rebuild. The manifest is written last, so an
    interrupted build is never mistaken for a finished one. A profile with custom_per_label 0
    (the colab profile standing in for ModaNet) gets no drawn custom set: its custom photos
    come from the held-out split (`helpers.custom`), as on real ModaNet."""
    if getattr(profile, "data", None) != "synthetic":
        raise ValueError(f"profile {getattr(profile, 'name', profile)!r} uses real ModaNet data; "
                         "build_sample draws the synthetic set of the 'smoke' profile")
    root = Path(root) if root is not None else profile.paths.source
    params = sample_parameters(profile)
    manifest_path = root / MANIFEST_FILE
    with_custom = params["custom_per_label"] > 0
    done = [root / "annotations" / TRAIN_FILE, root / "annotations" / VAL_FILE]
    done += [root / "custom" / "truth.json"] if with_custom else []
    if not force and manifest_path.is_file():
        try:
            manifest = read_json(manifest_path, "sample manifest")
        except DataError:
            manifest = None
        if isinstance(manifest, dict) and manifest.get("parameters") == params and all(p.is_file() for p in done):
            return dict(manifest, skipped=True)
    manifest_path.unlink(missing_ok=True)
    sample = generate_modanet_sample(root, params["sample_images"], params["sample_size"], params["seed"], progress)
    custom = (generate_custom_set(root, params["custom_classes"], params["custom_per_label"],
                                  params["sample_size"], params["seed"] + 1, progress) if with_custom else
              {"images": 0, "annotations": 0, "classes": [], "seasons": [], "per_label": 0})
    keep = {f"{i:07d}.jpg" for i in range(1, sample["images"] + sample["val_images"] + 1)}
    removed = _remove_stale(root / "images", keep, re.compile(r"^\d{7}\.jpg$").match)
    keep = {f"{class_slug(c)}_{s}_{n}.jpg" for c in params["custom_classes"] for s in SEASON_CODES
            for n in range(1, params["custom_per_label"] + 1)}
    if with_custom:
        removed += _remove_stale(root / "custom" / "images", keep, _is_custom_name)
    for summary in (sample, custom):
        for key in ("train_annotations", "val_annotations", "truth"):
            if key in summary:
                summary[key] = str(Path(summary[key]).relative_to(root))
    manifest = {"parameters": params, "root": str(root), "modanet_sample": sample, "custom_set": custom,
                "stale_images_removed": removed}
    write_json_atomic(manifest_path, manifest, indent=1)
    return dict(manifest, skipped=False)


def format_summary(manifest):
    """The manifest as a few readable lines."""
    sample, custom = manifest["modanet_sample"], manifest["custom_set"]
    n = max(sample["images"], 1)
    lines = [f"Synthetic sample in {manifest['root']}" + (" (already built, skipped)" if manifest.get("skipped") else ""),
             f"  ModaNet-like: {sample['images']} train images ({sample['val_images']} more in val), "
             f"{sample['annotations']} annotations, {sample['multi_part_annotations']} multi-part",
             f"  {'class':12} {'annotations':>11} {'images':>7} {'% images':>9}"]
    for name in CLASS_NAMES:
        count = sample["images_per_class"][name]
        lines.append(f"  {name:12} {sample['annotations_per_class'][name]:>11} {count:>7} {100 * count / n:>8.1f}%")
    if not custom["images"]:
        lines.append("  Custom set: none drawn (taken from the held-out split by notebook 05, as on real ModaNet)")
        return "\n".join(lines)
    lines.append(f"  Custom set: {custom['images']} images = {len(custom['classes'])} classes x "
                 f"{len(custom['seasons'])} seasons x {custom['per_label']}, {custom['annotations']} annotations")
    lines.append(f"    classes: {', '.join(custom['classes'])}; seasons: {', '.join(custom['seasons'])}")
    return "\n".join(lines)


def main(argv=None):
    from helpers.profiles import get_profile

    parser = argparse.ArgumentParser(prog="python -m helpers.sample",
                                     description="Draw the synthetic ModaNet-like sample and custom season set.")
    parser.add_argument("--profile", default="smoke", help="profile to build for (default: smoke)")
    parser.add_argument("--root", default=None, help="write here instead of the profile's data folder")
    parser.add_argument("--force", action="store_true", help="rebuild even if the manifest matches")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    try:
        profile = get_profile(args.profile)
        manifest = build_sample(profile, force=args.force, progress=not args.quiet, root=args.root)
    except (ValueError, DataError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_summary(manifest))
    return 0
