"""``bundle.networks`` stands alone: importing it pulls in no other sub-package of ``bundle``, and the old homes of
what moved into it (F / F⁻¹, BatchNorm folding, the hybrid inferer) still give the same objects."""

from __future__ import annotations

import subprocess
import sys

import bundle.inference.folding
import bundle.inference.hybrid_inferer
import bundle.networks.folding
import bundle.networks.hybrid_inferer
import bundle.networks.slices
import bundle.transforms


def test_networks_import_no_other_bundle_sub_package():
    code = (
        "import sys, bundle.networks; print(' '.join(sorted(m for m in sys.modules "
        "if m.startswith('bundle.') and not m.startswith('bundle.networks'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out in ([], ["bundle.config_values"])  # config_values: as_bool, pure Python, imports nothing of bundle


def test_old_import_paths_still_work():
    assert bundle.transforms.slices_from_volume is bundle.networks.slices.slices_from_volume
    assert bundle.transforms.volume_from_slices is bundle.networks.slices.volume_from_slices
    assert bundle.inference.folding.inference_copy is bundle.networks.folding.inference_copy
    inferer = bundle.inference.hybrid_inferer.HybridSlidingWindowInferer
    assert inferer is bundle.networks.hybrid_inferer.HybridSlidingWindowInferer
