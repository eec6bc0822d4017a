"""IFEval (Zhou et al. 2023) scored offline: one checker per instruction id, strict and loose."""
