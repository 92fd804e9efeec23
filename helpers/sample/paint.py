"""Colours and patterns of the synthetic sample: a garment's look in each season (`season_paint`),
a look from a wide palette (`random_paint`), skin and hair colours, and where a look's pattern
paints its second colour (`pattern_mask`)."""
import colorsys
import math

import numpy as np

from helpers.seasons import SEASON_CODES


def hsv(h, s, v):
    return np.array(colorsys.hsv_to_rgb(h % 1.0, float(np.clip(s, 0, 1)), float(np.clip(v, 0, 1)))) * 255.0


def season_paint(rng, season):
    """The look of a garment in `season`: a palette and a pattern that tell the season apart."""
    u = rng.uniform
    if season == "yaz":      # summer: bright warm colours, plain
        c1 = hsv(u(-0.06, 0.15), u(0.75, 1.0), u(0.9, 1.0))
        return {"c1": c1, "c2": c1, "pattern": "solid", "scale": 0.3, "thick": 0.0}
    if season == "sonb":     # autumn: browns and oranges, stripes
        return {"c1": hsv(u(0.04, 0.1), u(0.65, 0.9), u(0.45, 0.62)),
                "c2": hsv(u(0.03, 0.09), u(0.6, 0.9), u(0.2, 0.3)),
                "pattern": "stripes", "scale": u(0.22, 0.32), "angle": u(0, math.pi), "thick": 0.0}
    if season == "ilkb":     # spring: pastels with white dots
        return {"c1": hsv(u(0, 1), u(0.2, 0.38), u(0.9, 1.0)), "c2": hsv(0, 0, u(0.97, 1.0)),
                "pattern": "dots", "scale": u(0.22, 0.3), "thick": 0.0}
    if season == "kis":      # winter: dark blues and greys, thick and quilted
        c1 = hsv(u(0.56, 0.66), u(0.3, 0.6), u(0.2, 0.34))
        return {"c1": c1, "c2": c1 * 0.7, "pattern": "quilt", "scale": u(0.25, 0.35), "thick": 0.07}
    if season == "4mev":    # all seasons: black and white check, a neutral grey overall
        dark, light = hsv(0, 0, u(0.05, 0.18)), hsv(0, 0, u(0.82, 0.95))
        c1, c2 = (dark, light) if rng.random() < 0.5 else (light, dark)
        return {"c1": c1, "c2": c2, "pattern": "check", "scale": u(0.14, 0.2), "thick": 0.0}
    raise ValueError(f"Unknown season code {season!r}: use one of {', '.join(SEASON_CODES)}")


def random_paint(rng):
    """A garment look from a wide palette: any hue and brightness, sometimes a season's look."""
    if rng.random() < 0.35:
        return season_paint(rng, SEASON_CODES[rng.integers(len(SEASON_CODES))])
    c1 = hsv(rng.random(), rng.random() ** 0.7, rng.uniform(0.1, 0.97))
    c2 = hsv(rng.random(), rng.random(), rng.uniform(0.1, 0.97))
    pattern = ("solid", "solid", "solid", "stripes", "dots", "check")[rng.integers(6)]
    return {"c1": c1, "c2": c2, "pattern": pattern, "scale": rng.uniform(0.18, 0.35),
            "angle": rng.uniform(0, math.pi), "thick": 0.0}


SKIN_TONES = [(0.07, 0.25, 0.96), (0.07, 0.35, 0.9), (0.06, 0.45, 0.8), (0.07, 0.5, 0.68),
              (0.06, 0.55, 0.55), (0.05, 0.6, 0.42), (0.05, 0.55, 0.32)]
HAIR_COLOURS = [(0.07, 0.3, 0.08), (0.07, 0.6, 0.25), (0.09, 0.5, 0.45), (0.12, 0.45, 0.85),
                (0.03, 0.7, 0.5), (0.0, 0.0, 0.7)]


def solid(rgb):
    return {"c1": np.asarray(rgb, dtype=float), "c2": np.asarray(rgb, dtype=float),
            "pattern": "solid", "scale": 0.3, "thick": 0.0}


def pattern_mask(paint, xs, ys, unit):
    """Where a look's second colour goes on pixels (xs, ys) of a part `unit` pixels per figure unit."""
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
