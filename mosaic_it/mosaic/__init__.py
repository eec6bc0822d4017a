"""The Mosaic-IT augmentation engine: rules, layout, sample construction, verification, stats."""
from mosaic_it.mosaic import native

native.use_sources_where_needed()  # before any compiled module is imported

from mosaic_it.mosaic import mask_rules, order_rules  # noqa: E402,F401  (fill the rule registries)
