"""The `collector` and `lab` commands' arguments (no root: nothing is loaded or built)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from flowscope.cli import collector_cmd
from flowscope.cli import lab as lab_cli
from flowscope.collector.loader import DatapathConfig
from flowscope.common.auth import ClientAuth
from flowscope.common.errors import FlowscopeError, InputError


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="flowscope")
    sub = parser.add_subparsers(dest="command", required=True)
    collector_cmd.register(sub)
    lab_cli.register(sub)
    return parser.parse_args(argv)


def test_collector_flags_make_its_config(tmp_path: Path) -> None:
    args = parse(["collector", "--node-name", "n7", "--no-lab", "--endpoints-file",
                  str(tmp_path / "e.yaml"), "--ring-size", "4095", "--sweep-interval", "2",
                  "--events", "perf", "--buffer-pages", "64", "--rate-limit", "100",
                  "--rate-burst", "50"])
    assert args.func is collector_cmd.run
    config = collector_cmd.config_from(args)
    assert (config.node_name, config.lab_state_dir, config.endpoints_file) == (
        "n7", None, tmp_path / "e.yaml")
    assert (config.ring_capacity, config.sweep_interval) == (4095, 2.0)
    assert config.datapath == DatapathConfig(transport="perf", buffer_pages=64, rate_limit=100,
                                             rate_burst=50)
    assert (config.policy_dir, config.policy.audit) == (None, False)
    assert config.control_socket == Path("/run/flowscope/collector.sock")


def test_policy_flags(tmp_path: Path) -> None:
    config = collector_cmd.config_from(parse([
        "collector", "--policy-dir", str(tmp_path), "--policy-audit-mode",
        "--control-socket", str(tmp_path / "c.sock")]))
    assert (config.policy_dir, config.policy.audit, config.control_socket) == (
        tmp_path, True, tmp_path / "c.sock")


def test_relay_flag_makes_the_relay_allocate_identities() -> None:
    assert collector_cmd.command_config(parse(["collector"])).relay == ""
    config = collector_cmd.command_config(parse(["collector", "--relay", "relay.lab:4245"]))
    assert (config.relay, config.relay_tls, config.relay_auth) == ("relay.lab:4245", None, None)
    config = collector_cmd.command_config(
        parse(["collector", "--relay", "localhost:4245", "--relay-token", "t0k"]))
    assert config.relay_auth == ClientAuth.bearer("t0k")
    refused = r"invalid --relay address 'relay\.lab': expected HOST:PORT"
    with pytest.raises(InputError, match=refused):
        collector_cmd.command_config(parse(["collector", "--relay", "relay.lab"]))


@pytest.mark.parametrize("argv", [
    ["collector", "--events", "kafka"],
    ["collector", "--ring-size", "0"],
    ["collector", "--sweep-interval", "-1"],
])
def test_bad_collector_flags_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse(argv)


def test_buffer_pages_must_be_a_power_of_two() -> None:
    with pytest.raises(FlowscopeError, match="power of two, not 3"):
        collector_cmd.config_from(parse(["collector", "--buffer-pages", "3"]))


def test_lab_list_and_exec_without_labs(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    base = ["lab", "--state-dir", str(tmp_path)]
    assert lab_cli.main([*base, "list"]) == 0
    assert capsys.readouterr().out == "no lab on this machine\n"
    assert lab_cli.main([*base, "exec", "shop/web", "--", "true"]) == 1
    assert "no lab has a pod 'shop/web'" in capsys.readouterr().err
    assert lab_cli.main([*base, "create", "-f", str(tmp_path / "missing.yaml")]) == 1
    assert "cannot read lab file" in capsys.readouterr().err
