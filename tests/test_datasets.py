"""Tests for helpers.datasets: masks checked against pycocotools, VIA against COCO, image modes.

Tiny COCO and VIA sets are drawn in tmp_path; the real ModaNet fixtures (when present) check
that real polygons give the pixel counts pycocotools gives.
"""
import copy
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from helpers.datasets import CocoDataset, ViaDataset, segmentation_to_mask
from helpers.io import DataError
from helpers.modanet import CLASS_NAMES, CATEGORY_ID_BY_NAME, categories

# pycocotools' decode trips numpy 2's copy-keyword deprecation; it is theirs, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
WIDTH, HEIGHT = 64, 48  # not square, so a transposed mask cannot pass
MODANET_CLASS_MAP = {str(i + 1): name for i, name in enumerate(CLASS_NAMES)}

# Polygons of the tiny set, flat [x0, y0, x1, y1, ...] in pixel coordinates.
TRIANGLE = [5.0, 5.0, 25.0, 6.0, 12.0, 30.0]
LEFT_PART = [30.0, 4.0, 40.0, 4.0, 40.0, 14.0, 30.0, 14.0]
RIGHT_PART = [46.0, 20.0, 60.0, 22.0, 55.0, 40.0, 47.5, 35.5]
BOX = [10.0, 34.0, 30.0, 34.0, 30.0, 44.0, 10.0, 44.0]  # covers x 10..29, y 34..43 exactly


def coco_from_pycocotools(data):
    """A pycocotools COCO object built from an in-memory dict (the oracle)."""
    coco = COCO()
    coco.dataset = copy.deepcopy(data)
    coco.createIndex()
    return coco


def write_rgb(path, size=(WIDTH, HEIGHT)):
    """A small RGB photo-like image (a gradient) at `path`; JPEG or PNG by suffix."""
    x = np.linspace(0, 255, size[0], dtype=np.uint8)
    pixels = np.stack(np.broadcast_arrays(x[None, :], np.uint8(90), x[::-1][None, :]), axis=-1)
    pixels = np.broadcast_to(pixels, (size[1], size[0], 3))
    Image.fromarray(np.ascontiguousarray(pixels)).save(path)
    return path


def tiny_coco(images_dir):
    """Three images: polygons (one multi-part), a crowd region, RLEs, and an image with nothing."""
    write_rgb(images_dir / "a.jpg")
    write_rgb(images_dir / "b.png")
    write_rgb(images_dir / "c.jpg")
    blob = np.zeros((HEIGHT, WIDTH), dtype=np.uint8, order="F")
    blob[8:20, 3:50] = 1
    uncompressed_counts = mask_utils.frPyObjects([[3, 30, 20, 30, 20, 40]], HEIGHT, WIDTH)[0]
    compressed = mask_utils.encode(blob)
    compressed["counts"] = compressed["counts"].decode("ascii")
    # An uncompressed RLE: run lengths in column-major order, as COCO writes them.
    flat = np.asfortranarray(mask_utils.decode(uncompressed_counts)).ravel(order="F")
    runs, current, length = [], 0, 0
    for value in flat:
        if value == current:
            length += 1
        else:
            runs.append(length)
            current, length = value, 1
    runs.append(length)
    ann = lambda i, img, name, seg, **kw: {  # noqa: E731
        "id": i, "image_id": img, "category_id": CATEGORY_ID_BY_NAME[name],
        "segmentation": seg, "iscrowd": 0, "area": 0, "bbox": [0, 0, 1, 1], **kw}
    return {
        "info": {}, "licenses": [], "categories": categories(),
        "images": [
            {"id": 11, "file_name": "a.jpg", "width": WIDTH, "height": HEIGHT},
            {"id": 12, "file_name": "b.png", "width": WIDTH, "height": HEIGHT},
            {"id": 13, "file_name": "c.jpg", "width": WIDTH, "height": HEIGHT},
        ],
        "annotations": [
            ann(1, 11, "bag", [TRIANGLE]),
            ann(2, 11, "top", [LEFT_PART, RIGHT_PART]),
            ann(3, 11, "outer", [BOX]),
            ann(4, 11, "pants", [BOX], iscrowd=1),
            ann(5, 12, "skirt", {"size": [HEIGHT, WIDTH], "counts": runs}),
            ann(6, 12, "bag", compressed),
        ],
    }


@pytest.fixture
def coco_set(tmp_path):
    images_dir = tmp_path / "images"
    images_dir.mkdir()
    return tiny_coco(images_dir), images_dir


def load_coco(data, images_dir, **kwargs):
    dataset = CocoDataset()
    dataset.load_coco(data, images_dir, progress=False, **kwargs)
    dataset.prepare()
    return dataset


