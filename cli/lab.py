"""`flowscope lab`: a set of pods (network namespaces on a bridge) to watch, on this machine.

    flowscope lab create [-f lab.yaml]     build the lab (default: four pods in two namespaces
                                           and one world host)
    flowscope lab list [--name NAME]       the pods, addresses, interfaces and labels
    flowscope lab destroy [--name NAME]    remove every trace of the lab
    flowscope lab exec NAMESPACE/POD -- CMD ...   run a command inside a pod

The lab never reaches outside the machine: pods have on-link routes to lab addresses only.
The file format is described in flowscope.collector.labconfig and the README.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from flowscope.collector.labconfig import (
    LAB_STATE_DIR,
    LabConfig,
    default_lab,
    load_lab_file,
    read_state,
    state_files,
)
from flowscope.collector.labnet import create_lab, destroy_lab, exec_argv
from flowscope.common.errors import FlowscopeError, InputError

EXAMPLES = """examples:
  flowscope lab create                       # the default lab
  flowscope lab create -f lab.yaml           # a lab described in a file
  flowscope lab exec shop/frontend -- ping -c1 10.199.1.12
  flowscope lab destroy
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `lab` command and its subcommands to the CLI."""
    lab = subparsers.add_parser(
        "lab",
        help="create, list, destroy and use a lab of pods",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    lab.add_argument(
        "--state-dir",
        type=Path,
        default=LAB_STATE_DIR,
        help=f"where lab state files live (default {LAB_STATE_DIR})",
    )
    sub = lab.add_subparsers(dest="lab_command", required=True)

    create = sub.add_parser("create", help="build a lab")
    create.add_argument("-f", "--file", type=Path, help="lab file (YAML); default: built-in lab")
    create.set_defaults(func=_create)

    listing = sub.add_parser("list", help="list the pods of the labs on this machine")
    listing.add_argument("--name", help="only this lab")
    listing.set_defaults(func=_list)

    destroy = sub.add_parser("destroy", help="remove a lab completely")
    destroy.add_argument("--name", default="default", help="lab name (default: default)")
    destroy.set_defaults(func=_destroy)

    execute = sub.add_parser("exec", help="run a command inside a pod")
    execute.add_argument("--name", help="lab name (default: the lab that has the pod)")
    execute.add_argument("pod", metavar="NAMESPACE/POD")
    execute.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD ...")
    execute.set_defaults(func=_exec)


def _create(args: argparse.Namespace) -> int:
    config = load_lab_file(args.file) if args.file else default_lab()
    path = create_lab(config, args.state_dir)
    print(f"lab {config.name!r} created ({len(config.pods)} pods); state in {path}")
    _print_pods(config)
    return 0


def _list(args: argparse.Namespace) -> int:
    configs = _labs(args.state_dir, args.name)
    if not configs:
        print("no lab on this machine" if not args.name else f"no lab named {args.name!r}")
    for config in configs:
        _print_pods(config)
    return 0


def _destroy(args: argparse.Namespace) -> int:
    removed = destroy_lab(args.name, args.state_dir)
    print(f"lab {args.name!r}: removed {len(removed)} item(s)")
    for item in removed:
        print(f"  {item}")
    return 0


def _exec(args: argparse.Namespace) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    namespace, _, name = args.pod.partition("/")
    for config in _labs(args.state_dir, args.name):
        if any(p.namespace == namespace and p.name == name for p in config.pods):
            return subprocess.run(exec_argv(config, args.pod, command), check=False).returncode
    raise InputError(f"no lab has a pod {args.pod!r} (expected NAMESPACE/POD; see `lab list`)")


def _labs(state_dir: Path, name: str | None) -> list[LabConfig]:
    configs = [read_state(path) for path in state_files(state_dir)]
    return [c for c in configs if name is None or c.name == name]


def _print_pods(config: LabConfig) -> None:
    print(f"{'LAB':<8} {'POD':<24} {'IPV4':<15} {'IPV6':<29} {'INTERFACE':<13} LABELS")
    for pod in config.pods:
        labels = ",".join(f"{k}={v}" for k, v in sorted(pod.labels.items()))
        print(
            f"{config.name:<8} {pod.namespace + '/' + pod.name:<24} {pod.ipv4:<15} "
            f"{pod.ipv6:<29} {config.host_ifname(pod):<13} {labels}"
        )


def main(argv: list[str] | None = None) -> int:
    """Run the lab command alone (the flowscope CLI wires `register` into its own parser)."""
    parser = argparse.ArgumentParser(prog="flowscope")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except FlowscopeError as exc:
        print(f"flowscope lab: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
