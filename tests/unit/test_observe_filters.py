"""Filter flags to FlowFilters (seen with --print-raw-filters), conflicts and bad values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from flowscope.cli.config import SETTINGS
from flowscope.cli.main import main


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No config file or FLOWSCOPE_* variable of the machine leaks in."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    for setting in SETTINGS.values():
        monkeypatch.delenv(setting.env, raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def raw_filters(capsys: pytest.CaptureFixture[str], *flags: str) -> dict[str, list[object]]:
    """The allowlist and denylist the flags make, each filter as a parsed JSON object."""
    code, out, err = run(capsys, "observe", *flags, "--print-raw-filters")
    assert (code, err) == (0, ""), err
    document = yaml.safe_load(out)
    return {key: [json.loads(text) for text in texts] for key, texts in document.items()}


CASES = {
    "no flags": ([], {}),
    "either-direction flag: left and right": (
        ["--ip", "1.2.3.4", "--ip", "5.6.7.8"],
        {
            "allowlist": [
                {"source_ip": ["1.2.3.4", "5.6.7.8"]},
                {"destination_ip": ["1.2.3.4", "5.6.7.8"]},
            ]
        },
    ),
    "non-directional flags go to both sides": (
        ["--ip", "10.0.0.1", "--verdict", "DROPPED", "--http-method", "get", "--node-name", "k8s*"],
        {
            "allowlist": [
                {
                    "source_ip": ["10.0.0.1"],
                    "verdict": ["DROPPED"],
                    "http_method": ["get"],
                    "node_name": ["k8s*"],
                },
                {
                    "destination_ip": ["10.0.0.1"],
                    "verdict": ["DROPPED"],
                    "http_method": ["get"],
                    "node_name": ["k8s*"],
                },
            ]
        },
    ),
    "equal sides are one filter": (
        ["--from-ip", "1.2.3.4", "--from-ip", "5.6.7.8", "--verdict", "FORWARDED", "-t", "l7"],
        {
            "allowlist": [
                {
                    "source_ip": ["1.2.3.4", "5.6.7.8"],
                    "verdict": ["FORWARDED"],
                    "event_type": [{"type": 129}],
                }
            ]
        },
    ),
    "two either-direction flags pair up by side": (
        ["--ip", "10.0.0.1", "--label", "k8s:app=web"],
        {
            "allowlist": [
                {"source_ip": ["10.0.0.1"], "source_label": ["k8s:app=web"]},
                {"destination_ip": ["10.0.0.1"], "destination_label": ["k8s:app=web"]},
            ]
        },
    ),
    "--not sends only the next flag to the denylist": (
        ["--from-ip", "1.2.3.4", "--not", "--to-ip", "5.5.5.5", "--verdict", "DROPPED"],
        {
            "allowlist": [{"source_ip": ["1.2.3.4"], "verdict": ["DROPPED"]}],
            "denylist": [{"destination_ip": ["5.5.5.5"]}],
        },
    ),
    "--not with an either-direction flag": (
        ["--not", "--namespace", "kube-system"],
        {"denylist": [{"source_pod": ["kube-system/"]}, {"destination_pod": ["kube-system/"]}]},
    ),
    "negated flags build their own pair": (
        ["--ip", "1.2.3.4", "--not", "--pod", "deathstar", "--not", "--http-status", "200"],
        {
            "allowlist": [{"source_ip": ["1.2.3.4"]}, {"destination_ip": ["1.2.3.4"]}],
            "denylist": [
                {"source_pod": ["default/deathstar"], "http_status_code": ["200"]},
                {"destination_pod": ["default/deathstar"], "http_status_code": ["200"]},
            ],
        },
    ),
    "pod without namespace: default": (
        ["--from-pod", "web", "--to-service", "shop/cart"],
        {"allowlist": [{"source_pod": ["default/web"], "destination_service": ["shop/cart"]}]},
    ),
    "namespace with a port": (
        ["--namespace", "cilium", "--port", "443"],
        {
            "allowlist": [
                {"source_pod": ["cilium/"], "source_port": ["443"]},
                {"destination_pod": ["cilium/"], "destination_port": ["443"]},
            ]
        },
    ),
    "to-namespace with an either-direction port": (
        ["--to-namespace", "cilium", "--port", "443"],
        {
            "allowlist": [
                {"destination_pod": ["cilium/"], "source_port": ["443"]},
                {"destination_pod": ["cilium/"], "destination_port": ["443"]},
            ]
        },
    ),
    "namespace qualifies pods": (
        ["--namespace", "cilium", "--pod", "foo-9c76d6c95-tf788"],
        {
            "allowlist": [
                {"source_pod": ["cilium/foo-9c76d6c95-tf788"]},
                {"destination_pod": ["cilium/foo-9c76d6c95-tf788"]},
            ]
        },
    ),
    "namespaces times services": (
        ["-n", "cilium", "-n", "kube-system", "--service", "foo", "--service", "bar"],
        {
            "allowlist": [
                {
                    "source_service": [
                        "cilium/foo",
                        "kube-system/foo",
                        "cilium/bar",
                        "kube-system/bar",
                    ]
                },
                {
                    "destination_service": [
                        "cilium/foo",
                        "kube-system/foo",
                        "cilium/bar",
                        "kube-system/bar",
                    ]
                },
            ]
        },
    ),
    "from-namespace and a namespaced to-pod": (
        ["--from-namespace", "kube-system", "--to-pod", "cilium/foo"],
        {"allowlist": [{"source_pod": ["kube-system/"], "destination_pod": ["cilium/foo"]}]},
    ),
    "all namespaces": (
        ["-A", "--pod", "foo"],
        {"allowlist": [{"source_pod": ["/foo"]}, {"destination_pod": ["/foo"]}]},
    ),
    "to all namespaces": (
        ["--to-all-namespaces", "--to-service", "bar"],
        {"allowlist": [{"destination_service": ["/bar"]}]},
    ),
    "directional flags of both ends": (
        ["--from-pod", "cilium", "--to-workload", "app", "--to-identity", "42"],
        {
            "allowlist": [
                {
                    "source_pod": ["default/cilium"],
                    "destination_workload": [{"name": "app"}],
                    "destination_identity": [42],
                }
            ]
        },
    ),
    "identities by number and reserved name": (
        ["--identity", "1", "--identity", "world"],
        {"allowlist": [{"source_identity": [1, 2]}, {"destination_identity": [1, 2]}]},
    ),
    "workload kinds": (
        ["--from-workload", "Deployment/api", "--from-workload", "DaemonSet/"],
        {
            "allowlist": [
                {"source_workload": [{"name": "api", "kind": "Deployment"}, {"kind": "DaemonSet"}]}
            ]
        },
    ),
    "clusters": (
        ["--cluster", "foo", "--cluster", "bar"],
        {
            "allowlist": [
                {"source_cluster_name": ["foo", "bar"]},
                {"destination_cluster_name": ["foo", "bar"]},
            ]
        },
    ),
    "event types and subtypes": (
        [
            "-t",
            "254",
            "-t",
            "255:127",
            "-t",
            "trace:to-endpoint",
            "-t",
            "trace:from-endpoint",
            "-t",
            "4:2",
            "-t",
            "agent",
            "-t",
            "agent:policy-updated",
            "-t",
            "policy-verdict",
        ],
        {
            "allowlist": [
                {
                    "event_type": [
                        {"type": 254},
                        {"type": 255, "match_sub_type": True, "sub_type": 127},
                        {"type": 4, "match_sub_type": True},
                        {"type": 4, "match_sub_type": True, "sub_type": 5},
                        {"type": 4, "match_sub_type": True, "sub_type": 2},
                        {"type": 130},
                        {"type": 130, "match_sub_type": True, "sub_type": 3},
                        {"type": 5},
                    ]
                }
            ]
        },
    ),
    "TCP flags, one entry a flag": (
        ["--tcp-flags", "syn,ack", "--tcp-flags", "FIN"],
        {"allowlist": [{"tcp_flags": [{"SYN": True, "ACK": True}, {"FIN": True}]}]},
    ),
    "IP versions": (
        ["-4", "--ip-version", "v6", "--ip-version", "none"],
        {"allowlist": [{"ip_version": ["IPv4", "IPv6", "IP_NOT_USED"]}]},
    ),
    "enums by name, any case": (
        [
            "--verdict",
            "dropped",
            "--drop-reason-desc",
            "POLICY_DENIED",
            "--traffic-direction",
            "Ingress",
        ],
        {
            "allowlist": [
                {
                    "traffic_direction": ["INGRESS"],
                    "verdict": ["DROPPED"],
                    "drop_reason_desc": ["POLICY_DENIED"],
                }
            ]
        },
    ),
    "L7 and misc flags": (
        [
            "--http-status",
            "5+",
            "--http-path",
            "/api/.*",
            "--http-url",
            "http://x/.*",
            "--http-header",
            "x-id:a:b",
            "--protocol",
            "tcp",
            "--uuid",
            "u-1",
            "--trace-id",
            "t-1",
            "--ip-trace-id",
            "99",
            "--interface",
            "eth0",
            "--node-label",
            "zone=a",
            "--snat-ip",
            "10.0.0.0/8",
            "--fqdn",
            "*.example.com",
        ],
        {
            "allowlist": [
                {
                    "uuid": ["u-1"],
                    "source_ip_xlated": ["10.0.0.0/8"],
                    "source_fqdn": ["*.example.com"],
                    "interface": [{"name": "eth0"}],
                    "http_status_code": ["5+"],
                    "protocol": ["tcp"],
                    "http_path": ["/api/.*"],
                    "http_url": ["http://x/.*"],
                    "http_header": [{"key": "x-id", "value": "a:b"}],
                    "node_labels": ["zone=a"],
                    "trace_id": ["t-1"],
                    "ip_trace_id": ["99"],
                },
                {
                    "uuid": ["u-1"],
                    "source_ip_xlated": ["10.0.0.0/8"],
                    "destination_fqdn": ["*.example.com"],
                    "interface": [{"name": "eth0"}],
                    "http_status_code": ["5+"],
                    "protocol": ["tcp"],
                    "http_path": ["/api/.*"],
                    "http_url": ["http://x/.*"],
                    "http_header": [{"key": "x-id", "value": "a:b"}],
                    "node_labels": ["zone=a"],
                    "trace_id": ["t-1"],
                    "ip_trace_id": ["99"],
                },
            ]
        },
    ),
    "encryption and CEL": (
        ["--unencrypted", "--cel-expression", "_flow.verdict == 2"],
        {
            "allowlist": [
                {"encrypted": [False], "experimental": {"cel_expression": ["_flow.verdict == 2"]}}
            ]
        },
    ),
    "raw filters after the flags' own": (
        [
            "--verdict",
            "DROPPED",
            "--allowlist",
            '{"protocol": ["udp"]}{"source_port": ["53"]}',
            "--denylist",
            '{"destination_pod": ["kube-system/"]}',
        ],
        {
            "allowlist": [{"verdict": ["DROPPED"]}, {"protocol": ["udp"]}, {"source_port": ["53"]}],
            "denylist": [{"destination_pod": ["kube-system/"]}],
        },
    ),
}


@pytest.mark.parametrize(("flags", "expected"), CASES.values(), ids=CASES.keys())
def test_flags_compile_to_flow_filters(
    capsys: pytest.CaptureFixture[str], flags: list[str], expected: dict[str, list[object]]
) -> None:
    assert raw_filters(capsys, *flags) == expected


def test_raw_filters_print_as_hubble_does(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "observe",
        "--not",
        "--namespace",
        "kube-system",
        "--cel-expression",
        "a && b",
        "--print-raw-filters",
    )
    assert code == 0
    assert out == (
        "allowlist:\n"
        """    - '{"experimental":{"cel_expression":["a \\u0026\\u0026 b"]}}'\n"""
        "denylist:\n"
        """    - '{"source_pod":["kube-system/"]}'\n"""
        """    - '{"destination_pod":["kube-system/"]}'\n"""
    )


def test_no_filters_print_an_empty_document(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "observe", "--print-raw-filters") == (0, "{}\n", "")


def test_printed_filters_read_back_from_a_config_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    flags = ["--namespace", "shop", "--verdict", "DROPPED", "--not", "--port", "53"]
    printed = run(capsys, "observe", *flags, "--print-raw-filters")[1]
    saved = tmp_path / "filters.yaml"
    saved.write_text(printed)
    assert run(capsys, "observe", "--config", str(saved), "--print-raw-filters")[1] == printed


CONFLICTS = [
    (["--first", "2", "--last", "3"], "cannot set both --first and --last"),
    (["--first", "2", "--all"], "cannot set both --first and --all"),
    (["--first", "2", "-f"], "cannot set both --first and --follow"),
    (["--last", "2", "--all"], "cannot set both --last and --all"),
    (["-o", "table", "--follow"], "table output format is not compatible with follow mode"),
    (["-o", "tab", "-f"], "table output format is not compatible with follow mode"),
    (["--field-mask", "source"], "compact output format is not compatible with custom field mask"),
    (
        ["-o", "dict", "--field-mask", "l4"],
        "dict output format is not compatible with custom field mask",
    ),
    (["--not"], "trailing --not found in the arguments"),
    (
        ["--not", "--not", "--pod", "x"],
        "consecutive --not flags: --not applies to the next filter flag",
    ),
    (
        ["--to-namespace", "kube-system", "--to-pod", "cilium/foo"],
        'namespace conflict: "kube-system" does not contain "cilium/foo"',
    ),
    (
        ["--from-service", "cilium/foo", "--from-pod", "kube-system/hubble"],
        'namespace conflict: service "cilium/foo" is not in the namespace of pod '
        '"kube-system/hubble"',
    ),
]
# Filter flags that cannot be combined, with the message naming them.
FLAG_CONFLICTS = [
    ("--port", "--to-port", "--port", "--to-port"),
    ("--port", "--from-port", "--port", "--from-port"),
    ("--identity", "--to-identity", "--identity", "--to-identity"),
    ("--identity", "--from-identity", "--identity", "--from-identity"),
    ("--workload", "--to-workload", "--workload", "--to-workload"),
    ("--workload", "--from-workload", "--workload", "--from-workload"),
    ("--fqdn", "--from-fqdn", "--from-fqdn", "--fqdn"),
    ("--fqdn", "--to-fqdn", "--to-fqdn", "--fqdn"),
    ("--ip", "--from-ip", "--from-ip", "--ip"),
    ("--ip", "--to-ip", "--to-ip", "--ip"),
    ("--label", "--from-label", "--label", "--from-label"),
    ("--label", "--to-label", "--label", "--to-label"),
    ("--service", "--from-service", "--service", "--from-service"),
    ("--service", "--to-service", "--service", "--to-service"),
    ("--pod", "--from-pod", "--from-pod", "--pod"),
    ("--pod", "--to-pod", "--to-pod", "--pod"),
    ("--namespace", "--from-namespace", "--from-namespace", "--namespace"),
    ("--namespace", "--to-namespace", "--to-namespace", "--namespace"),
    ("--ip", "--pod", "--ip", "--pod"),
    ("--from-ip", "--from-pod", "--from-ip", "--from-pod"),
    ("--to-ip", "--pod", "--to-ip", "--pod"),
    ("--ip", "--namespace", "--ip", "--namespace"),
    ("--from-ip", "--from-namespace", "--from-ip", "--from-namespace"),
    ("--fqdn", "--namespace", "--fqdn", "--namespace"),
    ("--namespace", "--from-service", "--from-service", "--namespace"),
    ("--namespace", "--to-pod", "--to-pod", "--namespace"),
]
SWITCH_CONFLICTS = [
    (["--encrypted", "--unencrypted"], "--encrypted", "--unencrypted"),
    (["-A", "--from-all-namespaces"], "--from-all-namespaces", "--all-namespaces"),
    (["-A", "--to-service", "x"], "--to-service", "--all-namespaces"),
    (["--ip", "1.1.1.1", "-A"], "--ip", "--all-namespaces"),
]


@pytest.mark.parametrize(("flags", "message"), CONFLICTS)
def test_conflicting_flags(
    capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    assert run(capsys, "observe", *flags) == (1, "", message + "\n")


@pytest.mark.parametrize(("first", "second", "named_first", "named_second"), FLAG_CONFLICTS)
def test_conflicting_filter_flags(
    capsys: pytest.CaptureFixture[str],
    first: str,
    second: str,
    named_first: str,
    named_second: str,
) -> None:
    message = f"filters {named_first} and {named_second} cannot be combined\n"
    assert run(capsys, "observe", first, "1", second, "2") == (1, "", message)


@pytest.mark.parametrize(("flags", "named_first", "named_second"), SWITCH_CONFLICTS)
def test_conflicting_switches(
    capsys: pytest.CaptureFixture[str], flags: list[str], named_first: str, named_second: str
) -> None:
    message = f"filters {named_first} and {named_second} cannot be combined\n"
    assert run(capsys, "observe", *flags) == (1, "", message)


def test_negated_flags_do_not_conflict_with_plain_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert raw_filters(capsys, "--port", "80", "--not", "--to-port", "8080") == {
        "allowlist": [{"source_port": ["80"]}, {"destination_port": ["80"]}],
        "denylist": [{"destination_port": ["8080"]}],
    }


BAD_VALUES = [
    (
        ["--verdict", "FOO"],
        "invalid --verdict 'FOO': expected one of VERDICT_UNKNOWN, "
        "FORWARDED, DROPPED, ERROR, AUDIT, REDIRECTED, TRACED, TRANSLATED",
    ),
    (["--drop-reason-desc", ""], "invalid --drop-reason-desc '': empty value"),
    (
        ["--traffic-direction", "up"],
        "invalid --traffic-direction 'up': expected one of INGRESS, EGRESS",
    ),
    (
        ["-t", "bogus"],
        "invalid --type 'bogus': unknown event type 'bogus': expected a number "
        "or one of drop, debug, capture, trace, policy-verdict, trace-sock, l7, agent",
    ),
    (
        ["-t", "trace:bogus"],
        "invalid --type 'trace:bogus': unknown event subtype 'bogus': "
        "expected a number or one of to-endpoint, to-proxy, to-host, to-stack, to-overlay, "
        "from-endpoint, from-proxy, from-host, from-stack, from-overlay, from-network, "
        "to-network, from-crypto, to-crypto",
    ),
    (["-t", "drop:x"], "invalid --type 'drop:x': unknown event subtype 'x': expected a number"),
    (
        ["--identity", "bad"],
        "invalid --identity 'bad': not a security identity: expected a "
        "number or one of unknown, host, world, unmanaged, health, init, remote-node, "
        "kube-apiserver, ingress, world-ipv4, world-ipv6",
    ),
    (
        ["--to-identity", "4294967296"],
        "invalid --to-identity '4294967296': not a security identity",
    ),
    (
        ["--tcp-flags", "syn,"],
        "invalid --tcp-flags 'syn,': unknown TCP flag '': expected one "
        "of SYN, ACK, RST, FIN, PSH, URG, ECE, CWR, NS",
    ),
    (["--ip-version", "7"], "invalid --ip-version '7': expected none, v4 or v6"),
    (["--http-header", "foobar"], "invalid --http-header 'foobar': expected name:value"),
    (["--ip-trace-id", "0"], "invalid --ip-trace-id '0': expected a number greater than 0"),
    (["--last", "x"], "argument --last: expected a whole number, got 'x'"),
    (["--since", "yesterday"], "invalid --since: cannot read 'yesterday' as a time"),
    (
        ["--until", "2019-02-30"],
        "invalid --until: cannot read '2019-02-30' as a time: no such date",
    ),
    (
        ["-o", "xml"],
        "invalid --output 'xml': expected one of compact, dict, json, jsonpb, table, tab",
    ),
    (["--color", "pink"], "argument --color: invalid choice: 'pink'"),
    (["--ip-translation=maybe"], "argument --ip-translation: expected true or false, got 'maybe'"),
    (
        ["-o", "json", "--field-mask", "source.nope"],
        "invalid --field-mask 'source.nope': Flow has no such field",
    ),
    (
        ["--allowlist", "{bad"],
        "invalid --allowlist '{bad': not valid JSON: Expecting property "
        "name enclosed in double quotes",
    ),
    (["--denylist", "[1]"], "invalid --denylist '[1]': expected a JSON object (a FlowFilter)"),
    (["--allowlist", '{"nope": 1}'], """invalid --allowlist '{"nope": 1}': not a FlowFilter: """),
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--last"], "argument --last: expected one argument"),
]


@pytest.mark.parametrize(("flags", "message"), BAD_VALUES)
def test_bad_values_name_flag_and_value(
    capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    code, out, err = run(capsys, "observe", *flags, "--print-raw-filters")
    assert (code, out) == (1, "")
    assert err.startswith(message)
    assert err.count("\n") == 1  # the message alone, no usage text
