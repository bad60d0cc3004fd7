"""Moved to :mod:`bundle.networks.folding` (networks depend on nothing else in ``bundle``); kept for old imports."""

from bundle.networks.folding import fold_batch_norms, inference_copy

__all__ = ["fold_batch_norms", "inference_copy"]
