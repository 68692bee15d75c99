"""`flowscope policy`: manage the network policies of this node's collector (root).

    flowscope policy apply -f FILE|DIR [-f ...]   add or replace policies (one revision)
    flowscope policy delete NAME [--kind KIND]    NAME is namespace/name (or name: default
                                                  namespace, or clusterwide)
    flowscope policy list                         the policies in force
    flowscope policy get NAME [--kind KIND]       one policy

They talk to the collector through its control socket, which only root may use. A file that
does not parse is refused with the parser's message, and the policies in force stay.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from flowscope.collector.control import DEFAULT_SOCKET, request
from flowscope.collector.policy.yamlnodes import POLICY_FILE_SUFFIXES
from flowscope.common.errors import InputError

EXAMPLES = """examples:
  flowscope policy apply -f allow-web.yaml
  flowscope policy apply -f policies/             # every *.yaml, *.yml, *.json in it
  flowscope policy list
  flowscope policy get default/allow-web
  flowscope policy delete default/allow-web
"""
KINDS = ("NetworkPolicy", "CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `policy` command and its subcommands to the CLI."""
    parser = subparsers.add_parser(
        "policy",
        help="apply, delete, list and get network policies (root)",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--socket",
        type=Path,
        default=DEFAULT_SOCKET,
        help=f"the collector's control socket (default {DEFAULT_SOCKET})",
    )
    sub = parser.add_subparsers(dest="policy_command", required=True)

    apply = sub.add_parser("apply", help="add or replace policies from files")
    apply.add_argument("-f", "--file", type=Path, action="append", required=True,
                       metavar="FILE|DIR", help="policy file or directory (repeatable)")
    apply.set_defaults(func=_apply)

    delete = sub.add_parser("delete", help="remove a policy")
    delete.add_argument("name", metavar="NAME", help="namespace/name")
    delete.add_argument("--kind", choices=KINDS, help="when two kinds share the name")
    delete.set_defaults(func=_delete)

    listing = sub.add_parser("list", help="the policies in force")
    listing.add_argument("-o", "--output", choices=("table", "json"), default="table")
    listing.set_defaults(func=_list)

    get = sub.add_parser("get", help="one policy")
    get.add_argument("name", metavar="NAME", help="namespace/name")
    get.add_argument("--kind", choices=KINDS, help="when two kinds share the name")
    get.add_argument("-o", "--output", choices=("text", "json"), default="text")
    get.set_defaults(func=_get)


def policy_files(paths: list[Path]) -> list[dict[str, str]]:
    """The files to send: each file given, and the policy files of each directory given."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir()
                           if p.suffix in POLICY_FILE_SUFFIXES and p.is_file())
            if not found:
                raise InputError(f"{path}: no policy files (*.yaml, *.yml, *.json) in this "
                                 "directory")
            files += found
        else:
            files.append(path)
    documents = []
    for file in files:
        try:
            documents.append({"name": str(file), "text": file.read_text()})
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read policy file {file}: {exc}") from exc
    return documents


def _apply(args: argparse.Namespace) -> int:
    answer = request(args.socket, {"op": "apply", "files": policy_files(args.file)})
    for name in answer["applied"]:
        print(f"{name} applied (revision {answer['revision']})")
    return 0


def _delete(args: argparse.Namespace) -> int:
    answer = request(args.socket, {"op": "delete", "name": args.name, "kind": args.kind})
    print(f"{args.name} deleted (revision {answer['revision']})")
    return 0


def _list(args: argparse.Namespace) -> int:
    answer = request(args.socket, {"op": "list"})
    policies: list[dict[str, Any]] = answer["policies"]
    if args.output == "json":
        print(json.dumps(policies, indent=2))
        return 0
    rows = [("KIND", "NAMESPACE", "NAME", "REVISION", "RULES", "MODE", "SOURCE")]
    rows += [(p["kind"], p["namespace"] or "-", p["name"], str(p["revision"]), str(p["rules"]),
              "audit" if p["audit"] else "enforce", p["source"]) for p in policies]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
              .rstrip())
    return 0


def _get(args: argparse.Namespace) -> int:
    policy: dict[str, Any] = request(args.socket, {"op": "get", "name": args.name,
                                                   "kind": args.kind})["policy"]
    if args.output == "json":
        print(json.dumps(policy, indent=2))
        return 0
    for key in ("kind", "namespace", "name", "revision", "rules", "audit", "source"):
        print(f"{key + ':':<11}{policy[key]}")
    return 0
