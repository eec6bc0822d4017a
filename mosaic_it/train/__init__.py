"""Fine-tuning causal LMs on records or mosaic samples, with the cost of every run accounted for.

Read in this order: data (records -> token ids and loss masks), batching (the three regimes),
model, optim, loop (the training steps), checkpoint, cost, run (one call that does it all).
"""
