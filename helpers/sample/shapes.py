"""The shapes of one figure of the synthetic sample, in figure units: its body, then its garments.

`figure_parts` draws the body, then each garment of GARMENT_LAYERS that the outfit wears, in that
table's order (back to front: a later shape covers an earlier one). Each garment's outline is a
few points, some fixed (the tables below), some drawn at random within plausible ranges. The
random draws are made in one fixed order, so the same seed gives the same picture.
"""
import math

import numpy as np

from helpers.sample.figure import ARM_LENGTH, WAIST_Y, ellipse, leg_half_width, mirror
from helpers.sample.paint import HAIR_COLOURS, SKIN_TONES, hsv, solid

DRESS_SLEEVES = (0, 0, 0.25, 0.4)                  # sleeve lengths, as a share of the arm
TOP_SLEEVES = (0, 0.25, 0.4, 0.75, 0.97, 0.97)
# Sunglasses: x, and y below the top of the lenses (drawn at random).
SUNGLASSES = ((-0.34, 0), (-0.34, 0.13), (-0.22, 0.2), (-0.08, 0.15), (-0.05, 0.07), (0.05, 0.07), (0.08, 0.15),
              (0.22, 0.2), (0.34, 0.13), (0.34, 0), (0.0, 0.03))
CAP_VISOR = ((0.72, 0.33), (0.3, 0.36), (-0.39, 0.33))   # after the dome drawn left to right: peak to the right
ANY = object()                     # in GARMENT_LAYERS: the outfit's entry is any true value


class _Shapes:
    """The parts of one figure as they are added, and what its garments share: the random source,
    the figure, its outfit and paints, its skin (the hands are drawn among the garments), the waist
    height, and the top of the shoes (the hem of pants over shoes)."""

    def __init__(self, rng, fig, outfit, paints, skin, waist):
        self.rng, self.u, self.fig, self.outfit, self.paints, self.skin = rng, rng.uniform, fig, outfit, paints, skin
        self.waist, self.belt = waist, outfit["belt"]
        self.bottom_top = waist + 0.1 if self.belt else waist    # where skirts, shorts and pants start
        self.shoe_top = None
        self.parts = []

    def add(self, kind, name, point_lists, paint):
        """Add a part ("body" / "garment") made of the pixel polygons of `point_lists`, if any is
        not degenerate."""
        polys = [poly for poly in (self.fig.polygon(pts) for pts in point_lists) if poly is not None]
        if polys:
            self.parts.append({"kind": kind, "name": name, "polygons": polys, "paint": paint, "unit": self.fig.unit})


def figure_parts(rng, fig, outfit, paints):
    """The figure's shapes in drawing order (back to front): body parts and garments.

    Each part is a dict: kind ("body"/"garment"), name (a ModaNet class for garments),
    polygons (pixel polygons), paint, unit (pixels per figure unit)."""
    skin = solid(hsv(*SKIN_TONES[rng.integers(len(SKIN_TONES))]))
    hair = solid(hsv(*HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))]))
    long_hair = rng.random() < 0.45
    shapes = _Shapes(rng, fig, outfit, paints, skin, WAIST_Y + rng.uniform(-0.1, 0.1))
    _body(shapes, hair, long_hair)
    shapes.shoe_top = rng.uniform(7.45, 7.62)      # drawn whether or not the figure wears shoes
    for key, wanted, draw in GARMENT_LAYERS:
        if key is None or (outfit[key] if wanted is ANY else outfit[key] == wanted):
            draw(shapes)
    return shapes.parts


