"""The config error and the range checks the schema's dataclasses run when they are built."""

from __future__ import annotations

from crlm.errors import UserError


class ConfigError(UserError, ValueError):
    """A params.yaml value is missing, unknown or out of range."""


def _positive(key: str, value: float) -> None:
    if value <= 0:
        raise ConfigError(f"{key} must be > 0, got {value}")


def _unit_interval(key: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{key} must be in [0, 1], got {value}")


def _open_unit_interval(key: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise ConfigError(f"{key} must be in (0, 1), got {value}")


def _ordered_pair(key: str, pair: tuple[float, float]) -> None:
    if pair[0] > pair[1]:
        raise ConfigError(f"{key} must be [low, high], got {list(pair)}")
