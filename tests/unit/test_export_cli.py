"""`flowscope export`'s flags: the request they build and the errors for bad ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowscope.cli.export import build_request
from flowscope.cli.main import main
from flowscope.common.errors import FilterError, InputError
from flowscope.proto.flow import flow_pb2


def test_request_carries_filters_and_a_mask_keeping_the_cursor_fields() -> None:
    request = build_request(
        ['{"verdict":["DROPPED"]}', '{"source_pod":["shop/"]}'],
        ['{"destination_port":["53"]}'],
        ["time,source.pod_name", "verdict"],
    )
    assert [list(f.verdict) for f in request.whitelist] == [[flow_pb2.DROPPED], []]
    assert list(request.whitelist[1].source_pod) == ["shop/"]
    assert list(request.blacklist[0].destination_port) == ["53"]
    assert list(request.field_mask.paths) == [
        "time",
        "source.pod_name",
        "verdict",
        "node_name",
        "node_sequence",
        "uuid",
    ]
    assert not build_request([], [], []).field_mask.paths


@pytest.mark.parametrize(
    ("allow", "deny", "mask", "error", "message"),
    [
        (["{"], [], [], FilterError, r"invalid --allowlist '\{': not valid JSON"),
        ([], ['{"nope":[1]}'], [], FilterError, r"invalid --denylist .*not a FlowFilter"),
        ([], ['{"source_ip":["300.1.1.1"]}'], [], FilterError, r"invalid --denylist '300.1.1.1'"),
        ([], [], ["source.nope"], InputError, r"--field-mask"),
    ],
)
def test_bad_flags_are_named(
    allow: list[str], deny: list[str], mask: list[str], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        build_request(allow, deny, mask)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--sink", "file"], "--sink file needs --file PATH"),
        (["--file", "x.log"], "--file needs --sink file"),
        (["--sink", "syslog"], "--sink syslog needs --syslog-address HOST:PORT"),
        (["--syslog-tls"], "--syslog-tls needs --sink syslog"),
        (
            ["--sink", "syslog", "--syslog-address", "siem:514", "--syslog-ca", "ca.crt"],
            "--syslog-ca needs --syslog-tls",
        ),
        (["--sink", "file", "--file", "x.log", "--max-backups", "-1"], "invalid --max-backups -1"),
        (["--field-mask", "bogus"], "--field-mask"),
    ],
)
def test_command_reports_bad_flags(
    arguments: list[str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    state = ["--state-dir", str(tmp_path / "state"), "--server", "127.0.0.1:1"]
    assert main(["export", *state, *arguments]) == 1
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""
    assert not (tmp_path / "x.log").exists()