def _body(s, hair, long_hair):
    """Hair behind, legs, arms, torso, head and the hair on it (back to front)."""
    fig, u = s.fig, s.u
    if long_hair:
        s.add("body", "hair", [[(-0.42, 0.3), (-0.56, u(1.5, 2.1)), (0.56, u(1.5, 2.1)), (0.42, 0.3)]], hair)
    for side in (-1, 1):
        lx7, lx57 = fig.leg_x(7.6), fig.leg_x(5.7)
        leg = [(0.0, 3.4), (0.8, 3.4), (lx57 + 0.27, 5.7), (lx7 + 0.12, 7.6), (lx7 + 0.14, 7.7),
               (lx7 - 0.14, 7.7), (lx7 - 0.12, 7.6), (lx57 - 0.27, 5.7), (0.02, 4.1)]
        foot = [(lx7 - 0.13, 7.6), (lx7 + 0.13, 7.6), (lx7 + 0.2, 8.0), (lx7 - 0.16, 8.0)]
        s.add("body", "leg", [[(side * x, y) for x, y in leg], [(side * x, y) for x, y in foot]], s.skin)
        arm = [fig.arm(side, 0, 0.15), fig.arm(side, ARM_LENGTH, 0.1), fig.arm(side, ARM_LENGTH, -0.1),
               fig.arm(side, 0.4, -0.15), fig.arm(side, 0, -0.15)]
        s.add("body", "arm", [arm], s.skin)
    torso = [(-0.14, 0.9), (-0.14, 1.25), (-0.95, 1.33), (-0.86, 1.95), (-0.6, s.waist), (-0.82, 3.6)]
    s.add("body", "torso", [torso + mirror(torso)], s.skin)
    s.add("body", "head", [ellipse(0, 0.5, 0.33, 0.5)], s.skin)
    s.add("body", "hair", [ellipse(0, 0.48, 0.37, 0.53, math.pi + 0.45, 2 * math.pi - 0.45 + 1e-9, 12)], hair)


# --- garments on the torso and the legs ---------------------------------------------------------
def _torso_side(s, side, neck_w, sleeve, hem_y, hem_w, extra):
    """One side (-1 left, +1 right) of a garment worn on the torso, neck to hem, `extra` units
    out from the body; `sleeve` is the sleeve's length as a share of the arm."""
    pts = [(neck_w, 1.22), (0.98 + extra, 1.3)]
    if sleeve > 0:
        def arm_pt(t, off):
            x, y = s.fig.arm(side, t, off)
            return (side * x, y)
        pts += [arm_pt(-0.02, 0.18 + extra), arm_pt(sleeve * ARM_LENGTH, 0.15 + extra),
                arm_pt(sleeve * ARM_LENGTH, -0.15 - extra)]
    pts.append((0.86 + extra, 1.95))
    if hem_y <= s.waist:
        x_at_hem = float(np.interp(hem_y, [1.95, s.waist], [0.86, 0.6]))
        pts.append((x_at_hem + extra, hem_y))
    else:
        pts.append((0.62 + extra, s.waist))
        if hem_y > 3.6:
            pts.append((0.84 + extra, 3.6))
        pts.append((hem_w + extra, hem_y))
    return [(side * x, y) for x, y in pts]


def _torso_garment(s, name, sleeve, hem_y, hem_w, paint):
    extra = paint["thick"] + s.u(0.0, 0.05)
    neck_w = s.u(0.14, 0.22)
    left = _torso_side(s, -1, neck_w, sleeve, hem_y, hem_w, extra)
    right = _torso_side(s, 1, neck_w, sleeve, hem_y, hem_w, extra)
    s.add("garment", name, [left + list(reversed(right)) + [(0, 1.22 + s.u(0.05, 0.4))]], paint)


def _leg_garment(s, name, hem_y, pad):
    """Pants or shorts down to `hem_y`, `pad` units wider than the legs."""
    fig = s.fig
    pts = [(0.62 + pad * 0.3, s.bottom_top), (0.84 + pad * 0.5, 3.6)]
    if hem_y > 5.7:
        pts.append((fig.leg_x(5.7) + 0.27 + pad, 5.7))
    pts += [(fig.leg_x(hem_y) + leg_half_width(hem_y) + pad, hem_y),
            (max(0.03, fig.leg_x(hem_y) - leg_half_width(hem_y) - pad), hem_y)]
    if hem_y > 5.7:
        pts.append((max(0.03, fig.leg_x(5.7) - 0.27 - pad), 5.7))
    left = [(-x, y) for x, y in pts]
    s.add("garment", name, [left + [(0.0, 4.15)] + list(reversed(pts))], s.paints[name])