def coco_to_via(data, images_dir, version=2):
    """The polygon annotations of a COCO dict as a VIA export; parts share an annotation_id."""
    names = {image["id"]: image["file_name"] for image in data["images"]}
    via = {}
    for image in data["images"]:
        regions = []
        for ann in data["annotations"]:
            if ann["image_id"] != image["id"] or ann["iscrowd"] or isinstance(ann["segmentation"], dict):
                continue
            for polygon in ann["segmentation"]:
                regions.append({
                    "shape_attributes": {"name": "polygon", "all_points_x": polygon[0::2],
                                         "all_points_y": polygon[1::2]},
                    "region_attributes": {"fashion": str(ann["category_id"]),
                                          "annotation_id": str(ann["id"])},
                })
        if version == 1:
            regions = {str(i): region for i, region in enumerate(regions)}
        size = (images_dir / names[image["id"]]).stat().st_size
        via[f"{names[image['id']]}{size}"] = {
            "filename": names[image["id"]], "size": size, "regions": regions,
            "file_attributes": {"width": image["width"], "height": image["height"]}}
    return via


def load_via(via, images_dir, class_map=MODANET_CLASS_MAP, **kwargs):
    dataset = ViaDataset()
    dataset.load_via(via, images_dir, class_map, progress=False, **kwargs)
    dataset.prepare()
    return dataset


# -- COCO ------------------------------------------------------------------------------------
def test_coco_masks_equal_pycocotools_ann_to_mask(coco_set):
    data, images_dir = coco_set
    dataset = load_coco(data, images_dir)
    oracle = coco_from_pycocotools(data)
    assert dataset.class_names == ["BG", *CLASS_NAMES]
    assert dataset.num_images == 3
    for image_id in dataset.image_ids:
        coco_id = dataset.image_info[image_id]["id"]
        expected = [a for a in oracle.loadAnns(oracle.getAnnIds(imgIds=[coco_id])) if not a["iscrowd"]]
        masks, class_ids = dataset.load_mask(image_id)
        assert masks.dtype == bool and class_ids.dtype == np.int32
        assert masks.shape == (HEIGHT, WIDTH, len(expected))
        for k, ann in enumerate(expected):
            assert masks[..., k].any()
            np.testing.assert_array_equal(masks[..., k], oracle.annToMask(ann).astype(bool))
            assert dataset.class_names[class_ids[k]] == CLASS_NAMES[ann["category_id"] - 1]
    assert dataset.skipped == {"annotation: crowd": 1}


def test_polygon_mask_matches_brute_force_box():
    # Independent of pycocotools' own output: an integer box polygon covers exactly its pixels.
    mask = segmentation_to_mask([BOX], HEIGHT, WIDTH)
    expected = np.zeros((HEIGHT, WIDTH), dtype=bool)
    expected[34:44, 10:30] = True
    np.testing.assert_array_equal(mask, expected)


def test_multi_part_annotation_is_one_instance_covering_both_parts(coco_set):
    data, images_dir = coco_set
    dataset = load_coco(data, images_dir)
    masks, class_ids = dataset.load_mask(0)
    top = list(class_ids).index(dataset.class_names.index("top"))
    assert list(dataset.class_names[c] for c in class_ids).count("top") == 1
    left = segmentation_to_mask([LEFT_PART], HEIGHT, WIDTH)
    right = segmentation_to_mask([RIGHT_PART], HEIGHT, WIDTH)
    assert left.any() and right.any() and not (left & right).any()
    np.testing.assert_array_equal(masks[..., top], left | right)
    assert masks[..., top].sum() == left.sum() + right.sum()


def test_image_without_instances_gives_empty_masks(coco_set):
    data, images_dir = coco_set
    dataset = load_coco(data, images_dir)
    masks, class_ids = dataset.load_mask(2)
    assert masks.shape == (HEIGHT, WIDTH, 0) and masks.dtype == bool
    assert class_ids.shape == (0,) and class_ids.dtype == np.int32


def test_image_info_keeps_coco_id_size_and_path(coco_set):
    data, images_dir = coco_set
    dataset = load_coco(data, images_dir)
    info = dataset.image_info[1]
    assert (info["id"], info["width"], info["height"]) == (12, WIDTH, HEIGHT)
    assert dataset.image_reference(1) == str(images_dir / "b.png")
    assert len(info["annotations"]) == 2


def test_class_names_select_and_remap(coco_set):
    data, images_dir = coco_set
    dataset = load_coco(data, images_dir, class_names=["top", "bag"])
    assert dataset.class_names == ["BG", "top", "bag"]
    assert dataset.source_class_ids_by_internal() == {1: 9, 2: 1}
    assert [c["id"] for c in dataset.coco_categories()] == [9, 1]
    masks, class_ids = dataset.load_mask(0)
    assert list(class_ids) == [2, 1]  # bag triangle, then the two-part top
    np.testing.assert_array_equal(masks[..., 0], segmentation_to_mask([TRIANGLE], HEIGHT, WIDTH))
    # outer (image 11) and skirt (image 12) are counted, not silently lost
    assert dataset.skipped["annotation: class not selected"] == 2
    assert dataset.skipped["annotation: crowd"] == 1


def test_class_names_accept_slug_and_reject_unknown(coco_set):
    data, images_dir = coco_set
    assert load_coco(data, images_dir, class_names=["scarf_tie"]).class_names == ["BG", "scarf/tie"]
    with pytest.raises(DataError, match="no category named 'hat'"):
        load_coco(data, images_dir, class_names=["hat"])


