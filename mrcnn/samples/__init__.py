"""Small data sets for trying the engine without downloading anything.

`mrcnn.samples.shapes`: filled squares, circles and triangles drawn from a seed, with their masks, and
`coco_mask_ap` to score detect()'s results on them. The engine's tests and benches train on it; so can you.
"""
