"""Checks that run before pycocotools or Pillow see user data: what they cannot survive.

pycocotools rasterises a polygon by walking its outline at 5 steps per pixel, in C, without
limits: one vertex at x = 1e9 (or NaN, or infinity) makes it ask for tens of gigabytes (the
process is OOM-killed or segfaults); an RLE whose counts add up to more than height x width
makes its decoder write past its buffer. Pillow refuses to open an image whose header claims
more than twice its MAX_IMAGE_PIXELS, with a DecompressionBombError that is no OSError.

The rules, chosen so that valid data is never changed:
- a polygon part is kept as it is when its coordinates are finite, lie within one image side
  beyond the image's edges (x in [-width, 2 width], y in [-height, 2 height]) and its outline is
  at most MAX_OUTLINE_FACTOR x (width + height) long. Vertices outside the image but within that
  margin are NOT clipped: pycocotools rasterises them exactly (the mask is the part inside the
  image) and clipping vertices would move edges that cross into the image. Anything else is a
  reason to skip the part (counted by the caller): far outside, non-finite, or too long;
- an RLE is kept when its size is the image's and its counts are non-negative and add up to
  exactly height x width (compressed strings are decoded here to check that);
- an image larger than MAX_IMAGE_SIDE pixels a side is refused before any mask is made.
"""
import math
import numbers

MAX_IMAGE_SIDE = 20000   # px: larger images (or canvases) are not rasterised (pycocotools' memory)

# Types JSON gives for numbers: checked first, as a set, because ModaNet has millions of them.
PLAIN_NUMBER_TYPES = {int, float}
# Vertices may lie this many image sides beyond the image's edges (pycocotools clips them).
FAR_OUTSIDE_SIDES = 1
# A polygon part's outline (L-infinity length, what pycocotools' memory follows) may be at most
# this many times width + height: a real garment's is a few times; 100 keeps pycocotools under
# ~250 MB even at MAX_IMAGE_SIDE.
MAX_OUTLINE_FACTOR = 100

NOT_FINITE = "polygon part: coordinates not finite (NaN or infinity)"
FAR_OUTSIDE = "polygon part: coordinates far outside the image"
TOO_LONG = "polygon part: outline too long"


def positive_int(value):
    """An image side as a positive int (accepts 600, 600.0 and "600"), else None."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if not number.is_integer() or number <= 0:
        return None
    return int(number)


def image_size_problem(width, height):
    """Why an image of this size is refused, or None."""
    if width > MAX_IMAGE_SIDE or height > MAX_IMAGE_SIDE:
        return (f"{width}x{height} pixels (width x height) is over {MAX_IMAGE_SIDE} px a side: refused, "
                "its masks would not fit in memory")
    return None


def polygon_problem(polygon, height, width):
    """Why a flat polygon [x0, y0, x1, y1, ...] cannot be rasterised at (height, width), or None."""
    if not isinstance(polygon, (list, tuple)):
        return "polygon part: not a list of coordinates"
    if not {type(v) for v in polygon} <= PLAIN_NUMBER_TYPES and not all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) for v in polygon):
        return "polygon part: coordinates are not numbers"
    if len(polygon) % 2:
        return "polygon part: odd number of coordinates"
    if len(polygon) < 6:
        # pycocotools would read 4 numbers as a box: never let that happen.
        return "polygon part: fewer than 3 points"
    return coordinates_problem(polygon, height, width)


def coordinates_problem(polygon, height, width):
    """Why the numbers of a flat polygon are unsafe for pycocotools at (height, width), or None."""
    try:
        total = float(sum(polygon))    # NaN and infinity survive a sum; an int too big for a float raises
    except OverflowError:
        return FAR_OUTSIDE
    if not math.isfinite(total):
        return NOT_FINITE if not all(map(math.isfinite, polygon)) else FAR_OUTSIDE
    side = min(width, height)
    if not (min(polygon) >= -FAR_OUTSIDE_SIDES * side and max(polygon) <= (1 + FAR_OUTSIDE_SIDES) * side):
        # outside the square every image contains: look at x and y apart (ModaNet rarely gets here)
        xs, ys = polygon[0::2], polygon[1::2]
        margin_x, margin_y = FAR_OUTSIDE_SIDES * width, FAR_OUTSIDE_SIDES * height
        if min(xs) < -margin_x or max(xs) > width + margin_x or min(ys) < -margin_y or max(ys) > height + margin_y:
            return FAR_OUTSIDE
    limit = MAX_OUTLINE_FACTOR * (width + height)
    longest_edge = (1 + 2 * FAR_OUTSIDE_SIDES) * max(width, height)
    if len(polygon) // 2 * longest_edge > limit:     # only long polygons can exceed it: measure those
        xs, ys = polygon[0::2], polygon[1::2]
        outline = sum(max(abs(x1 - x0), abs(y1 - y0))
                      for x0, y0, x1, y1 in zip(xs, ys, xs[1:] + xs[:1], ys[1:] + ys[:1]))
        if outline > limit:
            return TOO_LONG
    return None


def _compressed_counts(counts):
    """The run lengths of COCO's compressed RLE string (as pycocotools' rleFrString reads it), or None."""
    if isinstance(counts, str):
        try:
            counts = counts.encode("ascii")
        except UnicodeEncodeError:
            return None
    runs, position = [], 0
    while position < len(counts):
        value, shift, more = 0, 0, True
        while more:
            if position >= len(counts) or shift > 60:
                return None
            chunk = counts[position] - 48
            if not 0 <= chunk < 64:
                return None
            value |= (chunk & 0x1F) << shift
            more = chunk & 0x20
            position += 1
            shift += 5
            if not more and chunk & 0x10:
                value -= 1 << shift        # sign-extend, as the C code does
        if len(runs) > 2:
            value += runs[-2]
        runs.append(value)
    return runs


def rle_problem(rle, height, width):
    """Why an RLE dict cannot be decoded safely at (height, width), or None."""
    size, counts = rle.get("size"), rle.get("counts")
    if not isinstance(size, (list, tuple)) or len(size) != 2:
        return "annotation: malformed RLE"
    if [v if type(v) is int else (int(v) if isinstance(v, float) and v.is_integer() else None)
            for v in size] != [height, width]:
        return "annotation: RLE size differs from the image's"
    if isinstance(counts, list):
        if not all(type(v) is int for v in counts):
            return "annotation: malformed RLE"
        runs = counts
    elif isinstance(counts, (str, bytes)):
        runs = _compressed_counts(counts)
        if runs is None:
            return "annotation: malformed RLE"
    else:
        return "annotation: malformed RLE"
    if any(v < 0 for v in runs) or sum(runs) != height * width:
        return "annotation: RLE counts do not cover the image exactly"
    return None