def _pants(s):
    pants_hem = s.shoe_top if s.outfit["feet"] == "footwear" else s.u(7.4, 7.7)
    _leg_garment(s, "pants", pants_hem, s.u(0.04, 0.16) + s.paints["pants"]["thick"])


def _shorts(s):
    _leg_garment(s, "shorts", s.u(4.4, 5.0), s.u(0.05, 0.12) + s.paints["shorts"]["thick"])


def _skirt(s):
    hem_w = s.u(0.85, 1.35) + s.paints["skirt"]["thick"]
    hem_y = s.u(4.6, 6.0)
    side = [(-0.64, s.bottom_top), (-0.84, 3.6), (-hem_w, hem_y)]
    s.add("garment", "skirt", [side + mirror(side)], s.paints["skirt"])


def _dress_or_top(s):
    if s.outfit["upper"] == "dress":
        _torso_garment(s, "dress", DRESS_SLEEVES[s.rng.integers(4)], s.u(5.2, 6.0), s.u(0.95, 1.4),
                       s.paints["dress"])
        return
    style = s.rng.integers(6)
    hem_y = {0: s.u(2.7, 2.85), 1: s.u(3.35, 3.6)}.get(style, s.waist - 0.1 if s.belt else s.waist)
    _torso_garment(s, "top", TOP_SLEEVES[s.rng.integers(6)], hem_y, s.u(0.7, 0.85), s.paints["top"])


def _belt(s):
    waist = s.waist
    s.add("garment", "belt", [[(-0.67, waist - 0.1), (0.67, waist - 0.1), (0.69, waist + 0.1),
                               (-0.69, waist + 0.1)]], s.paints["belt"])


def _outer(s):
    """A jacket or (when the bottom allows) a long coat, open down the front."""
    u = s.u
    long_coat = s.outfit["long_coat_ok"] and s.rng.random() < 0.4
    hem_y = u(4.6, 5.6) if long_coat else u(3.2, 3.6)
    hem_w = u(0.95, 1.15)
    gap = u(0.14, 0.35)
    extra = 0.08 + s.paints["outer"]["thick"]
    neck_w = u(0.18, 0.25)
    left = _torso_side(s, -1, neck_w, 0.95, hem_y, hem_w, extra) + [(-gap, hem_y), (-gap, u(1.7, 2.2))]
    right = _torso_side(s, 1, neck_w, 0.95, hem_y, hem_w, extra) + [(gap, hem_y), (gap, u(1.7, 2.2))]
    s.add("garment", "outer", [left, right], s.paints["outer"])


# --- feet, neck, hands and head ----------------------------------------------------------------
def _shoes(s):
    """Footwear or boots, one polygon per foot."""
    fig, u, feet = s.fig, s.u, s.outfit["feet"]
    shoes = []
    boot_top = u(5.9, 6.8)
    for side in (-1, 1):
        lx = fig.leg_x(7.6)
        if feet == "boots":
            hw = leg_half_width(boot_top) + 0.06 + s.paints["boots"]["thick"]
            bx = fig.leg_x(boot_top)
            pts = [(bx - hw, boot_top), (bx + hw, boot_top), (lx + 0.18, 7.6), (lx + 0.25, 8.0),
                   (lx - 0.2, 8.0), (lx - 0.18, 7.6)]
        else:
            pts = [(lx - 0.16, s.shoe_top), (lx + 0.16, s.shoe_top), (lx + 0.23, 7.82), (lx + 0.25, 8.0),
                   (lx - 0.2, 8.0), (lx - 0.2, 7.8)]
        shoes.append([(side * x, y) for x, y in pts])
    s.add("garment", feet, shoes, s.paints[feet])


def _scarf_or_tie(s):
    u = s.u
    if s.rng.random() < 0.45:   # a tie
        tip = u(2.2, 2.6)
        tie = [(-0.06, 1.2), (0.06, 1.2), (0.09, 1.33), (0.05, 1.42), (0.13, tip - 0.15), (0, tip),
               (-0.13, tip - 0.15), (-0.05, 1.42), (-0.09, 1.33)]
        s.add("garment", "scarf/tie", [tie], s.paints["scarf/tie"])
    else:                       # a scarf round the neck with one end hanging
        side = 1 if s.rng.random() < 0.5 else -1
        end = u(2.2, 3.2)
        scarf = [(-0.32, 1.0), (0.32, 1.0), (0.36, 1.3), (0.22, 1.45), (0.28, end), (0.06, end + 0.05),
                 (0.04, 1.46), (-0.36, 1.3)]
        s.add("garment", "scarf/tie", [[(side * x, y) for x, y in scarf]], s.paints["scarf/tie"])


