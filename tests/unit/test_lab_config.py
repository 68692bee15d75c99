"""Lab file validation, address assignment and the state file."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from flowscope.collector.labconfig import (
    DEFAULT_LAB,
    default_lab,
    load_lab_file,
    parse_lab,
    read_state,
    write_state,
)
from flowscope.collector.labnet import exec_argv
from flowscope.common.errors import InputError


def lab(**changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(DEFAULT_LAB)
    document.update(changes)
    return document


def pod(**fields: Any) -> dict[str, Any]:
    return {"namespace": "shop", "name": "web", **fields}


def test_default_lab() -> None:
    config = default_lab()
    assert config.bridge == "fsbr-default"
    assert [(p.namespace, p.name, p.ipv4, p.ipv6) for p in config.pods] == [
        ("shop", "frontend", "10.199.1.1", "fd00:199::1:1"),
        ("shop", "checkout", "10.199.1.2", "fd00:199::1:2"),
        ("data", "db-0", "10.199.1.3", "fd00:199::1:3"),
        ("data", "cache", "10.199.1.4", "fd00:199::1:4"),
        ("world", "internet", "10.199.255.254", "fd00:199::ffff:ffff:ffff:fffe"),
    ]
    assert config.network.host_addresses() == ("10.199.0.1", "fd00:199::1")
    frontend = config.pods[0]
    assert config.netns(frontend) == "fs-default-shop-frontend"
    assert config.host_ifname(frontend) == "fs36a0a58fa9"
    assert len(config.host_ifname(frontend)) <= 15


def test_given_addresses_are_kept_and_others_assigned_around_them() -> None:
    config = parse_lab(lab(pods=[pod(name="a", ipv4="10.199.1.1"), pod(name="b")]), "t")
    assert [(p.name, p.ipv4) for p in config.pods[:2]] == [("a", "10.199.1.1"),
                                                         ("b", "10.199.1.2")]


@pytest.mark.parametrize(("document", "message"), [
    (lab(name="Bad"), "t: name: 'Bad' is not a valid name"),
    (lab(name="x" * 11), "is not a valid name"),
    (lab(pods=[pod(name="web;rm -rf /")]), r"t: pods\[0\].name: 'web;rm -rf /' is not a valid"),
    (lab(pods=[pod(name="../etc")]), "is not a valid name"),
    (lab(pods=[pod(namespace="nope")]), "'nope' is not declared under namespaces"),
    (lab(pods=[pod(ipv4="10.199.7.1")]), r"shop/web ipv4 10.199.7.1 is outside the pod range"),
    (lab(pods=[pod(ipv4="192.168.1.1")]), "is outside the lab network 10.199.0.0/16"),
    (lab(pods=[pod(ipv4="fd00:199::1:9")]), "is not an IPv4 address"),
    (lab(pods=[pod(ipv6="not-an-ip")]), "'not-an-ip' is not an IP address"),
    (lab(pods=[pod(name="a", ipv4="10.199.1.5"), pod(name="b", ipv4="10.199.1.5")]),
     "shop/b ipv4 10.199.1.5 is already used"),
    (lab(pods=[pod(ipv4="10.199.0.1")]), "shop/web ipv4 10.199.0.1 is already used"),
    (lab(pods=[pod(), pod()]), "pod shop/web is declared twice"),
    (lab(pods=[pod(labels={"app": "a b"})]), r"labels.app: 'a b' is not a valid name"),
    (lab(pods=[pod(labels={"-x": "y"})]), "label key: '-x' is not a valid name"),
    (lab(pods=[pod(workload={"name": "w", "kind": "deploy ment"})]), "workload.kind"),
    (lab(pods=[pod(extra=1)]), r"pods\[0\]: unknown key\(s\) extra"),
    (lab(world=[{"name": "ext", "ipv4": "10.199.1.9"}]), "world/ext ipv4 10.199.1.9 is inside"),
    (lab(namespaces={"world": {}}), "'world' is reserved"),
    (lab(network={**DEFAULT_LAB["network"], "pod_ipv4": "10.0.0.0/24"}),
     "pod_ipv4: 10.0.0.0/24 is not inside ipv4 10.199.0.0/16"),
    (lab(network={**DEFAULT_LAB["network"], "pod_ipv4": "10.199.0.0/16"}),
     "leaves no room for world hosts"),
    (lab(network={**DEFAULT_LAB["network"], "ipv6": "10.0.0.0/8"}), "is not an IPv6 network"),
    (lab(pods="frontend"), "t: pods: expected a list, got str"),
    ([1, 2], "t: expected a mapping, got list"),
])
def test_invalid_lab_files_name_what_and_where(document: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_lab(document, "t")


def test_load_lab_file_reports_the_path(tmp_path: Path) -> None:
    path = tmp_path / "lab.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(InputError, match=f"cannot read lab file {path}"):
        load_lab_file(path)
    path.write_text("name: small\nnetwork: {ipv4: 10.5.0.0/16, ipv6: 'fd00:5::/64', "
                    "pod_ipv4: 10.5.1.0/24, pod_ipv6: 'fd00:5::1:0/112'}\n"
                    "namespaces: {a: {}}\npods: [{namespace: a, name: p}]\n")
    config = load_lab_file(path)
    assert (config.name, config.pods[0].ipv4, config.pods[0].ipv6) == ("small", "10.5.1.1",
                                                                      "fd00:5::1:1")


def test_state_file_round_trip(tmp_path: Path) -> None:
    config = default_lab()
    path = write_state(config, tmp_path)
    assert path == tmp_path / "default.json"
    assert read_state(path) == config


def test_edited_state_file_is_validated_again(tmp_path: Path) -> None:
    path = write_state(default_lab(), tmp_path)
    path.write_text(path.read_text().replace('"frontend"', '"front;end"', 1))
    with pytest.raises(InputError, match="front;end"):
        read_state(path)


def test_exec_argv_runs_in_the_pods_namespace() -> None:
    config = default_lab()
    assert exec_argv(config, "data/db-0", ["ping", "-c1", "10.199.1.1"]) == [
        "ip", "netns", "exec", "fs-default-data-db-0", "ping", "-c1", "10.199.1.1"]
    with pytest.raises(InputError, match="has no pod 'data/nope'"):
        exec_argv(config, "data/nope", ["true"])
    with pytest.raises(InputError, match="no command given"):
        exec_argv(config, "data/db-0", [])