def test_coco_bad_annotations_are_skipped_and_counted(coco_set):
    data, images_dir = coco_set
    anns = data["annotations"]
    anns.append({"id": 20, "image_id": 11, "category_id": 1, "iscrowd": 0,
                 "segmentation": [[1, 1, 9, 9], TRIANGLE]})  # a 2-point part must not become a box
    anns.append({"id": 21, "image_id": 11, "category_id": 1, "iscrowd": 0, "segmentation": [[1, 1, 9, 9]]})
    anns.append({"id": 22, "image_id": 11, "category_id": 99, "iscrowd": 0, "segmentation": [BOX]})
    anns.append({"id": 23, "image_id": 404, "category_id": 1, "iscrowd": 0, "segmentation": [BOX]})
    anns.append({"id": 24, "image_id": 12, "category_id": 1, "iscrowd": 0,
                 "segmentation": {"size": [10, 10], "counts": [100]}})
    anns.append({"id": 25, "image_id": 12, "category_id": 1, "iscrowd": 0, "segmentation": []})
    anns.append({"id": 26, "image_id": 13, "category_id": 2, "iscrowd": 0,
                 "segmentation": [[70, 50, 80, 50, 80, 60]]})  # outside the image, within the margin
    dataset = load_coco(data, images_dir)
    assert dataset.skipped == {
        "annotation: crowd": 1,
        "polygon part: fewer than 3 points": 2,
        "annotation: no usable polygon": 1,
        "annotation: unknown category id": 1,
        "annotation: unknown image id": 1,
        "annotation: RLE size differs from the image's": 1,
        "annotation: no segmentation": 1,
    }
    masks, _ = dataset.load_mask(0)
    assert masks.shape[-1] == 4  # triangle, top, box, and ann 20 kept with its good part
    np.testing.assert_array_equal(masks[..., 3], segmentation_to_mask([TRIANGLE], HEIGHT, WIDTH))
    for _ in range(2):  # found once, counted once
        masks, class_ids = dataset.load_mask(2)
        assert masks.shape == (HEIGHT, WIDTH, 0) and class_ids.shape == (0,)
    assert dataset.skipped["annotation: mask is empty at the image's size"] == 1
    text = dataset.summary()
    assert "3 images" in text and "mask is empty" in text and "unknown image id" in text


def test_summary_counts_instances_per_class(coco_set):
    data, images_dir = coco_set
    text = load_coco(data, images_dir).summary()
    assert "3 images, 5 instances" in text
    lines = {line.split()[0]: line.split()[-1] for line in text.splitlines()[2:] if line.startswith("    ")}
    assert lines["bag"] == "2" and lines["top"] == "1" and lines["skirt"] == "1" and lines["pants"] == "0"
    assert "annotation: crowd" in text


def test_load_mask_before_prepare_is_a_clear_error(coco_set):
    data, images_dir = coco_set
    dataset = CocoDataset()
    dataset.load_coco(data, images_dir, progress=False)
    with pytest.raises(RuntimeError, match="prepare"):
        dataset.load_mask(0)


def test_bad_coco_files_name_the_file(tmp_path):
    with pytest.raises(DataError, match="missing.json"):
        CocoDataset().load_coco(tmp_path / "missing.json", tmp_path, progress=False)
    not_coco = tmp_path / "via.json"
    not_coco.write_text(json.dumps({"x.jpg": {"filename": "x.jpg", "regions": []}}))
    with pytest.raises(DataError, match="via.json: no 'images' list"):
        CocoDataset().load_coco(not_coco, tmp_path, progress=False)
    no_size = {"images": [{"id": 1, "file_name": "x.jpg"}], "annotations": [], "categories": []}
    with pytest.raises(DataError, match="image 1 needs a positive 'width'"):
        CocoDataset().load_coco(no_size, tmp_path, progress=False)


# -- VIA -------------------------------------------------------------------------------------
def test_via_gives_the_same_masks_as_coco(coco_set):
    data, images_dir = coco_set
    coco = load_coco(data, images_dir)
    via = load_via(coco_to_via(data, images_dir), images_dir)
    assert via.class_names == coco.class_names
    compared = 0
    for image_id in coco.image_ids:
        if image_id == 1:
            continue  # image 12 holds only RLEs, which VIA cannot carry
        coco_masks, coco_ids = coco.load_mask(image_id)
        via_masks, via_ids = via.load_mask(image_id)
        np.testing.assert_array_equal(via_masks, coco_masks)
        np.testing.assert_array_equal(via_ids, coco_ids)
        compared += coco_masks.shape[-1]
    assert compared == 3
    assert not via.skipped


def test_via_1_regions_dict_is_accepted(coco_set):
    data, images_dir = coco_set
    via2 = load_via(coco_to_via(data, images_dir, version=2), images_dir)
    via1 = load_via(coco_to_via(data, images_dir, version=1), images_dir)
    masks2, ids2 = via2.load_mask(0)
    masks1, ids1 = via1.load_mask(0)
    assert masks1.shape[-1] == 3
    np.testing.assert_array_equal(masks1, masks2)
    np.testing.assert_array_equal(ids1, ids2)


