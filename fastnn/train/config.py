"""The run configuration of `fastnn train --config FILE`: a TOML file, checked against SCHEMA before anything runs.

    seed = 0
    epochs = 3
    [model]
    name = "lenet5"
    [data]
    embedded = true          # or data_dir = "/path/to/idx/files"; limit = 1000; batch_size = 64
    [augmentation]
    crop_flip = false        # random 28x28 crop after 2-pixel padding + horizontal flip
    [optimizer]
    name = "sgd"             # lr (default 0.05 for sgd, 1e-3 for adam), momentum, weight_decay
    [schedule]
    name = "cosine"          # or "constant"; epochs = the cosine's length (default: the run's epochs)
    [train]
    max_norm = 1.0           # gradient clipping; accumulate_grad_batches = 1
    [callbacks]
    lr_monitor = true
    tensorboard = false      # needs fastnn[tensorboard]
    [callbacks.checkpoint]   # with --out: DIR/best.fastnn on this metric, DIR/last.fastnn every epoch
    monitor = "val_acc"
    mode = "max"
    [callbacks.early_stopping]  # absent: no early stopping
    monitor = "val_loss"
    patience = 3

`resolve` merges the defaults, the file and the command line's explicit options (in that order of precedence,
lowest first) into the resolved config, a dict of the same shape with every key set; `dumps` writes it back
as TOML, so `fastnn train --config DIR/config.toml` repeats a run.
"""
import json
import math
import numbers

__all__ = ["ConfigError", "SCHEMA", "METRICS", "load_file", "resolve", "dumps"]

METRICS = ("train_loss", "train_acc", "train_top5", "val_loss", "val_acc", "val_top5")


class ConfigError(ValueError):
    """A bad configuration: the message names the key, the bad value and what is allowed."""


class _Key:
    def __init__(self, kind, default=None, choices=None, minimum=None, optional=False, positive=False):
        self.kind, self.default, self.choices = kind, default, choices
        self.minimum, self.optional, self.positive = minimum, optional, positive

    def check(self, name, value, where):
        if value is None and self.optional:
            return None
        if self.kind is bool:
            ok = isinstance(value, bool)
        elif self.kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif self.kind is float:
            ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
            value = float(value) if ok else value
        else:
            ok = isinstance(value, str)
        if not ok:
            raise ConfigError(f"{where(name)} must be {_KIND_NAMES[self.kind]}, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise ConfigError(f"{where(name)} must be one of {', '.join(map(str, self.choices))}; got {value!r}")
        if self.kind in (int, float) and not math.isfinite(value):
            raise ConfigError(f"{where(name)} must be finite, got {value!r}")
        if self.positive and not value > 0:
            raise ConfigError(f"{where(name)} must be positive, got {value!r}")
        if self.minimum is not None and value < self.minimum:
            raise ConfigError(f"{where(name)} must be at least {self.minimum}, got {value!r}")
        return value


_KIND_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}

# Section -> key -> _Key; "" is the top level. model.name's choices are the caller's (the CLI's model list).
SCHEMA = {
    "": {"seed": _Key(int, 0, minimum=0), "epochs": _Key(int, 3, minimum=1)},
    "model": {"name": _Key(str, "lenet5")},
    "data": {"embedded": _Key(bool, False), "data_dir": _Key(str, None, optional=True),
             "limit": _Key(int, None, optional=True, minimum=1), "batch_size": _Key(int, 64, minimum=1)},
    "augmentation": {"crop_flip": _Key(bool, False)},
    "optimizer": {"name": _Key(str, "sgd", choices=("sgd", "adam")), "lr": _Key(float, None, optional=True,
                                                                                positive=True),
                  "momentum": _Key(float, 0.9, minimum=0.0), "weight_decay": _Key(float, 0.0, minimum=0.0)},
    "schedule": {"name": _Key(str, "constant", choices=("constant", "cosine")),
                 "epochs": _Key(int, None, optional=True, minimum=1)},
    "train": {"max_norm": _Key(float, None, optional=True, positive=True),
              "accumulate_grad_batches": _Key(int, 1, minimum=1)},
    "callbacks": {"lr_monitor": _Key(bool, False), "tensorboard": _Key(bool, False)},
    "callbacks.checkpoint": {"monitor": _Key(str, "val_acc", choices=METRICS),
                             "mode": _Key(str, "max", choices=("min", "max"))},
    "callbacks.early_stopping": {"monitor": _Key(str, "val_loss", choices=METRICS),
                                 "patience": _Key(int, 3, minimum=0), "min_delta": _Key(float, 0.0, minimum=0.0),
                                 "mode": _Key(str, "min", choices=("min", "max"))},
}
# Sections present only when the file has them (the others always exist, with their defaults).
_OPTIONAL_SECTIONS = {"callbacks.early_stopping"}
DEFAULT_LR = {"sgd": 0.05, "adam": 1e-3}


