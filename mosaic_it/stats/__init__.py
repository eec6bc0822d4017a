"""Statistics for comparing arms: a paired, hierarchical bootstrap over seeds and evaluation items."""
