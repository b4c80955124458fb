"""Reading params.yaml into the schema's dataclasses: unknown, missing or mistyped keys fail, naming the key."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

import yaml

from crlm.config.checks import ConfigError
from crlm.config.schema import ModelConfig, Params


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: params file not found")
    raw = yaml.safe_load(path.read_text()) or {}
    return params_from_dict(raw, source=str(path))


def cli_params(description: str, argv: list[str] | None = None) -> Params:
    """The params of a stage script: `--params PATH` (default params.yaml)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    return load_params(parser.parse_args(argv).params)


def params_from_dict(raw: dict[str, Any], source: str = "params") -> Params:
    return _build(Params, raw, prefix="", source=source)


def model_config_from_dict(raw: dict[str, Any], source: str) -> ModelConfig:
    """A `model` section saved with a trained model, validated like params.yaml's."""
    return _build(ModelConfig, raw, prefix="model.", source=source)


def choices(cls: type, name: str) -> tuple[str, ...]:
    """The names that field `name` of the config dataclass `cls` may take: its Literal's (of the items
    for a list option)."""
    hint = get_type_hints(cls)[name]
    if get_origin(hint) is tuple:
        hint = get_args(hint)[0]
    if get_origin(hint) is not Literal:
        raise TypeError(f"{cls.__name__}.{name} is not a choice (a Literal)")
    return get_args(hint)


def _build(cls: type, raw: Any, prefix: str, source: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: '{prefix.rstrip('.') or 'top level'}' must be a mapping")
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(raw) - set(names))
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {[prefix + k for k in unknown]}")
    missing = [prefix + n for n in names if n not in raw]
    if missing:
        raise ConfigError(f"{source}: missing key(s) {missing}")
    values = {}
    for name in names:
        hint = hints[name]
        key = prefix + name
        if dataclasses.is_dataclass(hint):
            values[name] = _build(hint, raw[name], prefix=key + ".", source=source)
        else:
            values[name] = _coerce(raw[name], hint, key, source)
    return cls(**values)


def _coerce(value: Any, hint: Any, key: str, source: str) -> Any:
    origin = getattr(hint, "__origin__", None)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: {key} must be a list, got {value!r}")
        args = hint.__args__
        item_type = args[0]
        if len(args) == 2 and args[1] is not Ellipsis and len(value) != 2:
            raise ConfigError(f"{source}: {key} must have two values, got {value!r}")
        return tuple(_coerce(v, item_type, key, source) for v in value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: {key} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: {key} must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{source}: {key} must be a number, got {value!r}")
        return float(value)
    if hint is str:
        return str(value)
    if get_origin(hint) is Literal:
        if value not in get_args(hint):
            raise ConfigError(f"{source}: {key}: unknown choice {value!r}; valid: {list(get_args(hint))}")
        return value
    raise ConfigError(f"{source}: {key}: unsupported type {hint}")  # pragma: no cover
