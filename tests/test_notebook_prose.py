"""The notebooks' prose quotes no figure the run does not compute.

A number typed into a markdown cell ("97 of 180 photos", "mask AP50 0.14") is true of one run at
best; the notebooks print such figures from the run instead. This test reads every markdown cell
and fails on a number that is none of:

- structure: notebook numbers (`04`), section numbers, "model-1", code spans and links;
- a value some profile sets (helpers/profiles.py: the prose may name a profile's budget or epochs);
- a published fact, listed in FACTS below with where it comes from;
- in a sentence that says it is an example ("e.g.", "say", "for example") or an estimate.

It cannot tell a true sentence without numbers from a false one: the closing reread does that.
"""
import json
import re
from dataclasses import fields
from pathlib import Path

import pytest

from helpers.profiles import PROFILES

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))

FACTS = {
    "13": "ModaNet's garment classes",
    "55,176": "ModaNet's photos (its paper)",
    "52,377": "images in ModaNet's train file, the one with polygons",
    "4.0": "CC BY-NC 4.0, ModaNet's licence",
    "0.50": "COCO's IoU thresholds run from 0.50 ...",
    "0.95": "... to 0.95",
    "12": "a free Colab runtime lives at most 12 hours (Colab's FAQ)",
    "3": "Keras 3",
    "64": "Config requires image sizes that are multiples of 64",
    "9": "the original project kept 9 labels",
    "#4": "eBay/modanet issue #4 (the duplicates)",
    "2": "images.zip is ~2 GB (helpers.download)",
    "40": "PaperDoll's photos.lmdb.tar is ~40 GB (helpers.download) ...",
    "80": "... and ~80 GB while it and its unpacked copy both exist",
}
STRUCTURE = [
    r"\b[Mm]odel-\d\b",                                     # model-1, model-2
    r"(?<![\d.,])0\d(?!\d|[.,]\d)",                          # notebook numbers: 02, 05 -> 07, 04_train_model1
    r"\b[Ss]ection \d+\b", r"\b[Ss]tep \d+\b",
    r"\bResNet-\d+\b", r"\bstages \d and \d\b", r"\bVIA \d\b",
    r"\b\d+ / \d+( / \d+)?\b", r"\b\d+/\d+\b",             # split fractions as the parameters cell sets them
    r"\bids 1, 2, 3\b",
]
EXAMPLE = re.compile(r"e\.g\.|for example|\bsay\b|estimate|an example", re.I)
# sentences end at . ! ? : ; (not after "e.g." or "i.e."), list items and table cells
SENTENCE_BREAK = re.compile(r"(?<!e\.g\.)(?<!i\.e\.)(?<=[.!?:;])\s+|\n\s*[*-] |\|")
NUMBER = re.compile(r"#?(?<![\w.])\d[\d,]*(?:\.\d+)?")


def profile_values():
    values = set()
    for profile in PROFILES.values():
        for f in fields(profile):
            value = getattr(profile, f.name)
            items = value.values() if isinstance(value, dict) else value if isinstance(value, tuple) else [value]
            for item in items:
                if isinstance(item, (int, float)) and not isinstance(item, bool):
                    values |= {str(item), f"{item:g}", f"{item:,}"}
    return values


def plain_prose(markdown):
    """The markdown without code spans, links, headings' numbers and list numbers."""
    text = re.sub(r"`[^`]*`", " ", markdown)
    text = re.sub(r"\]\([^)]*\)|https?://\S+", " ", text)
    text = re.sub(r"^#+ \d+\.?", " ", text, flags=re.M)
    text = re.sub(r"^\s*\d+\. ", " ", text, flags=re.M)
    for pattern in STRUCTURE:
        text = re.sub(pattern, " ", text)
    return text


def uncomputed_figures(markdown, allowed):
    """The numbers of `markdown` that nothing above allows, each with its sentence."""
    found = []
    for sentence in SENTENCE_BREAK.split(plain_prose(markdown)):
        if EXAMPLE.search(sentence):
            continue
        for match in NUMBER.finditer(sentence):
            figure = match.group().rstrip(",")
            if figure not in allowed and figure not in FACTS:
                found.append((figure, " ".join(sentence.split())[:120]))
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_markdown_quotes_no_figure_the_run_does_not_compute(path):
    allowed = profile_values()
    nb = json.loads(path.read_text(encoding="utf-8"))
    problems = [(i, *found) for i, cell in enumerate(nb["cells"]) if cell["cell_type"] == "markdown"
                for found in uncomputed_figures("".join(cell["source"]), allowed)]
    assert not problems, "\n".join(f"{path.name} cell {i}: {figure!r} in: {text}" for i, figure, text in problems)


def test_the_check_catches_typed_run_figures():
    allowed = profile_values()
    typed = "The run auto-labelled 93 of the 180 photos, mask AP50 0.14 on 13 test photos."
    assert [f for f, _ in uncomputed_figures(typed, allowed)] == ["93", "180", "0.14"]   # 13: a fact
    assert not uncomputed_figures("Raise the threshold, e.g. to 0.93.", allowed)
    assert not uncomputed_figures("Notebook 05 uses model-1 (section 4, `EPOCHS = 777`).", allowed)