def region(points, label, **attributes):
    xs, ys = points[0::2], points[1::2]
    return {"shape_attributes": {"name": "polygon", "all_points_x": xs, "all_points_y": ys},
            "region_attributes": {"fashion": label, **attributes}}


def test_via_skipped_regions_are_counted_and_rect_becomes_polygon(tmp_path):
    write_rgb(tmp_path / "x.jpg")
    rect = {"shape_attributes": {"name": "rect", "x": 10, "y": 34, "width": 20, "height": 10},
            "region_attributes": {"fashion": "bag"}}
    via = {"x.jpg1": {"filename": "x.jpg", "size": 1, "file_attributes": {"width": WIDTH, "height": HEIGHT},
                      "regions": [
                          region(TRIANGLE, "top"),
                          rect,
                          region(TRIANGLE, "hat"),
                          region([1, 1, 9, 9], "top"),
                          {"shape_attributes": {"name": "circle", "cx": 5, "cy": 5, "r": 3},
                           "region_attributes": {"fashion": "top"}},
                          {"shape_attributes": {"name": "polyline", "all_points_x": [1, 5, 9],
                                                "all_points_y": [1, 5, 1]},
                           "region_attributes": {"fashion": "top"}},
                          {"shape_attributes": {"name": "polygon", "all_points_x": [1, 5, 9],
                                                "all_points_y": [1, 5]},
                           "region_attributes": {"fashion": "top"}},
                          region(TRIANGLE, ""),
                          region(TRIANGLE, "top", annotation_id="7"),
                          region(BOX, "bag", annotation_id="7"),
                      ]}}
    dataset = load_via(via, tmp_path, class_map={"top": "top", "bag": "bag"})
    assert dataset.skipped == {
        "region: 'fashion' value not in class_map": 1,
        "region: fewer than 3 points": 1,
        "region: unsupported shape 'circle'": 1,
        "region: unsupported shape 'polyline'": 1,
        "region: all_points_x and all_points_y differ or are missing": 1,
        "region: no 'fashion' value": 1,
        "instance: parts carry different classes": 1,
    }
    masks, class_ids = dataset.load_mask(0)
    assert [dataset.class_names[c] for c in class_ids] == ["top", "bag"]
    np.testing.assert_array_equal(masks[..., 1], segmentation_to_mask([BOX], HEIGHT, WIDTH))
    assert "region: no 'fashion' value" in dataset.summary()


def test_via_classes_follow_class_map_order_and_int_keys(tmp_path):
    write_rgb(tmp_path / "x.jpg")
    via = {"k": {"filename": "x.jpg", "size": 1, "file_attributes": {"width": WIDTH, "height": HEIGHT},
                 "regions": [region(TRIANGLE, "6"), region(BOX, "1"), region(LEFT_PART, "5")]}}
    dataset = load_via(via, tmp_path, class_map={5: "outer", 1: "bag", 6: "outer"})
    assert dataset.class_names == ["BG", "outer", "bag"]
    _, class_ids = dataset.load_mask(0)
    assert list(class_ids) == [1, 2, 1]


