"""Which application drives the bundle: its own command line (``monai.bundle run``) or MONAI Label.

MONAI Label runs ``configs/inference.yaml`` and ``configs/train.yaml`` itself and passes none of this bundle's
overrides, so the two configs ask here where a few settings must differ under it (see docs/README.md, "MONAI
Label"). Its server exports every one of its settings, ``MONAI_LABEL_APP_DIR`` among them, to its own environment
before it loads the app (monailabel ``main.py``, ``start_server_init_settings``); the training and inference
processes it starts inherit them, ``torchrun`` workers included.
"""

from __future__ import annotations

import os

__all__ = ["MONAILABEL_ENV", "driven_by_monailabel"]

MONAILABEL_ENV = "MONAI_LABEL_APP_DIR"


def driven_by_monailabel() -> bool:
    """``True`` inside a MONAI Label server and the processes it starts (``MONAI_LABEL_APP_DIR`` is set)."""
    return bool(os.environ.get(MONAILABEL_ENV))