def load_file(path):
    """The TOML file at `path` as a dict; ConfigError naming the file for syntax errors."""
    import tomllib
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None


def _flatten(raw, source):
    """{section: {key: value}} from the nested TOML dict, rejecting unknown sections and keys."""
    sections = {}
    for key, value in raw.items():
        if isinstance(value, dict):
            for sub, subvalue in value.items():
                if isinstance(subvalue, dict):
                    sections.setdefault(f"{key}.{sub}", {}).update(subvalue)
                else:
                    sections.setdefault(key, {})[sub] = subvalue
        else:
            sections.setdefault("", {})[key] = value
    for section, values in sections.items():
        if section not in SCHEMA:
            allowed = ", ".join(f"[{s}]" for s in SCHEMA if s) + ", " + ", ".join(SCHEMA[""])
            raise ConfigError(f"{source}: unknown section or key {section!r}; allowed: {allowed}")
        for key in values:
            if key not in SCHEMA[section]:
                raise ConfigError(f"{source}: unknown key {_dotted(section, key)!r}; allowed in "
                                  f"{'the top level' if not section else '[' + section + ']'}: "
                                  f"{', '.join(SCHEMA[section])}")
    return sections


def _dotted(section, key):
    return f"{section}.{key}" if section else key


def resolve(raw=None, overrides=None, source="config", model_choices=None, override_names=None):
    """The resolved config: SCHEMA's defaults, then `raw` (the TOML dict), then `overrides` ({"section.key":
    value} from the command line, None meaning not given). Every value is checked; a ConfigError names the key
    (as `source`'s key or as the command-line option in `override_names`) and the allowed values."""
    sections = _flatten(raw or {}, source)
    origin = {}
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        section, _, key = dotted.rpartition(".")
        sections.setdefault(section, {})[key] = value
        origin[dotted] = (override_names or {}).get(dotted, dotted)

    def where(section):
        return lambda key: origin.get(_dotted(section, key)) or f"{_dotted(section, key)} in {source}"

    resolved = {}
    for section, keys in SCHEMA.items():
        if section in _OPTIONAL_SECTIONS and section not in sections:
            continue
        given = sections.get(section, {})
        resolved[section] = {key: spec.check(key, given[key], where(section)) if key in given else spec.default
                             for key, spec in keys.items()}
    name = resolved["model"]["name"]
    if model_choices is not None and name not in model_choices:
        raise ConfigError(f"{where('model')('name')} must be one of {', '.join(model_choices)}; got {name!r}")
    data = resolved["data"]
    if data["embedded"] and data["data_dir"] is not None:
        raise ConfigError(f"{where('data')('embedded')} and {where('data')('data_dir')} are mutually exclusive")
    if resolved["optimizer"]["lr"] is None:
        resolved["optimizer"]["lr"] = DEFAULT_LR[resolved["optimizer"]["name"]]
    if resolved["schedule"]["epochs"] is None:
        resolved["schedule"]["epochs"] = resolved[""]["epochs"]
    return _nest(resolved)


def _nest(sections):
    out = dict(sections.pop(""))
    for section, values in sections.items():
        target = out
        *parents, last = section.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[last] = dict(values)
    return out


def _toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value)  # a TOML basic string: JSON's escapes are TOML's


def dumps(config):
    """`config` (a resolved config) as TOML text; None values are left out (they mean "not set")."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in config.items() if not isinstance(v, dict) and v is not None]

    def table(name, values):
        lines.append(f"\n[{name}]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in values.items() if not isinstance(v, dict) and v is not None)
        for k, v in values.items():
            if isinstance(v, dict):
                table(f"{name}.{k}", v)

    for k, v in config.items():
        if isinstance(v, dict):
            table(k, v)
    return "\n".join(lines) + "\n"