def test_via_size_from_image_header_follows_exif(tmp_path):
    write_rgb(tmp_path / "plain.png")
    rotated = Image.fromarray(np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated.save(tmp_path / "turned.jpg", exif=exif.tobytes())
    via = {"a": {"filename": "plain.png", "size": 1, "regions": [region(TRIANGLE, "1")]},
           "b": {"filename": "turned.jpg", "size": 1, "regions": [], "file_attributes": {"width": ""}}}
    dataset = load_via(via, tmp_path)
    assert [(i["width"], i["height"]) for i in dataset.image_info] == [(WIDTH, HEIGHT), (HEIGHT, WIDTH)]
    assert dataset.load_image(1).shape == (WIDTH, HEIGHT, 3)
    assert dataset.load_mask(1)[0].shape == (WIDTH, HEIGHT, 0)


def test_via_missing_image_without_size_names_the_file(tmp_path):
    via = {"a": {"filename": "gone.jpg", "size": 1, "regions": []}}
    with pytest.raises(DataError, match="gone.jpg: image file not found"):
        ViaDataset().load_via(via, tmp_path, MODANET_CLASS_MAP, progress=False)


# -- images ----------------------------------------------------------------------------------
def one_image_dataset(tmp_path, file_name, width=WIDTH, height=HEIGHT):
    data = {"images": [{"id": 1, "file_name": file_name, "width": width, "height": height}],
            "annotations": [], "categories": categories()}
    return load_coco(data, tmp_path)


def save_exif_rotated(path):
    pixels = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
    pixels[:, : WIDTH // 2] = (250, 0, 0)  # left half red as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(pixels).save(path, exif=exif.tobytes(), quality=95)


@pytest.mark.parametrize("kind", ["gray", "rgba", "palette", "cmyk", "16bit", "exif6"])
def test_images_load_as_rgb_whatever_the_file(tmp_path, kind):
    path, size = tmp_path / f"{kind}.png", (WIDTH, HEIGHT)
    if kind == "gray":
        Image.new("L", size, 77).save(path)
    elif kind == "rgba":
        im = Image.new("RGBA", size, (0, 0, 255, 255))
        im.paste((0, 0, 0, 0), (0, 0, 10, 10))  # a transparent corner
        im.save(path)
    elif kind == "palette":
        Image.new("RGB", size, (200, 30, 60)).convert("P", palette=Image.Palette.ADAPTIVE).save(path)
    elif kind == "cmyk":
        path = tmp_path / "cmyk.jpg"
        Image.new("CMYK", size, (0, 255, 255, 0)).save(path, quality=95)  # red
    elif kind == "16bit":
        ramp = np.tile(np.linspace(0, 65535, WIDTH).astype(np.uint16), (HEIGHT, 1))
        Image.fromarray(ramp).save(path)
        assert Image.open(path).mode.startswith("I")
    elif kind == "exif6":
        path, size = tmp_path / "exif6.jpg", (HEIGHT, WIDTH)  # displayed turned a quarter
        save_exif_rotated(path)
    dataset = one_image_dataset(tmp_path, path.name, *size)
    image = dataset.load_image(0)
    assert image.dtype == np.uint8 and image.shape == (size[1], size[0], 3)
    if kind == "gray":
        assert (image == 77).all()
    elif kind == "rgba":
        assert (image[0, 0] == 255).all() and tuple(image[-1, -1]) == (0, 0, 255)
    elif kind == "palette":
        assert np.abs(image.astype(int) - (200, 30, 60)).max() <= 2
    elif kind == "cmyk":
        assert image[..., 0].min() > 200 and image[..., 1:].max() < 60
    elif kind == "16bit":
        assert image[0, -1, 0] == 255 and image[0, 0, 0] == 0 and (image[..., 0] == image[..., 2]).all()
    elif kind == "exif6":
        # stored left half red -> displayed (turned clockwise) top half red
        assert image.shape == (WIDTH, HEIGHT, 3)
        assert image[2, HEIGHT // 2, 0] > 200 and image[-3, HEIGHT // 2, 0] < 50


def test_missing_or_unreadable_image_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.jpg"):
        one_image_dataset(tmp_path, "nowhere.jpg").load_image(0)
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(ValueError, match="broken.jpg: not a readable image"):
        one_image_dataset(tmp_path, "broken.jpg").load_image(0)


def test_image_of_another_size_than_its_annotations_is_an_error(tmp_path):
    write_rgb(tmp_path / "a.jpg")
    with pytest.raises(DataError, match=r"a.jpg: image is 64x48 .* annotations say 48x64"):
        one_image_dataset(tmp_path, "a.jpg", HEIGHT, WIDTH).load_image(0)


# -- real fixtures ---------------------------------------------------------------------------
def fixture(relative):
    path = FIXTURES / relative
    if not path.exists():
        pytest.skip(f"fixture {path} absent")
    return path


def test_real_modanet_coco_masks_agree_with_pycocotools(tmp_path):
    path = fixture("modanet/modanet_coco_subset.json")
    oracle = COCO(str(path))
    dataset = CocoDataset()
    # the file as it is, duplicates included (tests/test_repair.py checks the repaired load)
    dataset.load_coco(path, tmp_path / "no_photos", progress=False, repair=False)
    dataset.prepare()
    assert dataset.num_images == 4 and sorted(set(dataset.class_names[1:])) == sorted(CLASS_NAMES)
    total = 0
    for image_id in dataset.image_ids:
        info = dataset.image_info[image_id]
        anns = oracle.loadAnns(oracle.getAnnIds(imgIds=[info["id"]]))
        masks, class_ids = dataset.load_mask(image_id)
        assert masks.shape == (600, 400, len(anns))
        for k, ann in enumerate(anns):
            assert masks[..., k].sum() == oracle.annToMask(ann).sum() > 0
            assert dataset.get_source_class_id(class_ids[k], "modanet") == ann["category_id"]
        total += len(anns)
    assert total == 37 and not dataset.skipped


def test_real_modanet_via_masks_agree_with_pycocotools(tmp_path):
    via_path = fixture("modanet/modanet_via_subset.json")
    coco = json.loads(fixture("modanet/modanet_coco_subset.json").read_text())
    dataset = load_via(via_path, tmp_path / "no_photos")
    assert dataset.num_images == 4 and not dataset.skipped
    for image_id in dataset.image_ids:
        info = dataset.image_info[image_id]
        anns = [a for a in coco["annotations"] if str(a["image_id"]) == info["id"]]
        masks, class_ids = dataset.load_mask(image_id)
        assert masks.shape == (600, 400, len(anns))
        for k, ann in enumerate(anns):
            # that project kept only the first polygon of each annotation
            first = mask_utils.decode(mask_utils.frPyObjects([ann["segmentation"][0]], 600, 400)[0])
            assert masks[..., k].sum() == first.sum() > 0
            assert dataset.class_names[class_ids[k]] == CLASS_NAMES[ann["category_id"] - 1]


def test_real_season_via_set_loads_with_its_widht_typo(tmp_path):
    path = fixture("modanet/season_via_subset.json")
    via = json.loads(path.read_text())
    labels = sorted({r["region_attributes"]["fashion"] for e in via.values() for r in e["regions"]})
    dataset = load_via(path, tmp_path, class_map={label: f"label_{label}" for label in labels})
    assert dataset.num_images == 9 and not dataset.skipped
    assert {(i["width"], i["height"]) for i in dataset.image_info} == {(400, 600)}
    for image_id in dataset.image_ids:
        masks, _ = dataset.load_mask(image_id)
        assert masks.shape == (600, 400, 1) and masks.any()


@pytest.mark.parametrize("name", ["bag_4mev_112.jpg", "bag_4mev_129.jpg"])
def test_real_photos_load_as_exif_says(name):
    path = fixture(f"photos/{name}")
    with Image.open(path) as im:
        turned = im.getexif().get(0x0112, 1) in (5, 6, 7, 8)
    via = {name: {"filename": name, "size": -1, "regions": []}}
    dataset = load_via(via, path.parent)
    image = dataset.load_image(0)
    assert image.shape == ((400, 600, 3) if turned else (600, 400, 3))
    assert image.dtype == np.uint8 and image.std() > 10


def test_polygon_coordinates_must_be_numbers(coco_set):
    data, images_dir = coco_set
    as_numpy = [np.float64(v) for v in TRIANGLE]
    data["annotations"] = [
        {"id": 1, "image_id": 11, "category_id": 1, "iscrowd": 0, "segmentation": [as_numpy]},
        {"id": 2, "image_id": 11, "category_id": 1, "iscrowd": 0, "segmentation": [["5", 5, 25, 6, 12, 30]]},
        {"id": 3, "image_id": 11, "category_id": 1, "iscrowd": 0, "segmentation": [[True, 5, 25, 6, 12, 30]]},
        {"id": 4, "image_id": 11, "category_id": 1, "iscrowd": 0, "segmentation": [TRIANGLE + [3.0]]},
    ]
    dataset = load_coco(data, images_dir)
    assert dataset.skipped == {"polygon part: coordinates are not numbers": 2,
                               "polygon part: odd number of coordinates": 1,
                               "annotation: no usable polygon": 3}
    masks, _ = dataset.load_mask(0)
    np.testing.assert_array_equal(masks[..., 0], segmentation_to_mask([TRIANGLE], HEIGHT, WIDTH))


def test_same_source_class_id_with_another_name_is_refused(coco_set):
    data, images_dir = coco_set
    dataset = ViaDataset()
    dataset.load_via(coco_to_via(data, images_dir), images_dir, {"1": "bag"}, progress=False)
    with pytest.raises(DataError, match="already 'bag'"):
        dataset.load_via(coco_to_via(data, images_dir), images_dir, {"1": "top"}, progress=False)
    dataset.load_via(coco_to_via(data, images_dir), images_dir, {"1": "top"}, source="via2", progress=False)
    dataset.prepare()
    assert dataset.class_names == ["BG", "bag", "top"]


# -- hostile input: guards before pycocotools and Pillow (issue 31) ------------------------------
# The calls that crashed before the guards run in a child under a 2 GB cap (tests/bombs.py), so a
# regression fails the test instead of killing pytest.
from helpers.guards import MAX_IMAGE_SIDE  # noqa: E402
from tests.bombs import png_claiming, run_limited  # noqa: E402

HOSTILE_CHILD = """
import json, math
from helpers.datasets import CocoDataset, segmentation_to_mask
from helpers.io import DataError
from helpers.modanet import categories
TRIANGLE = [5.0, 5.0, 25.0, 6.0, 12.0, 30.0]
def load(annotations, width=64, height=48, **kw):
    data = {"images": [{"id": 1, "file_name": "a.jpg", "width": width, "height": height}],
            "annotations": [dict(a, id=i, image_id=a.get("image_id", 1), category_id=1, iscrowd=0)
                            for i, a in enumerate(annotations, 1)], "categories": categories()}
    dataset = CocoDataset().load_coco(data, ".", progress=False, **kw)
    dataset.prepare()
    return dataset
"""


def test_non_finite_and_far_out_coordinates_are_skipped_and_counted():
    code = HOSTILE_CHILD + """
bad = [[math.nan, 1, 5, 5, 9, 1], [1, 1, math.inf, 5, 9, 1], [1, 1, 1e9, 5, 9, 1],
       [1, 1, 10 ** 30, 5, 9, 1], [1, 1, 10 ** 400, 5, 9, 1], [-1e18, 1, 5, 5, 9, 1]]
dataset = load([{"segmentation": [part, TRIANGLE]} for part in bad] + [{"segmentation": [bad[2]]}])
masks, ids = dataset.load_mask(0)
errors = []
for part in bad:
    try:
        segmentation_to_mask([part], 48, 64)
    except ValueError as err:
        errors.append(str(err))
print(json.dumps({"skipped": dataset.skipped, "shape": masks.shape, "errors": errors,
                  "same": bool((masks == segmentation_to_mask([TRIANGLE], 48, 64)[..., None]).all())}))
"""
    returncode, out, err = run_limited(code)
    assert returncode == 0, err[-2000:]
    result = json.loads(out)
    assert result["skipped"] == {"polygon part: coordinates not finite (NaN or infinity)": 2,
                                 "polygon part: coordinates far outside the image": 5,
                                 "annotation: no usable polygon": 1}
    assert result["shape"] == [HEIGHT, WIDTH, 6] and result["same"]   # each kept its good triangle
    assert len(result["errors"]) == 6 and all("coordinates" in e for e in result["errors"])


def test_huge_numbers_in_a_valid_json_file_are_skipped(tmp_path):
    data = {"images": [{"id": 1, "file_name": "a.jpg", "width": WIDTH, "height": HEIGHT}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0,
                             "segmentation": [[1, 1, 1e300, 5, 9, 1], [3, 3, 5e9, 3, 5e9, 5e9]]}],
            "categories": categories()}
    path = tmp_path / "big.json"
    path.write_text(json.dumps(data))
    code = HOSTILE_CHILD + f"""
dataset = CocoDataset().load_coco({str(path)!r}, ".", progress=False)
dataset.prepare()
print(json.dumps(dataset.skipped))
"""
    returncode, out, err = run_limited(code)
    assert returncode == 0, err[-2000:]
    assert json.loads(out) == {"polygon part: coordinates far outside the image": 2,
                               "annotation: no usable polygon": 1}


def test_vertices_outside_the_image_within_the_margin_are_kept_exactly(coco_set):
    data, images_dir = coco_set
    poking_out = [-20.0, -10.0, 100.0, 8.0, 30.0, 80.0]       # crosses every edge, within one side
    data["annotations"] = [{"id": 1, "image_id": 12, "category_id": 1, "iscrowd": 0,
                            "segmentation": [poking_out]}]
    dataset = load_coco(data, images_dir)
    masks, _ = dataset.load_mask(1)
    rle = mask_utils.merge(mask_utils.frPyObjects([poking_out], HEIGHT, WIDTH))
    np.testing.assert_array_equal(masks[..., 0], mask_utils.decode(rle).astype(bool))
    assert not dataset.skipped


def test_an_outline_too_long_for_pycocotools_is_skipped(coco_set):
    data, images_dir = coco_set
    zigzag = [v for i in range(3000) for v in ((0.0 if i % 2 else float(WIDTH)), i * HEIGHT / 3000)]
    data["annotations"] = [{"id": 1, "image_id": 12, "category_id": 1, "iscrowd": 0,
                            "segmentation": [zigzag, TRIANGLE]}]
    dataset = load_coco(data, images_dir)
    assert dataset.skipped == {"polygon part: outline too long": 1}
    masks, _ = dataset.load_mask(1)
    np.testing.assert_array_equal(masks[..., 0], segmentation_to_mask([TRIANGLE], HEIGHT, WIDTH))


def test_rle_counts_that_do_not_cover_the_image_are_skipped():
    code = HOSTILE_CHILD + """
from pycocotools import mask as mask_utils
import numpy as np
good = mask_utils.encode(np.asfortranarray(np.eye(48, 64, dtype=np.uint8)))
good["counts"] = good["counts"].decode()
bad = [{"size": [48, 64], "counts": [10 ** 9, 5]},                # decoder would write past its buffer
       {"size": [48, 64], "counts": [-5, 48 * 64 + 5]},           # negative run
       {"size": [48, 64], "counts": [3000, 72, 1.5]},             # not whole numbers
       {"size": [48, 64], "counts": good["counts"][:-3]},         # cut short: covers less
       {"size": [48, 64], "counts": "\\u00e9\\u00e9"},            # not COCO's alphabet
       {"size": [48, 64], "counts": "zzzzzzzzzzzzzzzzzzzzzzz"}]   # a number beyond 64 bits
dataset = load([{"segmentation": rle} for rle in bad] + [{"segmentation": good}])
masks, ids = dataset.load_mask(0)
print(json.dumps({"skipped": dataset.skipped, "eye": bool((masks[..., 0] == np.eye(48, 64, dtype=bool)).all()),
                  "n": masks.shape[-1]}))
"""
    returncode, out, err = run_limited(code)
    assert returncode == 0, err[-2000:]
    result = json.loads(out)
    assert result["n"] == 1 and result["eye"]
    assert sum(result["skipped"].values()) == 6
    assert set(result["skipped"]) <= {"annotation: malformed RLE",
                                      "annotation: RLE counts do not cover the image exactly"}


def test_compressed_rle_counts_are_read_as_pycocotools_writes_them():
    from helpers.guards import rle_problem
    rng = np.random.default_rng(5)
    for trial in range(50):
        height, width = (int(v) for v in rng.integers(1, 40, 2))
        mask = (rng.random((height, width)) < rng.random()).astype(np.uint8)
        rle = mask_utils.encode(np.asfortranarray(mask))
        assert rle_problem(rle, height, width) is None
        assert rle_problem(rle, height, width + 1) is not None
        assert rle_problem(dict(rle, counts=rle["counts"] + b"1"), height, width) is not None


def test_an_image_size_over_the_limit_is_refused_naming_file_and_image():
    code = HOSTILE_CHILD + """
try:
    dataset = load([{"segmentation": [TRIANGLE]}], width=100000, height=100000)
    masks, ids = dataset.load_mask(0)
    print("loaded", masks.shape)
except DataError as err:
    print("DataError", err)
"""
    returncode, out, err = run_limited(code)
    assert returncode == 0, err[-2000:]
    assert out.startswith("DataError") and len(out.strip().splitlines()) == 1
    assert "image 1 (a.jpg)" in out and "100000x100000" in out and str(MAX_IMAGE_SIDE) in out


@pytest.mark.parametrize("bad_id", [[1], {"id": 1}, True, 1.5, 1.0, None])
def test_ids_of_the_wrong_type_are_counted_and_skipped(coco_set, bad_id):
    data, images_dir = coco_set
    base = {"iscrowd": 0, "segmentation": [TRIANGLE]}
    data["annotations"] = [{**base, "id": 1, "image_id": bad_id, "category_id": 1},
                           {**base, "id": 2, "image_id": 12, "category_id": bad_id, "segmentation": [BOX]},
                           {**base, "id": 3, "image_id": 12, "category_id": 1}]
    dataset = load_coco(data, images_dir)
    masks, class_ids = dataset.load_mask(1)
    assert masks.shape[-1] == 1 and sum(dataset.skipped.values()) == 2
    assert set(dataset.skipped) == {"annotation: image id is not an integer or a string",
                                    "annotation: category id is not an integer"}
    assert "2 annotation" not in dataset.summary()     # summary works on what was kept


@pytest.mark.parametrize("bad_id", [[1], {"id": 1}, True, 1.5])
def test_an_image_entry_with_an_id_of_the_wrong_type_is_a_data_error(coco_set, bad_id):
    data, images_dir = coco_set
    data["images"][0]["id"] = bad_id
    with pytest.raises(DataError, match="'id' must be an integer or a string"):
        load_coco(data, images_dir)


def test_via_image_too_large_to_decode_is_skipped_counted_and_named(tmp_path):
    write_rgb(tmp_path / "ok.jpg")
    png_claiming(tmp_path / "bomb.png", 100000, 100000)
    triangle = region(TRIANGLE, "1")
    via = {f"{name}1": {"filename": name, "size": 1, "regions": [triangle]} for name in ("bomb.png", "ok.jpg")}
    dataset = load_via(via, tmp_path)
    assert [info["file_name"] for info in dataset.image_info] == ["ok.jpg"]
    assert dataset.skipped == {"image: too large to decode (Pillow's decompression-bomb limit)": 1}
    assert "bomb.png" in dataset.summary()
    assert dataset.load_mask(0)[0].shape == (HEIGHT, WIDTH, 1)


def test_via_size_over_the_limit_and_bad_regions(tmp_path):
    write_rgb(tmp_path / "x.jpg")
    huge = {"x.jpg1": {"filename": "x.jpg", "size": 1, "regions": [region(TRIANGLE, "1")],
                       "file_attributes": {"width": 100000, "height": 100000}}}
    with pytest.raises(DataError, match=r"'x.jpg'.*100000x100000.*20000"):
        load_via(huge, tmp_path)
    regions = [region([1, 1, 1e12, 5, 9, 1], "1"), region([1, 1, float("nan"), 5, 9, 1], "1"),
               {"shape_attributes": {"name": "rect", "x": 1, "y": 1, "width": 1e300, "height": 1e300},
                "region_attributes": {"fashion": "1"}},
               {"shape_attributes": triangle_shape(), "region_attributes": ["fashion", "1"]},
               {"shape_attributes": triangle_shape(), "region_attributes": {"fashion": ["1"]}},
               region(TRIANGLE, "1")]
    via = {"x.jpg1": {"filename": "x.jpg", "size": 1, "regions": regions}}
    dataset = load_via(via, tmp_path)
    assert dataset.skipped == {"region: coordinates far outside the image": 2,
                               "region: coordinates not finite (NaN or infinity)": 1,
                               "region: region_attributes not an object": 1,
                               "region: 'fashion' value not in class_map": 1}
    np.testing.assert_array_equal(dataset.load_mask(0)[0][..., 0], segmentation_to_mask([TRIANGLE], HEIGHT, WIDTH))


def triangle_shape():
    return region(TRIANGLE, "1")["shape_attributes"]


def test_load_image_of_a_decompression_bomb_is_a_named_error_counted_once(tmp_path):
    png_claiming(tmp_path / "bomb.png", 100000, 100000)
    dataset = one_image_dataset(tmp_path, "bomb.png")
    for _ in range(2):
        with pytest.raises(DataError, match="bomb.png: image too large to decode safely"):
            dataset.load_image(0)
    assert dataset.skipped == {"image: too large to decode (Pillow's decompression-bomb limit)": 1}
