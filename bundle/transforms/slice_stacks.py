"""F and F⁻¹ (``slices_from_volume`` / ``volume_from_slices``) live in :mod:`bundle.networks.slices`, beside the
networks that run on them; re-exported here, where the transforms use them."""

from bundle.networks.slices import slices_from_volume, volume_from_slices

__all__ = ["slices_from_volume", "volume_from_slices"]
