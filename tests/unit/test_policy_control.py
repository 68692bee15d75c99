"""Managing policies: the collector's control socket and `flowscope policy` on top of it.

The socket serves a real PolicyStore here (the collector serves its PolicyEnforcer, which
adds the kernel maps); the caller's uid check is relaxed, so no root is needed.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowscope.cli.main import main
from flowscope.collector.control import ControlServer, handle, request
from flowscope.collector.policy import CompilerConfig, PolicyStore
from flowscope.common.errors import FlowscopeError

WEB = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-web, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress: [{ports: [{protocol: TCP, port: 80}]}]
"""
DB = """\
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: db, namespace: data, annotations: {policy.flowscope.io/audit: "true"}}
spec:
  endpointSelector: {matchLabels: {app: db}}
  ingress: [{fromEntities: [cluster]}, {fromEntities: [host]}]
"""
BAD = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: broken, namespace: shop}
spec:
  podSelector: {}
  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/33}}]}]
"""


@pytest.fixture
def store() -> PolicyStore:
    return PolicyStore(CompilerConfig())


@pytest.fixture
def sock(tmp_path: Path, store: PolicyStore) -> Iterator[Path]:
    server = ControlServer(tmp_path / "run" / "collector.sock", store,
                           allowed_uid=lambda uid: True)
    server.start()
    yield server.path
    server.stop()


def flowscope(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_apply_list_get_delete(store: PolicyStore) -> None:
    files = [{"name": "web.yaml", "text": WEB}, {"name": "db.yaml", "text": DB}]
    assert handle({"op": "apply", "files": files}, store) == {
        "ok": True, "revision": 1,
        "applied": ["NetworkPolicy shop/allow-web", "CiliumNetworkPolicy data/db"]}
    assert handle({"op": "list"}, store) == {"ok": True, "revision": 1, "policies": [
        {"kind": "CiliumNetworkPolicy", "namespace": "data", "name": "db", "revision": 1,
         "rules": 2, "audit": True, "source": "db.yaml:1"},
        {"kind": "NetworkPolicy", "namespace": "shop", "name": "allow-web", "revision": 1,
         "rules": 1, "audit": False, "source": "web.yaml:1"}]}
    assert handle({"op": "get", "name": "shop/allow-web"}, store)["policy"]["rules"] == 1
    assert handle({"op": "delete", "name": "shop/allow-web", "kind": None}, store) == {
        "ok": True, "revision": 2}
    assert [p["name"] for p in handle({"op": "list"}, store)["policies"]] == ["db"]


@pytest.mark.parametrize(("request_", "error"), [
    ({"op": "apply", "files": [{"name": "bad.yaml", "text": BAD}]},
     "bad.yaml:6: spec.ingress[0].from[0].ipBlock.cidr: invalid CIDR '10.0.0.0/33'"),
    ({"op": "apply", "files": []}, "apply: expected a non-empty list of files"),
    ({"op": "apply", "files": [{"name": "x"}]}, "apply: each file is"),
    ({"op": "delete", "name": "shop/none"}, "no policy 'shop/none'"),
    ({"op": "get"}, "get: expected a name"),
    ({"op": "get", "name": "x", "kind": 3}, "kind must be a string"),
    ({"op": "reboot"}, "unknown request 'reboot'"),
    (["op"], "a request is a JSON object"),
])
def test_bad_requests_are_refused_with_their_reason(store: PolicyStore, request_: object,
                                                    error: str) -> None:
    handle({"op": "apply", "files": [{"name": "web.yaml", "text": WEB}]}, store)
    answer = handle(request_, store)
    assert answer["ok"] is False
    assert error in answer["error"]
    assert store.revision == 1  # nothing changed


def test_socket_is_private(sock: Path) -> None:
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o700


def test_callers_other_than_root_are_refused(tmp_path: Path, store: PolicyStore) -> None:
    server = ControlServer(tmp_path / "c.sock", store, allowed_uid=lambda uid: False)
    server.start()
    try:
        with pytest.raises(FlowscopeError, match="changing policy needs root"):
            request(server.path, {"op": "list"})
    finally:
        server.stop()
    assert not server.path.exists()


def test_a_second_server_on_a_live_socket_is_refused(sock: Path, store: PolicyStore) -> None:
    with pytest.raises(FlowscopeError, match="another collector is serving"):
        ControlServer(sock, store).start()


def test_cli_round_trip(sock: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "web.yaml").write_text(WEB)
    (folder / "db.yml").write_text(DB)
    (folder / "notes.txt").write_text("not a policy")
    base = ("policy", "--socket", str(sock))
    assert flowscope(capsys, *base, "apply", "-f", str(folder)) == (
        0, "CiliumNetworkPolicy data/db applied (revision 1)\n"
           "NetworkPolicy shop/allow-web applied (revision 1)\n", "")
    code, out, _ = flowscope(capsys, *base, "list")
    assert code == 0
    assert out.splitlines() == [
        "KIND                 NAMESPACE  NAME       REVISION  RULES  MODE     SOURCE",
        f"CiliumNetworkPolicy  data       db         1         2      audit    {folder}/db.yml:1",
        "NetworkPolicy        shop       allow-web  1         1      enforce  "
        f"{folder}/web.yaml:1",
    ]
    code, out, _ = flowscope(capsys, *base, "get", "shop/allow-web", "-o", "json")
    assert json.loads(out)["source"] == f"{folder}/web.yaml:1"
    assert flowscope(capsys, *base, "delete", "data/db") == (
        0, "data/db deleted (revision 2)\n", "")
    code, out, _ = flowscope(capsys, *base, "get", "shop/allow-web")
    assert out.splitlines()[:3] == ["kind:      NetworkPolicy", "namespace: shop",
                                    "name:      allow-web"]


def test_cli_bad_file_keeps_the_policies(sock: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = tmp_path / "web.yaml", tmp_path / "bad.yaml"
    good.write_text(WEB)
    bad.write_text(BAD)
    base = ("policy", "--socket", str(sock))
    assert flowscope(capsys, *base, "apply", "-f", str(good))[0] == 0
    code, out, err = flowscope(capsys, *base, "apply", "-f", str(good), "-f", str(bad))
    assert (code, out) == (1, "")
    assert err == (f"{bad}:6: spec.ingress[0].from[0].ipBlock.cidr: invalid CIDR "
                   "'10.0.0.0/33': '10.0.0.0/33' does not appear to be an IPv4 or IPv6 "
                   "network\n")
    code, out, _ = flowscope(capsys, *base, "list", "-o", "json")
    assert [(p["name"], p["revision"]) for p in json.loads(out)] == [("allow-web", 1)]


@pytest.mark.parametrize(("argv", "error"), [
    (("apply", "-f", "/nonexistent/p.yaml"), "cannot read policy file /nonexistent/p.yaml"),
    (("list",), "cannot reach the collector at"),
])
def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...],
                    error: str) -> None:
    code, out, err = flowscope(capsys, "policy", "--socket", str(tmp_path / "none.sock"),
                               *argv)
    assert (code, out) == (1, "")
    assert err.startswith(error)
