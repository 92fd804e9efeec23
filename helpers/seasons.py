"""Season codes and the `<class>_<season>_<n>.jpg` names of the custom season set.

The custom photos carry their label in the file name: `skirt_yaz_12.jpg` is a summer skirt,
`scarf_tie_kis_3.jpg` a winter scarf/tie. The season is a code of helpers.modanet.SEASONS
(yaz, sonb, ilkb, kis, 4mev) or its English word (summer, autumn/fall, spring, winter,
all seasons), any case; the class is one of ModaNet's 13 by name or file-name slug. A label
of the auto-labelled set joins the two: "skirt_yaz", "scarf_tie_kis".
"""
import re
from pathlib import Path
from typing import NamedTuple

from helpers.modanet import CLASS_NAMES, SEASONS, class_slug

SEASON_CODES = tuple(SEASONS)                 # yaz, sonb, ilkb, kis, 4mev
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")

# Every accepted spelling (lower case) -> season code.
_SEASON_BY_WORD = {code: code for code in SEASON_CODES}
_SEASON_BY_WORD.update({
    "summer": "yaz", "autumn": "sonb", "fall": "sonb", "spring": "ilkb", "winter": "kis",
    "all": "4mev", "all seasons": "4mev", "allseasons": "4mev", "all_seasons": "4mev",
})
# Class name or slug (lower case) -> ModaNet's spelling.
_CLASS_BY_WORD = {name: name for name in CLASS_NAMES}
_CLASS_BY_WORD.update({class_slug(name): name for name in CLASS_NAMES})

_NAME_SHAPE = re.compile(r"^(?P<stem>.+)_(?P<number>\d+)(?P<ext>\.[A-Za-z0-9]+)$")
_SHAPE_TEXT = "<class>_<season>_<n>.jpg (or .jpeg / .png)"


class CustomName(NamedTuple):
    """What a custom file name says: ModaNet class name, season code, picture number."""
    class_name: str
    season: str
    number: int


def _season_list():
    return ", ".join(f"{code} ({word})" for code, word in SEASONS.items())


def season_code(text):
    """The season code of `text`, a code or an English word in any case: 'Summer' -> 'yaz'."""
    code = _SEASON_BY_WORD.get(str(text).strip().lower())
    if code is None:
        raise ValueError(f"Unknown season {text!r}: use one of {_season_list()}")
    return code


def canonical_class(name):
    """ModaNet's spelling of a class given by name or slug, any case: 'Scarf_Tie' -> 'scarf/tie'."""
    found = _CLASS_BY_WORD.get(str(name).strip().lower())
    if found is None:
        raise ValueError(f"Unknown class {name!r}: ModaNet's classes are {', '.join(CLASS_NAMES)}")
    return found


def _split_class_season(text):
    """(class name, season code) from '<class>_<season>', trying every '_' as the divider.

    Both halves may hold '_' ('scarf_tie', 'all_seasons'). Returns (None, season text) when
    a season is recognised but no class, and (None, None) when no season is recognised."""
    pieces = text.split("_")
    season_seen = None
    for cut in range(len(pieces) - 1, 0, -1):
        class_part, season_part = "_".join(pieces[:cut]), "_".join(pieces[cut:])
        code = _SEASON_BY_WORD.get(season_part.lower())
        if code is None:
            continue
        found = _CLASS_BY_WORD.get(class_part.lower())
        if found is not None:
            return found, code
        season_seen = season_seen or (class_part, season_part)
    return None, season_seen


def parse_custom_name(file_name):
    """'scarf_tie_kis_3.jpg' -> CustomName('scarf/tie', 'kis', 3); 'skirt_summer_3.JPG' -> ('skirt', 'yaz', 3).

    Raises ValueError naming the file and saying whether the shape, the class or the season
    is wrong."""
    name = Path(str(file_name)).name
    match = _NAME_SHAPE.match(name)
    if match is None:
        raise ValueError(f"{name}: not named {_SHAPE_TEXT}")
    if match["ext"].lower() not in IMAGE_EXTENSIONS:
        raise ValueError(f"{name}: extension {match['ext']!r} is not one of {', '.join(IMAGE_EXTENSIONS)} "
                         f"(expected {_SHAPE_TEXT})")
    number = int(match["number"])
    if number < 1:
        raise ValueError(f"{name}: picture number must be 1 or more (expected {_SHAPE_TEXT})")
    class_name, season = _split_class_season(match["stem"])
    if class_name is not None:
        return CustomName(class_name, season, number)
    if season is not None:
        raise ValueError(f"{name}: unknown class {season[0]!r} (season {season[1]!r} is fine): "
                         f"ModaNet's classes are {', '.join(class_slug(c) for c in CLASS_NAMES)}")
    if "_" not in match["stem"]:
        raise ValueError(f"{name}: no season in the name (expected {_SHAPE_TEXT})")
    last = match["stem"].rsplit("_", 1)[1]
    raise ValueError(f"{name}: unknown season {last!r}: use one of {_season_list()}")


def custom_file_name(class_name, season, number, ext=".jpg"):
    """The canonical file name: ('scarf/tie', 'winter', 3) -> 'scarf_tie_kis_3.jpg'."""
    return f"{label_name(class_name, season)}_{int(number)}{ext}"


def season_from_filename(name):
    """The season code a custom file name carries: 'skirt_summer_3.jpg' -> 'yaz'."""
    return parse_custom_name(name).season


def label_name(class_name, season):
    """The auto-label of a class and season: ('scarf/tie', 'kis') -> 'scarf_tie_kis'."""
    return f"{class_slug(canonical_class(class_name))}_{season_code(season)}"


def parse_label(label):
    """'scarf_tie_kis' -> ('scarf/tie', 'kis'); ValueError for anything else."""
    class_name, season = _split_class_season(str(label))
    if class_name is None:
        raise ValueError(f"label {label!r} is not <class>_<season> (classes: "
                         f"{', '.join(class_slug(c) for c in CLASS_NAMES)}; seasons: {_season_list()})")
    return class_name, season


def one_photo_per_class(file_names):
    """The first file of each garment class, in class order: a sample that shows every class once.

    Files whose names do not parse are left out (the auto-labeller skips and lists them).
    """
    first = {}
    for name in sorted(file_names):
        try:
            first.setdefault(parse_custom_name(name).class_name, name)
        except ValueError:
            continue
    return [first[c] for c in sorted(first)]


def garments_without_labels(file_names, labels):
    """The garments the file names ask for that no label in `labels` ('skirt_yaz', ...) is left for.

    After auto-labelling and filtering, these are the garments model-2 never sees: say so, do not
    let them vanish quietly.
    """
    named = set()
    for name in file_names:
        try:
            named.add(parse_custom_name(name).class_name)
        except ValueError:
            continue
    kept = {parse_label(label)[0] for label in labels}
    return sorted(named - kept)
