"""The Mosaic-IT augmentation engine: rules, layout, sample construction, verification, stats."""
from mosaic_it.mosaic import mask_rules, order_rules  # noqa: F401  (fill the rule registries)
