"""What one COCO <-> VIA conversion read, wrote, repaired and skipped (`ConversionSummary`).

Bad annotations never stop a conversion: each is repaired or skipped and counted here, under
one of the counters of REPAIRED / SKIPPED / FLAGGED (whose texts `lines()` prints), with the
first few cases kept in `problems`. ModaNet's own defects are counted by helpers.repair's check
(`note_modanet_defects`) but kept, so that a conversion stays lossless.
"""
from dataclasses import dataclass, field, fields

from helpers.repair import repair_coco

MAX_PROBLEMS = 20

# What each counter of ConversionSummary means, in the words `lines()` prints.
REPAIRED = {
    "odd_coordinates_repaired": "polygons with an odd coordinate count (last value dropped)",
    "polygons_clipped": "polygons with points outside the image (clipped to it)",
    "rects_converted": "VIA rectangles turned into 4-point polygons",
    "annotation_ids_renumbered": "duplicate annotation ids (re-numbered)",
}
SKIPPED = {
    "polygons_too_few_points": "polygons with fewer than 3 points",
    "polygons_zero_area": "polygons with zero area (after clipping)",
    "polygons_not_numeric": "polygons with non-numeric or non-finite coordinates",
    "regions_unsupported_shape": "regions that are not polygons or rectangles",
    "annotations_unknown_category": "annotations / regions with an unknown category",
    "annotations_without_polygons": "annotations left without any usable polygon",
    "annotations_empty_mask": "annotations whose mask rasterises to 0 pixels",
    "annotations_unknown_image": "annotations whose image_id is not an image",
    "annotations_of_skipped_images": "annotations / regions of skipped images",
    "images_bad_entry": "image entries without an id or file name",
    "images_duplicate_id": "images whose id repeats an earlier image (the later one)",
    "images_missing_file": "images whose file is missing or unreadable in images_dir",
    "images_outside_folder": "images whose file name leaves images_dir ('..', absolute path)",
}
FLAGGED = {
    "images_unknown_size": "images of unknown size (kept; points not checked against the image)",
    "duplicate_annotations": "exact duplicate annotations: same image, class, polygons (kept; "
                             "python -m helpers.repair drops them)",
    "boxes_off_polygons": "boxes more than 1 px off their polygons' extent (kept; helpers.repair "
                          "fixes them)",
}


@dataclass
class ConversionSummary:
    """What one conversion read, wrote, repaired and skipped; `print(summary)` shows it."""

    direction: str
    images_in: int = 0
    images_out: int = 0
    annotations_in: int = 0      # COCO annotations, or VIA regions
    annotations_out: int = 0     # COCO annotations, or VIA annotation groups
    polygons_out: int = 0        # polygons written (= VIA regions for COCO -> VIA)
    multipart_annotations: int = 0
    crowd_annotations: int = 0
    images_without_annotations: int = 0
    odd_coordinates_repaired: int = 0
    polygons_clipped: int = 0
    rects_converted: int = 0
    annotation_ids_renumbered: int = 0
    polygons_too_few_points: int = 0
    polygons_zero_area: int = 0
    polygons_not_numeric: int = 0
    regions_unsupported_shape: int = 0
    annotations_unknown_category: int = 0
    annotations_without_polygons: int = 0
    annotations_empty_mask: int = 0
    annotations_unknown_image: int = 0
    annotations_of_skipped_images: int = 0
    images_bad_entry: int = 0
    images_duplicate_id: int = 0
    images_missing_file: int = 0
    images_outside_folder: int = 0
    images_unknown_size: int = 0
    duplicate_annotations: int = 0   # ModaNet's own defects, found by helpers.repair's check
    boxes_off_polygons: int = 0
    problems: list = field(default_factory=list)   # (image, annotation or region, reason)
    max_problems: int = MAX_PROBLEMS

    def note(self, counter, image, item, reason, count=1):
        """Count one repaired / skipped case and keep its description while there is room."""
        setattr(self, counter, getattr(self, counter) + count)
        if len(self.problems) < self.max_problems:
            self.problems.append((image, item, reason))

    @property
    def repaired(self):
        return sum(getattr(self, name) for name in REPAIRED)

    @property
    def skipped(self):
        return sum(getattr(self, name) for name in SKIPPED)

    def counters(self):
        """Every counter as a dict (for tests and tables)."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in ("direction", "problems", "max_problems")}

    def lines(self):
        """The summary as short text lines; zero counters are left out."""
        out = [
            f"{self.direction}: {self.images_out} of {self.images_in} images, "
            f"{self.annotations_out} annotations ({self.polygons_out} polygons) from "
            f"{self.annotations_in} read",
            f"  multi-part annotations: {self.multipart_annotations}, crowd: "
            f"{self.crowd_annotations}, images without annotations: "
            f"{self.images_without_annotations}",
        ]
        for title, table in (("repaired", REPAIRED), ("skipped", SKIPPED), ("kept, flagged", FLAGGED)):
            rows = [(getattr(self, name), text) for name, text in table.items() if getattr(self, name)]
            if rows:
                out.append(f"  {title}:")
                out.extend(f"    {count:>7}  {text}" for count, text in rows)
        if self.repaired + self.skipped + sum(getattr(self, name) for name in FLAGGED) == 0:
            out.append("  no problems found")
        if self.problems:
            out.append(f"  first {len(self.problems)} problems (image, item, reason):")
            out.extend(f"    {image} | {item} | {reason}" for image, item, reason in self.problems)
        return out

    def __str__(self):
        return "\n".join(self.lines())


def note_modanet_defects(summary, coco):
    """Count ModaNet's own defects in `coco` (the input of COCO -> VIA, the output of VIA -> COCO)
    with helpers.repair's check (nothing is changed): exact duplicates, and boxes off their
    polygons. A conversion keeps both, so a round trip stays lossless; repair them with
    `python -m helpers.repair`, or let `CocoDataset.load_coco` do it on loading."""
    _, found = repair_coco(coco, drop_duplicates=False, fix_boxes=False, recompute_area=False)
    summary.duplicate_annotations += found.duplicates
    summary.boxes_off_polygons += found.boxes_disagreeing
    return summary
