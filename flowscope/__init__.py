"""flowscope: network flow observability in the style of Cilium Hubble.

The product's parts are subpackages: proto (the wire contract), common (the
flow schema, filters and JSON lines shared by every part), collector, relay,
ui and cli.
"""

__version__ = "0.1.0"
