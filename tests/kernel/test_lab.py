"""`flowscope lab`: create a lab, reach pods and world hosts, find no way out, destroy it all."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from labtools import TEST_LAB, kernel_ready, run_in

from flowscope.cli import lab as lab_cli
from flowscope.collector.labconfig import parse_lab

pytestmark = pytest.mark.kernel

LAB = {**TEST_LAB, "name": "klab",
       "network": {"ipv4": "10.197.0.0/16", "ipv6": "fd00:197::/64",
                   "pod_ipv4": "10.197.1.0/24", "pod_ipv6": "fd00:197::1:0/112"}}


def test_create_use_and_destroy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if reason := kernel_ready():
        pytest.skip(reason)
    lab_file = tmp_path / "lab.yaml"
    import yaml

    lab_file.write_text(yaml.safe_dump(LAB))
    state = tmp_path / "state"
    config = parse_lab(LAB, "test")
    base = ["lab", "--state-dir", str(state)]
    try:
        assert lab_cli.main([*base, "create", "-f", str(lab_file)]) == 0
        assert lab_cli.main([*base, "list"]) == 0
        listing = capsys.readouterr().out
        assert "shop/client" in listing and "10.197.1.2" in listing

        client, server = config.find("shop/client"), config.find("data/server")
        world = config.find("world/internet")
        for target in (server.ipv4, server.ipv6, world.ipv4, world.ipv6):
            run_in(config, "shop/client", "ping", target, "1")
        # No route out of the lab: the route lookup fails before anything is sent.
        run_in(config, "shop/client", "unroutable", "192.0.2.1")
        run_in(config, "shop/client", "unroutable", "2001:db8::1")
        assert lab_cli.main([*base, "exec", "data/server", "--", "true"]) == 0
        assert lab_cli.main([*base, "exec", "data/server", "--", "false"]) == 1
        assert lab_cli.main([*base, "exec", "data/nope", "--", "true"]) == 1
        assert lab_cli.main([*base, "create", "-f", str(lab_file)]) == 1  # exists already
        assert "already exists" in capsys.readouterr().err
        interfaces = [config.host_ifname(p) for p in config.pods] + [config.bridge]
        assert all(Path("/sys/class/net", i).exists() for i in interfaces)
        del client
    finally:
        assert lab_cli.main([*base, "destroy", "--name", "klab"]) == 0
    assert not [n for n in os.listdir("/run/netns") if n.startswith("fs-klab-")]
    assert not [i for i in interfaces if Path("/sys/class/net", i).exists()]
    assert not list(state.glob("*.json"))
