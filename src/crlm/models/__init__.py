"""Model zoo: every architecture is built through `build_model` (see registry.py).

A trained model is saved and loaded by model_file.py and run by inference.py.
"""

from crlm.models.base import ModelOutput
from crlm.models.registry import ARCHS, build_model

__all__ = ["ARCHS", "ModelOutput", "build_model"]
