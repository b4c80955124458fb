"""Model zoo: every architecture is built through `build_model` (see registry.py).

A trained model is saved and loaded by model_file.py and run by inference.py.
"""

from crlm.models.base import ModelOutput
from crlm.models.registry import build_model

__all__ = ["ModelOutput", "build_model"]
