"""ModaNet Seasons: the course layer.

Thin helpers that the numbered notebooks call: data, splits, COCO/VIA, datasets for
`mrcnn`, auto-labelling, evaluation and plots. `helpers` uses only `mrcnn`'s public API;
`mrcnn` never imports `helpers`.
"""
