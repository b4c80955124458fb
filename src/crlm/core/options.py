"""Choices at their point of use: each consumer of a params.yaml option owns the table of its choices.

A consumer maps each name an option may take to what implements it (a function,
a class, an object) and dispatches through `look_up`, MONAI's look_up_option
style, instead of an if-chain. Each section's dataclass validates the same options
once, as `Literal` field types (it does not import the consumers, which load torch,
sklearn and pydicom); tests/core/test_options.py ties each Literal to its consumer's table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crlm.core.config import ConfigError


def look_up(key: str, value: str, table: Mapping[str, Any]) -> Any:
    """table[value]; a value the table does not know is a ConfigError naming the param key and the valid names."""
    try:
        return table[value]
    except (KeyError, TypeError):
        raise ConfigError(f"{key}: unknown choice {value!r}; valid: {list(table)}") from None
