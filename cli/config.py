"""flowscope's settings, and the `flowscope config` command that edits them.

A setting comes from, in this order of precedence: its flag (`--server`), its
environment variable (FLOWSCOPE_ and the key in capitals with dashes as
underscores: FLOWSCOPE_SERVER, FLOWSCOPE_REQUEST_TIMEOUT), the YAML config file,
its default. The config file is $XDG_CONFIG_HOME/flowscope/config.yaml
(~/.config/flowscope/config.yaml when XDG_CONFIG_HOME is unset), or the file
that --config or FLOWSCOPE_CONFIG names. Its keys are the settings' keys:

    server: relay.example:4245
    timeout: 10s
    allowlist:
        - '{"source_pod":["shop/"]}'

`flowscope observe --print-raw-filters` prints allowlist and denylist in this form.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import yaml

from flowscope.common.errors import InputError
from flowscope.common.timeparse import NANOS_PER_SECOND, parse_duration

ENV_PREFIX: Final = "FLOWSCOPE_"
CONFIG_ENV: Final = "FLOWSCOPE_CONFIG"

Value = str | list[str]


@dataclass(frozen=True)
class Setting:
    """One setting: its key (also its flag and environment variable), default and kind."""

    key: str
    default: Value
    kind: Literal["string", "duration", "list"]
    help: str

    @property
    def dest(self) -> str:
        return self.key.replace("-", "_")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.key.upper().replace("-", "_")

    def check(self, value: object, where: str) -> Value:
        """The value in canonical form; `where` names its source in the error."""
        if self.kind == "list":
            items = [value] if isinstance(value, str) else value
            if isinstance(items, list) and all(isinstance(item, str) for item in items):
                return list(items)
            raise InputError(f"invalid {where}: expected a list of strings, got {value!r}")
        if not isinstance(value, str):
            raise InputError(f"invalid {where}: expected a string, got {value!r}")
        if self.kind == "duration":
            try:
                positive = parse_duration(value) > 0
            except InputError:
                positive = False
            if not positive:
                raise InputError(
                    f"invalid {where} {value!r}: expected a positive duration such as 5s or 1m30s"
                )
        return value


SETTINGS: Final[dict[str, Setting]] = {
    setting.key: setting
    for setting in (
        Setting("server", "localhost:4245", "string", "address of the flowscope server, HOST:PORT"),
        Setting("timeout", "5s", "duration", "how long to wait for the connection"),
        Setting("request-timeout", "12s", "duration", "how long to wait for single answers"),
        Setting(
            "allowlist",
            [],
            "list",
            "FlowFilter in JSON: show flows that match it (repeatable; any may match)",
        ),
        Setting(
            "denylist", [], "list", "FlowFilter in JSON: leave out flows that match it (repeatable)"
        ),
    )
}


class Settings:
    """The settings in effect, each from its flag, variable, file or default."""

    def __init__(self, values: Mapping[str, Value], path: Path) -> None:
        self._values = dict(values)
        self.path = path

    def text(self, key: str) -> str:
        value = self._values[key]
        assert isinstance(value, str), key
        return value

    def seconds(self, key: str) -> float:
        return parse_duration(self.text(key)) / NANOS_PER_SECOND

    def texts(self, key: str) -> list[str]:
        value = self._values[key]
        assert isinstance(value, list), key
        return value

    def as_dict(self) -> dict[str, Value]:
        return dict(sorted(self._values.items()))


def default_path(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "flowscope" / "config.yaml"


def chosen_path(args: argparse.Namespace, env: Mapping[str, str]) -> tuple[Path, bool]:
    """The config file, and whether the user named it (then it must exist to be read)."""
    named = getattr(args, "config", None) or env.get(CONFIG_ENV)
    return (Path(named), True) if named else (default_path(env), False)


def read_file(path: Path, *, must_exist: bool) -> dict[str, Value]:
    """The settings a config file holds, checked."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        if must_exist:
            raise InputError(f"config file {path} does not exist") from None
        return {}
    except OSError as err:
        raise InputError(f"cannot read config file {path}: {err.strerror}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise InputError(f"config file {path} is not valid YAML: {err}") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise InputError(f"config file {path} should hold a mapping of settings")
    values = {}
    for key, value in document.items():
        setting = SETTINGS.get(key)
        if setting is None:
            raise InputError(f"unknown key {key!r} in config file {path}: {known_keys()}")
        values[key] = setting.check(value, f"{key} in {path}")
    return values


def resolve(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> Settings:
    """Every setting from flag, environment, config file or default, in that order."""
    env = os.environ if env is None else env
    path, named = chosen_path(args, env)
    from_file = read_file(path, must_exist=named)
    values: dict[str, Value] = {}
    for key, setting in SETTINGS.items():
        flag = getattr(args, setting.dest, None)
        if flag is not None:
            values[key] = setting.check(flag, f"--{key}")
        elif setting.env in env:
            values[key] = setting.check(env[setting.env], setting.env)
        elif key in from_file:
            values[key] = from_file[key]
        else:
            values[key] = setting.default
    return Settings(values, path)


def add_flag(parser: argparse._ActionsContainer, key: str) -> None:
    """A setting's flag; unset flags stay None so the other sources can apply."""
    setting = SETTINGS[key]
    default = setting.default if setting.default else None
    shown = f" (default {default})" if isinstance(default, str) else ""
    parser.add_argument(
        f"--{key}",
        dest=setting.dest,
        action="append" if setting.kind == "list" else "store",
        metavar="JSON" if setting.kind == "list" else key.upper().replace("-", "_"),
        help=f"{setting.help}{shown}; env {setting.env}",
    )


def add_config_flag(parser: argparse._ActionsContainer, *, in_subcommand: bool) -> None:
    """--config; a subcommand's copy leaves the value the main parser read alone."""
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS if in_subcommand else None,
        help=f"config file (default $XDG_CONFIG_HOME/flowscope/config.yaml; env {CONFIG_ENV})",
    )


def known_keys() -> str:
    return "known keys are " + ", ".join(SETTINGS)


def dump_yaml(document: object) -> str:
    """YAML as flowscope writes it: block style, lists indented by 4, no line folding."""
    text = yaml.dump(
        document,
        Dumper=_IndentedDumper,
        indent=4,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=2**31,
    )
    return text.removesuffix("...\n")  # the end marker PyYAML puts after a lone scalar


class _IndentedDumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


# --- the `config` command ------------------------------------------------------

EXAMPLES = """\
examples:
  flowscope config view                      settings in effect
  flowscope config set server relay:4245     write one setting to the config file
  flowscope config get timeout
  flowscope config reset server              back to the default
"""


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "config",
        help="show or change flowscope's settings",
        description="Settings come from their flag, their FLOWSCOPE_* environment variable,\n"
        "the config file, or their default, in that order. The config file is\n"
        "$XDG_CONFIG_HOME/flowscope/config.yaml unless --config or FLOWSCOPE_CONFIG names one.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_flag(parser, in_subcommand=True)
    actions = parser.add_subparsers(dest="config_action", metavar="ACTION", required=True)
    view = actions.add_parser("view", help="print the settings in effect")
    view.set_defaults(func=_view)
    get = actions.add_parser("get", help="print one setting in effect")
    get.add_argument("key", metavar="KEY")
    get.set_defaults(func=_get)
    set_ = actions.add_parser("set", help="write one setting to the config file")
    set_.add_argument("key", metavar="KEY")
    set_.add_argument("value", metavar="VALUE")
    set_.set_defaults(func=_set)
    reset = actions.add_parser("reset", help="remove one setting, or all, from the config file")
    reset.add_argument("key", metavar="KEY", nargs="?")
    reset.set_defaults(func=_reset)
    for sub in (view, get, set_, reset):
        add_config_flag(sub, in_subcommand=True)


def _setting(key: str) -> Setting:
    setting = SETTINGS.get(key)
    if setting is None:
        raise InputError(f"unknown key {key!r}: {known_keys()}")
    return setting


def _view(args: argparse.Namespace) -> int:
    sys.stdout.write(dump_yaml(resolve(args).as_dict()))
    return 0


def _get(args: argparse.Namespace) -> int:
    _setting(args.key)
    sys.stdout.write(dump_yaml(resolve(args).as_dict()[args.key]))
    return 0


def _set(args: argparse.Namespace) -> int:
    setting = _setting(args.key)
    value = setting.check(args.value, args.key)
    path, _ = chosen_path(args, os.environ)
    document = read_file(path, must_exist=False)
    document[args.key] = value
    _write(path, document)
    return 0


def _reset(args: argparse.Namespace) -> int:
    path, named = chosen_path(args, os.environ)
    if args.key is not None:
        _setting(args.key)
    document = read_file(path, must_exist=named)
    for key in [args.key] if args.key else list(SETTINGS):
        document.pop(key, None)
    _write(path, document)
    return 0


def _write(path: Path, document: Mapping[str, Value]) -> None:
    try:
        path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
        path.write_text(dump_yaml(dict(sorted(document.items()))) if document else "")
    except OSError as err:
        raise InputError(f"cannot write config file {path}: {err.strerror}") from None
