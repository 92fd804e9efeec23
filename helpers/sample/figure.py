"""One standing figure of the synthetic sample: where it stands (`Figure`, figure units to pixels)
and what it wears (`choose_outfit`). Its shapes are in helpers.sample.shapes."""
import math

import numpy as np

ARM_LENGTH = 2.65                # figure units (one unit = one head height, a figure is 8)
WAIST_Y = 3.0


class Figure:
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


def leg_half_width(y):
    return float(np.interp(y, [3.6, 5.7, 7.6], [0.38, 0.27, 0.12]))


def ellipse(cx, cy, rx, ry, start=0.0, stop=2 * math.pi, n=16):
    return [(cx + rx * math.cos(t), cy + ry * math.sin(t)) for t in np.linspace(start, stop, n, endpoint=False)]


def mirror(points):
    return [(-x, y) for x, y in reversed(points)]


def choose_outfit(rng, target=None):
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