def _hands(s):
    for side in (-1, 1):
        s.add("body", "hand", [ellipse(*s.fig.arm(side, ARM_LENGTH + 0.12, 0), 0.13, 0.16, n=10)], s.skin)


def _bag(s):
    """A handbag held by its handle, or a shoulder or cross-body bag on its strap."""
    u = s.u
    side = 1 if s.rng.random() < 0.5 else -1
    style = s.rng.integers(3)
    if style == 0:              # a handbag held by its handle
        hx, hy = s.fig.arm(side, ARM_LENGTH + 0.1, 0)
        top, height, width = hy + 0.2, u(0.55, 0.95), u(0.7, 1.05)
        bx = hx + side * u(0.0, 0.15)
        bag = [(hx - 0.07, hy - 0.06), (hx + 0.07, hy - 0.06), (hx + 0.12, top), (bx + width / 2, top),
               (bx + width / 2 + 0.06, top + height), (bx - width / 2 - 0.06, top + height),
               (bx - width / 2, top), (hx - 0.12, top)]
        s.add("garment", "bag", [bag], s.paints["bag"])
        return
    top, height, width = u(3.2, 3.8), u(0.55, 0.8), u(0.7, 1.0)
    bx = side * u(0.95, 1.25)
    strap_from = side * 0.78 if style == 1 else -side * 0.7
    body = [(bx - width / 2, top), (bx + width / 2, top), (bx + width / 2 + 0.04, top + height),
            (bx - width / 2 - 0.04, top + height)]
    anchor = bx - side * 0.15
    strap = [(strap_from - 0.1, 1.28), (strap_from + 0.1, 1.28), (anchor + 0.1, top), (anchor - 0.1, top)]
    s.add("garment", "bag", [strap, body], s.paints["bag"])


def _sunglasses(s):
    y0 = s.u(0.38, 0.44)
    s.add("garment", "sunglasses", [[(x, y0 + dy) for x, dy in SUNGLASSES]], s.paints["sunglasses"])


def _headwear(s):
    """A brimmed hat, a beanie or a cap with a visor."""
    style = s.rng.integers(3)
    if style == 0:              # a brimmed hat
        crown = s.u(-0.45, -0.2)
        hat = [(-0.64, 0.24), (0.64, 0.24), (0.5, 0.11), (0.34, 0.11), (0.3, crown), (-0.3, crown),
               (-0.34, 0.11), (-0.5, 0.11)]
    elif style == 1:            # a beanie
        hat = ellipse(0, 0.32, 0.42, 0.44, math.pi, 2 * math.pi + 1e-9, 12) + [(0.43, 0.36), (-0.43, 0.36)]
    else:                       # a cap with a visor
        cap = ellipse(0, 0.3, 0.39, 0.38, math.pi, 2 * math.pi + 1e-9, 12) + list(CAP_VISOR)
        hat = cap if s.rng.random() < 0.5 else [(-x, y) for x, y in cap]
    s.add("garment", "headwear", [hat], s.paints["headwear"])


# Drawing order, back to front: (outfit key, the value that draws it, drawer); key None: always.
GARMENT_LAYERS = (
    ("bottom", "pants", _pants),
    ("feet", ANY, _shoes),
    ("bottom", "shorts", _shorts),
    ("bottom", "skirt", _skirt),
    (None, ANY, _dress_or_top),
    ("belt", ANY, _belt),
    ("outer", ANY, _outer),
    ("scarf/tie", ANY, _scarf_or_tie),
    (None, ANY, _hands),            # over a scarf's hanging end, under a bag's handle
    ("bag", ANY, _bag),
    ("sunglasses", ANY, _sunglasses),
    ("headwear", ANY, _headwear),
)
