"""Settings: flag > FLOWSCOPE_* variable > config file > default, and `flowscope config`."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from flowscope.cli.config import SETTINGS, resolve
from flowscope.cli.main import main


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The config file lives in tmp_path; no FLOWSCOPE_* variable of the machine leaks in."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("FLOWSCOPE_CONFIG", raising=False)
    for setting in SETTINGS.values():
        monkeypatch.delenv(setting.env, raising=False)
    return tmp_path / "flowscope" / "config.yaml"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


PRECEDENCE = {
    "flag first": ("flag:1", "env:2", "file:3", "flag:1"),
    "then the environment": (None, "env:2", "file:3", "env:2"),
    "then the file": (None, None, "file:3", "file:3"),
    "then the default": (None, None, None, "localhost:4245"),
}


@pytest.mark.parametrize(
    ("flag", "env", "file", "expected"), PRECEDENCE.values(), ids=PRECEDENCE.keys()
)
def test_precedence(
    isolated: Path, flag: str | None, env: str | None, file: str | None, expected: str
) -> None:
    if file is not None:
        isolated.parent.mkdir(parents=True)
        isolated.write_text(f"server: {file}\n")
    environment = {"XDG_CONFIG_HOME": str(isolated.parent.parent)}
    if env is not None:
        environment["FLOWSCOPE_SERVER"] = env
    settings = resolve(argparse.Namespace(server=flag), environment)
    assert settings.text("server") == expected
    assert settings.path == isolated


def test_defaults(isolated: Path) -> None:
    settings = resolve(argparse.Namespace(), {"XDG_CONFIG_HOME": str(isolated.parent.parent)})
    assert settings.as_dict() == {
        "allowlist": [],
        "denylist": [],
        "request-timeout": "12s",
        "server": "localhost:4245",
        "timeout": "5s",
    }
    assert (settings.seconds("timeout"), settings.seconds("request-timeout")) == (5.0, 12.0)


def test_home_config_without_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = resolve(argparse.Namespace(), {})
    assert settings.path == tmp_path / ".config" / "flowscope" / "config.yaml"


def test_set_get_view_reset(capsys: pytest.CaptureFixture[str], isolated: Path) -> None:
    assert run(capsys, "config", "set", "server", "relay.lab:4245") == (0, "", "")
    assert run(capsys, "config", "set", "timeout", "1m30s") == (0, "", "")
    assert isolated.read_text() == "server: relay.lab:4245\ntimeout: 1m30s\n"
    assert run(capsys, "config", "get", "server") == (0, "relay.lab:4245\n", "")
    assert run(capsys, "config", "view") == (
        0,
        (
            "allowlist: []\ndenylist: []\nrequest-timeout: 12s\nserver: relay.lab:4245\n"
            "timeout: 1m30s\n"
        ),
        "",
    )
    assert run(capsys, "config", "reset", "server") == (0, "", "")
    assert isolated.read_text() == "timeout: 1m30s\n"
    assert run(capsys, "config", "reset") == (0, "", "")
    assert isolated.read_text() == ""
    assert run(capsys, "config", "get", "server") == (0, "localhost:4245\n", "")


def test_environment_shows_in_view(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWSCOPE_REQUEST_TIMEOUT", "3s")
    assert run(capsys, "config", "get", "request-timeout") == (0, "3s\n", "")


def test_list_settings(capsys: pytest.CaptureFixture[str], isolated: Path) -> None:
    assert run(capsys, "config", "set", "denylist", '{"source_pod":["kube-system/"]}') == (
        0,
        "",
        "",
    )
    assert isolated.read_text() == 'denylist:\n    - \'{"source_pod":["kube-system/"]}\'\n'
    assert run(capsys, "config", "get", "denylist") == (
        0,
        '- \'{"source_pod":["kube-system/"]}\'\n',
        "",
    )
    assert run(capsys, "observe", "--print-raw-filters") == (
        0,
        'denylist:\n    - \'{"source_pod":["kube-system/"]}\'\n',
        "",
    )


def test_named_config_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    named = tmp_path / "elsewhere" / "mine.yaml"
    assert run(capsys, "config", "--config", str(named), "set", "server", "a:1") == (0, "", "")
    assert named.read_text() == "server: a:1\n"
    assert run(capsys, "--config", str(named), "config", "get", "server") == (0, "a:1\n", "")
    assert run(capsys, "config", "get", "server", "--config", str(named)) == (0, "a:1\n", "")


def test_config_file_from_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    named = tmp_path / "env.yaml"
    named.write_text("server: env-file:1\n")
    monkeypatch.setenv("FLOWSCOPE_CONFIG", str(named))
    assert run(capsys, "config", "get", "server") == (0, "env-file:1\n", "")


BAD = [
    (
        ["config", "get", "sever"],
        "unknown key 'sever': known keys are server, timeout, request-timeout, allowlist, denylist",
    ),
    (
        ["config", "set", "timeout", "5x"],
        "invalid timeout '5x': expected a positive duration such as 5s or 1m30s",
    ),
    (
        ["config", "set", "timeout", "0s"],
        "invalid timeout '0s': expected a positive duration such as 5s or 1m30s",
    ),
    (["config", "set", "server"], "the following arguments are required: VALUE"),
    (["config"], "the following arguments are required: ACTION"),
    (
        ["--config", "/nonexistent/flowscope.yaml", "config", "view"],
        "config file /nonexistent/flowscope.yaml does not exist",
    ),
    (
        ["observe", "--timeout", "soon"],
        "invalid --timeout 'soon': expected a positive duration such as 5s or 1m30s",
    ),
]


@pytest.mark.parametrize(("argv", "message"), BAD)
def test_bad_settings(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    assert run(capsys, *argv) == (1, "", message + "\n")


FILES = [
    ("server: [1\n", "is not valid YAML"),
    ("- a\n", "should hold a mapping of settings"),
    ("sever: x\n", "unknown key 'sever' in config file {path}: known keys are server, "),
    ("timeout: 5\n", "invalid timeout in {path}: expected a string, got 5"),
    ("allowlist: {a: 1}\n", "invalid allowlist in {path}: expected a list of strings"),
]


@pytest.mark.parametrize(("text", "message"), FILES)
def test_bad_config_files(
    capsys: pytest.CaptureFixture[str], isolated: Path, text: str, message: str
) -> None:
    isolated.parent.mkdir(parents=True)
    isolated.write_text(text)
    code, out, err = run(capsys, "config", "view")
    assert (code, out) == (1, "")
    assert message.format(path=isolated) in err


def test_bad_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWSCOPE_TIMEOUT", "5x")
    assert run(capsys, "config", "view") == (
        1,
        "",
        "invalid FLOWSCOPE_TIMEOUT '5x': expected a positive duration such as 5s or 1m30s\n",
    )
