// The service map: the API's nodes and edges drawn with cytoscape and laid out
// by its fcose extension. Nodes sit in their namespace's box; world, host and
// other reserved identities stand alone. A large map starts with namespaces
// collapsed (one node each, edges summed between them) so the first render stays
// fast; clicking a collapsed namespace opens it, clicking an open one's box closes
// it. Positions are kept between renders, so a refresh moves nothing that is
// already placed. Labels are drawn on the canvas as text.
"use strict";

(function () {
  const COLLAPSE_AT = 150;       // more nodes than this: namespaces start collapsed
  const EDGE_LABELS_UP_TO = 300; // more edges than this: no edge labels
  const SAVED_POSITIONS = "flowscope.positions"; // localStorage: the last layout, by node
  const SAVED_AT_MOST = 5000;
  const COLORS = { forwarded: "#8a94a0", dropped: "#c50000", mixed: "#e0592a", audit: "#d08a00" };

  cytoscape.use(cytoscapeFcose);

  const STYLE = [
    { selector: "node", style: {
      "label": "data(label)", "font-size": 11, "text-valign": "bottom", "text-margin-y": 4,
      "width": 26, "height": 26, "background-color": "#3b6ea8", "color": "#1d2329",
    } },
    { selector: "node.world", style: { "background-color": "#6b4fa3", "shape": "round-rectangle" } },
    { selector: "node.host", style: { "background-color": "#2f7d32", "shape": "round-rectangle" } },
    { selector: "node.identity", style: { "background-color": "#7a8590", "shape": "round-rectangle" } },
    { selector: "node.collapsed", style: {
      "shape": "round-rectangle", "width": 44, "height": 30, "background-color": "#c9d6e6",
      "border-width": 1, "border-color": "#7f97b3",
    } },
    { selector: ":parent", style: {
      "background-color": "#eef2f7", "background-opacity": 0.7, "border-color": "#b8c4d1",
      "border-width": 1, "label": "data(label)", "text-valign": "top", "text-halign": "center",
      "font-weight": "bold", "color": "#4a5866", "padding": 14,
    } },
    { selector: "edge", style: {
      "curve-style": "bezier", "target-arrow-shape": "triangle", "arrow-scale": 0.8,
      "width": "data(width)", "line-color": "data(color)", "target-arrow-color": "data(color)",
      "label": "data(label)", "font-size": 9, "color": "#4a5866",
      "text-rotation": "autorotate", "text-background-color": "#fafbfc", "text-background-opacity": 1,
    } },
    { selector: "edge.mixed", style: { "line-style": "dashed" } },
    { selector: "edge.audit", style: { "line-style": "dotted" } },
    { selector: ":selected", style: { "overlay-color": "#0b5cad", "overlay-opacity": 0.2 } },
  ];

  // A merged edge's end at namespace level: "ns:web" is "web"; "identity:2" stays.
  function bare(name) {
    return name.startsWith("ns:") ? name.slice(3) : name;
  }

  function mergedVerdict(classes) {
    if (classes.size === 1) return classes.values().next().value;
    if (classes.has("dropped") || classes.has("mixed")) return "mixed";
    return "audit";
  }

  // The layout survives a reload: a map seen before opens at once where it was.
  function loadPositions() {
    const saved = JSON.parse(localStorage.getItem(SAVED_POSITIONS) || "[]");
    return new Map(saved.map(([id, x, y]) => [id, { x, y }]));
  }

  function savePositions(positions) {
    const newest = [...positions].slice(-SAVED_AT_MOST).map(([id, p]) => [id, p.x, p.y]);
    try {
      localStorage.setItem(SAVED_POSITIONS, JSON.stringify(newest));
    } catch (error) {
      console.warn(`the map's layout is not kept for the next visit: ${error.message}`);
    }
  }

  function createGraph(container, handlers) {
    const cy = cytoscape({ container, style: STYLE, minZoom: 0.05 });
    new ResizeObserver(() => cy.resize()).observe(container);
    const positions = loadPositions();
    let data = null;
    let collapsed = new Set();
    const timings = { elements_ms: 0, layout_ms: 0 };

    function visibleName(node) {
      return node.namespace && collapsed.has(node.namespace) ? "ns:" + node.namespace : node.id;
    }

    function elements() {
      const byId = new Map(data.nodes.map((node) => [node.id, node]));
      const out = [];
      for (const namespace of data.namespaces) {
        const members = data.nodes.filter((node) => node.namespace === namespace).length;
        const id = "ns:" + namespace;
        if (collapsed.has(namespace)) {
          out.push({ group: "nodes", classes: "collapsed",
            data: { id, label: `${namespace} (${members})`, namespace, collapsed: true } });
        } else {
          out.push({ group: "nodes", data: { id, label: namespace, namespace, box: true } });
        }
      }
      for (const node of data.nodes) {
        if (node.namespace && collapsed.has(node.namespace)) continue;
        const item = { group: "nodes", classes: node.kind,
          data: { id: node.id, label: node.label, endpoint: node.id } };
        if (node.namespace) item.data.parent = "ns:" + node.namespace;
        out.push(item);
      }
      const edges = new Map();
      for (const edge of data.edges) {
        const source = visibleName(byId.get(edge.source));
        const target = visibleName(byId.get(edge.destination));
        // Edges to or from a collapsed namespace merge over ports and protocols.
        const merged = source !== edge.source || target !== edge.destination;
        const key = merged ? `${source}>${target}` : edge.id;
        const seen = edges.get(key);
        if (seen) {
          seen.flows += edge.flows; seen.bytes += edge.bytes; seen.classes.add(edge.verdict);
        } else {
          edges.set(key, { key, source, target, merged, port: merged ? 0 : edge.port,
            protocol: merged ? "" : edge.protocol, flows: edge.flows, bytes: edge.bytes,
            classes: new Set([edge.verdict]), edge });
        }
      }
      const labels = edges.size <= EDGE_LABELS_UP_TO;
      for (const item of edges.values()) {
        const verdict = mergedVerdict(item.classes);
        out.push({ group: "edges", classes: verdict, data: {
          id: "e:" + item.key, source: item.source, target: item.target, verdict,
          color: COLORS[verdict], width: Math.min(8, 1.5 + Math.log10(1 + item.flows)) +
            (verdict === "dropped" ? 1.5 : 0),
          label: !labels ? "" : item.merged ? `${item.flows} flows`
            : `${item.port ? item.port + "/" : ""}${item.protocol} · ${item.flows}`,
          flows: item.flows, bytes: item.bytes, port: item.port, protocol: item.protocol,
          merged: item.merged,
          edgeId: item.merged
            ? `${bare(item.source)}>${bare(item.target)}:${item.port}/${item.protocol}`
            : item.edge.id,
        } });
      }
      return out;
    }

    function layout() {
      const ids = cy.nodes().filter((n) => !n.isParent()).map((n) => n.id());
      const known = ids.filter((id) => positions.has(id));
      const started = performance.now();
      if (known.length === ids.length && ids.length) {
        cy.nodes().forEach((n) => { if (!n.isParent()) n.position(positions.get(n.id())); });
      } else {
        cy.nodes().forEach((n) => { if (positions.has(n.id())) n.position(positions.get(n.id())); });
        // A few nodes (a collapsed map) can afford the finest layout and more room.
        const few = ids.length <= COLLAPSE_AT;
        cy.layout({
          name: "fcose", animate: false, randomize: known.length === 0,
          quality: few ? "proof" : "draft", nodeSeparation: 60, packComponents: false,
          idealEdgeLength: () => (few ? 160 : 90), nodeRepulsion: () => (few ? 60000 : 6000),
        }).run();
      }
      cy.nodes().forEach((n) => { if (!n.isParent()) positions.set(n.id(), { ...n.position() }); });
      timings.layout_ms = performance.now() - started;
      savePositions(positions);
    }

    function draw(fit) {
      const started = performance.now();
      cy.batch(() => { cy.elements().remove(); cy.add(elements()); });
      timings.elements_ms = performance.now() - started;
      layout();
      if (fit) cy.fit(undefined, 30);
    }

    cy.on("tap", "node", (event) => {
      const node = event.target;
      if (node.data("collapsed")) {
        collapsed.delete(node.data("namespace")); draw(false);
      } else if (node.data("box")) {
        collapsed.add(node.data("namespace")); draw(false);
      } else {
        handlers.onNode(node.data("endpoint"));
      }
    });
    cy.on("tap", "edge", (event) => {
      const edge = event.target;
      handlers.onEdge(edge.data("edgeId"), edge.data("merged"));
    });

    return {
      cy,
      timings,
      // Draws the API's map; keeps positions and which namespaces are collapsed.
      render(map) {
        const first = data === null;
        const before = data ? new Set(data.nodes.map((n) => n.id)) : new Set();
        data = map;
        if (first) {
          collapsed = map.nodes.length > COLLAPSE_AT ? new Set(map.namespaces) : new Set();
        }
        const changed = map.nodes.length !== before.size || map.nodes.some((n) => !before.has(n.id));
        draw(first || changed);
      },
      expandAll() { collapsed = new Set(); draw(true); },
      nodeIds() { return cy.nodes().filter((n) => !n.isParent()).map((n) => n.id()); },
      edgeData() { return cy.edges().map((e) => e.data()); },
    };
  }

  window.FlowscopeGraph = { createGraph };
})();
