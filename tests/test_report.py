"""helpers.report: the metrics file merges sections; figures are saved whole."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from helpers.io import DataError  # noqa: E402
from helpers.paths import Paths  # noqa: E402
from helpers.report import read_metrics, record_metrics, save_figure  # noqa: E402


def test_sections_merge_and_later_values_win(tmp_path):
    paths = Paths(tmp_path)
    assert read_metrics(paths) == {}
    record_metrics(paths, "model1", {"segm_AP": 0.1, "epochs": 2})
    record_metrics(paths, "autolabel", {"mean_iou": 0.8})
    merged = record_metrics(paths, "model1", {"segm_AP": 0.2})
    assert merged == {"model1": {"segm_AP": 0.2, "epochs": 2}, "autolabel": {"mean_iou": 0.8}}
    assert read_metrics(paths) == merged


def test_a_broken_metrics_file_is_named(tmp_path):
    paths = Paths(tmp_path)
    paths.metrics.parent.mkdir(parents=True, exist_ok=True)
    paths.metrics.write_text("{not json")
    with pytest.raises(DataError, match="metrics.json"):
        record_metrics(paths, "x", {"a": 1})


def test_figure_is_saved_as_png_without_temp_files(tmp_path):
    paths = Paths(tmp_path)
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    target = save_figure(fig, paths, "04_losses")
    plt.close(fig)
    assert target == paths.figures / "04_losses.png"
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in paths.figures.iterdir()] == ["04_losses.png"]


# -- printed tables: what notebooks show instead of raw dicts and 17-digit floats --------------
import json  # noqa: E402
import re  # noqa: E402

from helpers.autolabel import (  # noqa: E402
    AutoLabelReport, FilteredLabels, LabelQuality, MatchingComparison)
from helpers.report import coco_overview, figure, format_mapping, label_grid, text_table  # noqa: E402

LONG_FLOAT = re.compile(r"\d\.\d{4,}")


def columns_of(line):
    return re.split(r"\s{2,}", line.strip())


def test_figure_rounds_floats_to_three_decimals_and_names_missing_values():
    assert figure(0.46111111111111114) == "0.461" and figure(2.0) == "2.000" and figure(7) == "7"
    assert figure(None) == figure(float("nan")) == "n/a"
    assert figure(True) == "True" and figure("top") == "top"


def test_text_table_aligns_text_left_and_numbers_right():
    rows = [{"class": "skirt", "AP": 0.46111111111111114, "gt": 3},
            {"class": "scarf/tie", "AP": float("nan"), "gt": 12}]
    lines = text_table(rows).splitlines()
    assert [columns_of(line) for line in lines] == [["class", "AP", "gt"], ["skirt", "0.461", "3"],
                                                   ["scarf/tie", "n/a", "12"]]
    assert len({len(line) for line in lines}) == 1             # right-aligned last column: same width
    assert lines[1].index("skirt") == lines[2].index("scarf/tie")
    assert text_table([["a", 0.5]], headers=["name", "share"]).splitlines()[1].endswith("0.500")
    assert text_table([]) == ""


def test_label_grid_counts_every_label_once_in_its_garment_and_season():
    counts = {"skirt_yaz": 5, "skirt_kis": 2, "top_4mev": 3, "scarf_tie_sonb": 1, "mystery": 4}
    text = label_grid(counts, "photos")
    lines = text.splitlines()
    header = columns_of(lines[0])
    assert header == ["photos (garment x season)", "yaz", "sonb", "kis", "4mev", "all"]
    rows = {columns_of(line)[0]: columns_of(line)[1:] for line in lines[1:4]}
    assert rows == {"scarf/tie": ["-", "1", "-", "-", "1"], "skirt": ["5", "-", "2", "-", "7"],
                    "top": ["-", "-", "-", "3", "3"]}
    assert columns_of(lines[-1]) == ["mystery", "4"]          # not garment_season: listed apart
    assert label_grid({}) == ""


def test_format_mapping_shows_a_nested_summary_without_dict_syntax():
    summary = {"root": "/data/sample", "skipped": False,
               "sample": {"images": 240, "share": 0.46111111111111114, "size": [128, 192],
                          "per_class": {f"class{n}": n * 11 for n in range(13)}},
               "files": [f"file_{n}.jpg" for n in range(30)]}
    text = format_mapping(summary, width=80)
    assert "{" not in text and "'" not in text and not LONG_FLOAT.search(text)
    assert max(len(line) for line in text.splitlines()) <= 80
    flat = " ".join(text.split())
    for n in range(13):
        assert f"class{n} {n * 11}" in flat                     # an item is never cut in two
    for piece in ("root /data/sample", "skipped False", "images 240", "share 0.461", "size [128, 192]",
                  "file_29.jpg"):
        assert piece in flat


def test_coco_overview_lists_counts_and_every_category():
    coco = {"images": [{}] * 3, "annotations": [{}] * 5, "type": "instances",
            "categories": [{"id": i, "name": name} for i, name in enumerate(["bag", "belt", "scarf/tie"], 1)]}
    text = coco_overview(coco)
    assert "images 3, annotations 5, type instances" in text
    assert "3 categories (id name): 1 bag, 2 belt, 3 scarf/tie" in text


def quality():
    per_class = {"skirt": {"instances": 3, "mean_iou": 0.5390122604533135, "share_iou_50": 2 / 3,
                           "share_wrong_garment": 0.0},
                 "top": {"instances": 1, "mean_iou": None, "share_iou_50": None, "share_wrong_garment": 1.0}}
    return LabelQuality({"images_in_truth": 6, "images_labelled": 4, "share_labelled": 4 / 6,
                         "auto_images_not_in_truth": 0, "unusable_segmentations": {"auto": 0, "truth": 0},
                         "instances": 4, "mean_iou": 0.4111111111111, "share_iou_50": 0.5,
                         "share_wrong_garment": 0.25, "per_class": per_class})


def test_label_quality_is_the_same_dict_and_prints_a_table():
    measured = quality()
    assert json.loads(json.dumps(measured)) == dict(measured)    # the metrics file gets plain values
    text = str(measured)
    assert not LONG_FLOAT.search(text) and "{" not in text
    lines = text.splitlines()
    assert lines[0] == "4 of 6 photos with truth auto-labelled (66.7%)"
    rows = {columns_of(line)[0]: columns_of(line)[1:] for line in lines[2:]}
    assert rows == {"skirt": ["3", "0.539", "66.7%", "0.0%"], "top": ["1", "n/a", "n/a", "100.0%"],
                    "all": ["4", "0.411", "50.0%", "25.0%"]}


def test_filtered_labels_and_matching_and_autolabel_report_print_tables():
    filtered = FilteredLabels({}, [("skirt_yaz", 5), ("top_kis", 3)], [("bag_sonb", 1)], 3)
    text = str(filtered)
    assert text.splitlines()[0] == "kept 2 labels (at least 3 instances), dropped 1: bag_sonb 1"
    assert "[(" not in text and "skirt" in text and "top" in text

    matching = MatchingComparison({"images": 2, "index_wrong_garment": 1, "name_wrong_garment": 0,
                                   "rows": [("bag", "top", "bag"), ("dress", None, "dress")]})
    lines = str(matching).splitlines()
    assert lines[0].startswith("wrong garment: by index 1, by name 0 of 2 photos")
    assert [columns_of(line) for line in lines[2:]] == [["bag", "top", "bag"], ["dress", "None", "dress"]]
    assert matching["rows"][1] == ("dress", None, "dress")      # still the dict it was

    report = AutoLabelReport(images_seen=9, labelled=7, skipped={"no skirt detected": ["skirt_yaz_2.jpg"]},
                             instances_per_label={"skirt_yaz": 4, "skirt_kis": 2, "top_yaz": 1})
    lines = str(report).splitlines()
    grid = {columns_of(line)[0]: columns_of(line)[1:] for line in lines if line.startswith("  skirt ")
            or line.startswith("  top ")}
    assert grid == {"skirt": ["4", "2", "6"], "top": ["1", "-", "1"]}
