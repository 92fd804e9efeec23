"""ModaNet facts in one place: the 13 classes, where the files live online, checksums, licence.

Every other module and notebook reads class names and sources from here.
"""

# ModaNet's categories, in its own order (category id = index + 1), spelled as in its JSON.
CLASS_NAMES = (
    "bag", "belt", "boots", "footwear", "outer", "dress", "sunglasses",
    "pants", "top", "shorts", "skirt", "headwear", "scarf/tie",
)
NUM_CLASSES = len(CLASS_NAMES)

# id -> name and name -> id, ids 1..13 as in ModaNet.
CATEGORY_NAME_BY_ID = {i + 1: name for i, name in enumerate(CLASS_NAMES)}
CATEGORY_ID_BY_NAME = {name: i for i, name in CATEGORY_NAME_BY_ID.items()}

# A class name as it can appear in a file name (no "/"): "scarf/tie" -> "scarf_tie".
def class_slug(name):
    """The file-name form of a class name: 'scarf/tie' -> 'scarf_tie'."""
    return name.replace("/", "_").replace(" & ", "_").replace(" ", "_")


def categories():
    """ModaNet's COCO `categories` list (supercategory 'fashion', ids 1..13)."""
    return [{"supercategory": "fashion", "id": i, "name": n} for i, n in CATEGORY_NAME_BY_ID.items()]


INFO = {
    "contributor": "eBay CoreAI research",
    "date_created": "2018/07/03",
    "version": "1.0",
    "description": "MODA-NET 2018 Dataset",
}

LICENCE_TEXT = (
    "ModaNet annotations (c) eBay Inc., released under Creative Commons "
    "Attribution-NonCommercial 4.0 (CC BY-NC 4.0): https://github.com/eBay/modanet. "
    "The photos come from the PaperDoll / Chictopia collection and keep their owners' rights; "
    "use them for research and teaching only."
)

# --- Where users fetch the real data (Colab / a machine with internet) -----------------
# The annotation files are Git LFS objects in eBay's repository: the "media" URL serves the
# real file, the plain raw URL only the LFS pointer.
ANNOTATIONS = {
    "train": {
        "file": "modanet2018_instances_train.json",
        "url": "https://media.githubusercontent.com/media/eBay/modanet/master/annotations/modanet2018_instances_train.json",
        "md5": "96478657d20e322e9d3282c6d73c0c4c",
    },
    "val": {
        "file": "modanet2018_instances_val.json",
        "url": "https://media.githubusercontent.com/media/eBay/modanet/master/annotations/modanet2018_instances_val.json",
        "md5": "900b24b7d6c0c48203e6244f45d65499",
    },
}

# Images, two routes.
#  fast: the ~2 GB images.zip published with the maskrcnn-modanet project (release v0.9).
#  full: PaperDoll's photos.lmdb.tar (~40 GB); only ModaNet's ids are extracted.
IMAGES_FAST = {
    "file": "images.zip",
    "url": "https://github.com/cad0p/maskrcnn-modanet/releases/download/v0.9/images.zip",
    "md5": None,  # not published; the zip's own CRCs are checked when it is extracted
}
IMAGES_FULL = {
    "file": "photos.lmdb.tar",
    "url": "http://vision.is.tohoku.ac.jp/chictopia2/photos.lmdb.tar",
    "md5": None,  # not published; the LMDB is opened and every ModaNet id looked up
}

# Season codes used in the custom set's file names, and the words accepted for them.
SEASONS = {
    "yaz": "summer",
    "sonb": "autumn",
    "ilkb": "spring",
    "kis": "winter",
    "4mev": "all seasons",
}
