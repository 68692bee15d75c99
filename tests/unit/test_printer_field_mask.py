"""The printers' default field mask holds every field they print."""

from __future__ import annotations

import io

import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from test_printer_golden import flows_stream

from flowscope.cli.printers import DEFAULT_FIELD_MASK, PrinterOptions, make_printer
from flowscope.proto.observer import observer_pb2


def _print(options: PrinterOptions, responses: list[observer_pb2.GetFlowsResponse]) -> str:
    out, err = io.StringIO(), io.StringIO()
    printer = make_printer(options, out, err)
    for response in responses:
        printer.write_flows_response(response)
    printer.close()
    return out.getvalue() + err.getvalue()


@pytest.mark.parametrize("output", ["compact", "dict", "table"])
def test_masked_flows_print_like_whole_ones(output: str) -> None:
    mask = FieldMask(paths=DEFAULT_FIELD_MASK)
    whole = flows_stream()
    masked = []
    for response in whole:
        copy = observer_pb2.GetFlowsResponse()
        copy.CopyFrom(response)
        if copy.HasField("flow"):
            copy.ClearField("flow")
            copy.flow.SetInParent()
            mask.MergeMessage(response.flow, copy.flow)
        masked.append(copy)
    options = PrinterOptions(output=output, node_name=True, policy_names=True)
    assert _print(options, masked) == _print(options, whole)
