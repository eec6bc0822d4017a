"""Evaluation: held-out loss, mosaic following, IFEval, pairwise judging, and the comparison report."""
