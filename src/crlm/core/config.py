"""Reading params.yaml: each stage loads the sections it reads, each into its own frozen dataclass.

A section's dataclass lives beside the code that uses it (crlm.survival.config.SurvivalConfig, the
arch's own `Config` in crlm/models/<arch>.py, ...) and names its section in `SECTION`; a stage asks for
its sections by class (`cli_params(__doc__, TrainConfig, SplitConfig)`), so that its imports, and so
its DVC dependencies, hold only those sections' code. Unknown, missing or mistyped keys fail, naming
the key, so a typo in `dvc exp run -S ...` fails loudly instead of being ignored; the validate stage
(crlm.params) checks the whole file before any other stage runs.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast, get_args, get_origin, get_type_hints

import yaml

from crlm.core.errors import UserError

if TYPE_CHECKING:
    from crlm.params import Params


class ConfigError(UserError, ValueError):
    """A params.yaml value is missing, unknown or out of range."""


def read_params_file(path: str | Path = "params.yaml") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: params file not found")
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    return raw


class Sections:
    """The sections of params.yaml a stage loaded, as attributes (`params.train.epochs`). Reading a section
    that was not asked for is an error naming it: a stage's DVC dependencies list only its sections' code."""

    def __init__(self, source: str, sections: dict[str, Any]) -> None:
        self._source = source
        self.__dict__.update(sections)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise ConfigError(
            f"{self._source}: section {name!r} was not loaded; pass its config class to "
            "cli_params()/sections_from_dict()"
        )


def sections_from_dict(raw: dict[str, Any], *classes: type[Any], source: str = "params") -> Params:
    """The sections of `raw` (params.yaml's content) that `classes` (config dataclasses with a SECTION)
    describe. Typed as the whole `Params` for the readers' sake; it holds only these sections."""
    loaded = {}
    for cls in classes:
        name = cls.SECTION
        if name not in raw:
            raise ConfigError(f"{source}: missing section {name!r}")
        loaded[name] = build(cls, raw[name], prefix=name + ".", source=source)
    return Sections(source, loaded)  # type: ignore[return-value]


def load_sections(path: str | Path, *classes: type) -> Params:
    return sections_from_dict(read_params_file(path), *classes, source=str(path))


def cli_params(description: str, *classes: type, argv: list[str] | None = None) -> Params:
    """The sections `classes` of a stage script's params: `--params PATH` (default params.yaml)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    return load_sections(parser.parse_args(argv).params, *classes)


def choices(cls: type, name: str) -> tuple[str, ...]:
    """The names that field `name` of the config dataclass `cls` may take: its Literal's (of the items
    for a list option)."""
    hint = get_type_hints(cls)[name]
    if get_origin(hint) is tuple:
        hint = get_args(hint)[0]
    if get_origin(hint) is not Literal:
        raise TypeError(f"{cls.__name__}.{name} is not a choice (a Literal)")
    return get_args(hint)


def build(cls: type, raw: Any, prefix: str, source: str) -> Any:
    """The dataclass `cls` from the mapping `raw` (the keys under `prefix`), every field checked.

    A class with OPEN_SUBSECTIONS (the `model` section) keeps its mapping-valued keys that are no field as
    raw mappings in its field `sections`: each arch's section, validated by whoever builds that arch. A
    PARTIAL class reads only its fields' keys of the section (a stage that reads a few keys of a section
    lists only those in dvc.yaml); the validate stage checks the whole section."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: '{prefix.rstrip('.') or 'top level'}' must be a mapping")
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    open_subsections = getattr(cls, "OPEN_SUBSECTIONS", False)
    if getattr(cls, "PARTIAL", False):
        raw = {k: v for k, v in raw.items() if k in names or (open_subsections and isinstance(v, dict))}
    fixed = [n for n in names if not (open_subsections and n == "sections")]
    extra = [k for k in raw if k not in fixed]
    subsections = {k: raw[k] for k in extra if open_subsections and isinstance(raw[k], dict)}
    unknown = sorted(k for k in extra if k not in subsections)
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {[prefix + k for k in unknown]}")
    missing = [prefix + n for n in fixed if n not in raw]
    if missing:
        raise ConfigError(f"{source}: missing key(s) {missing}")
    values: dict[str, Any] = {}
    for name in fixed:
        hint = hints[name]
        key = prefix + name
        if dataclasses.is_dataclass(hint):
            # a type hint: the dataclass itself, never an instance
            values[name] = build(cast(type, hint), raw[name], prefix=key + ".", source=source)
        else:
            values[name] = _coerce(raw[name], hint, key, source)
    if open_subsections:
        values["sections"] = subsections
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


def positive(key: str, value: float) -> None:
    if value <= 0:
        raise ConfigError(f"{key} must be > 0, got {value}")


def unit_interval(key: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{key} must be in [0, 1], got {value}")


def open_unit_interval(key: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise ConfigError(f"{key} must be in (0, 1), got {value}")


def ordered_pair(key: str, pair: tuple[float, float]) -> None:
    if pair[0] > pair[1]:
        raise ConfigError(f"{key} must be [low, high], got {list(pair)}")
