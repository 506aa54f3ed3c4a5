"""Pixel cache, batches and the training loop of the pixel-wise LTAE."""
