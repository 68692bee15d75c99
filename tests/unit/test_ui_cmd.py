"""`flowscope ui`: its flags and their defaults."""

from __future__ import annotations

import pytest

from flowscope.cli.main import build_parser
from flowscope.cli.ui_cmd import listen_address
from flowscope.common.errors import InputError


def test_defaults_bind_localhost_and_follow_the_local_relay() -> None:
    args = build_parser().parse_args(["ui"])
    assert (args.listen_address, args.server) == ("127.0.0.1:12000", "localhost:4245")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:12000", ("127.0.0.1", 12000)),
        ("0.0.0.0:8080", ("0.0.0.0", 8080)),
        ("[::1]:12000", ("::1", 12000)),
        ("localhost:1", ("localhost", 1)),
    ],
)
def test_listen_addresses(text: str, expected: tuple[str, int]) -> None:
    assert listen_address(text) == expected


@pytest.mark.parametrize("text", ["12000", ":12000", "host:", "host:port", "host:70000", "host:0"])
def test_bad_listen_addresses_name_the_flag(text: str) -> None:
    with pytest.raises(InputError) as raised:
        listen_address(text)
    assert str(raised.value) == f"invalid --listen-address {text!r}: expected HOST:PORT"
