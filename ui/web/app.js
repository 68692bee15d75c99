// flowscope's page: keeps the view (filters, namespaces, range, selection) in the
// URL, asks the JSON API for the map, the flows and the policy view, follows new
// flows by server-sent events in live mode, and polls the status bar. Every name,
// label and DNS name goes into the page as text (textContent), never as HTML.
"use strict";

(function () {
  const REFRESH_MS = 5000;
  const TABLE_ROWS = 1000;
  const HISTORY_FLOWS = 500;
  const $ = (id) => document.getElementById(id);

  const state = {
    q: "", ns: [], range: "1h", since: "", until: "", group: "workload",
    live: false, view: "map", node: "", edge: "", edgeGroup: "",
  };
  let graph = null;
  let liveSource = null;
  let refreshTimer = null;
  let rows = [];

  // --- the URL --------------------------------------------------------------
  function readUrl() {
    const p = new URLSearchParams(location.search);
    state.q = p.get("q") || "";
    state.ns = (p.get("ns") || "").split(",").filter(Boolean);
    state.range = p.get("range") || "1h";
    state.since = p.get("since") || "";
    state.until = p.get("until") || "";
    state.group = p.get("group") || "workload";
    state.live = p.get("live") === "1";
    state.view = p.get("view") || "map";
    state.node = p.get("node") || "";
    state.edge = p.get("edge") || "";
    state.edgeGroup = p.get("edge_group") || "";
  }

  function writeUrl() {
    const p = new URLSearchParams();
    const put = (key, value) => { if (value) p.set(key, value); };
    put("q", state.q); put("ns", state.ns.join(",")); put("range", state.range);
    if (state.range === "custom") { put("since", state.since); put("until", state.until); }
    put("group", state.group); put("live", state.live ? "1" : ""); put("view", state.view);
    put("node", state.node); put("edge", state.edge); put("edge_group", state.edgeGroup);
    history.replaceState(null, "", "?" + p.toString());
  }

  // The API's view parameters; `selected` adds the clicked node or edge.
  function viewParams(selected) {
    const p = new URLSearchParams();
    p.set("q", state.q); p.set("ns", state.ns.join(",")); p.set("range", state.range);
    p.set("group", state.group);
    if (state.range === "custom") { p.set("since", state.since); p.set("until", state.until); }
    if (selected && state.node) p.set("node", state.node);
    if (selected && state.edge) {
      p.set("edge", state.edge);
      if (state.edgeGroup) p.set("group", state.edgeGroup);
    }
    return p;
  }

  // --- the API --------------------------------------------------------------
  class ApiError extends Error {
    constructor(body, status) { super(body.error || `HTTP ${status}`); this.body = body; }
  }

  async function api(path, params) {
    const response = await fetch(`${path}?${params.toString()}`);
    const body = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
    if (!response.ok) throw new ApiError(body, response.status);
    return body;
  }

  function showError(error) {
    const box = $("filter-error");
    const input = $("filter");
    box.textContent = error ? error.message : "";
    box.hidden = !error;
    input.classList.toggle("invalid", Boolean(error && error.body && "term" in error.body));
    if (error && error.body && "offset" in error.body && document.activeElement === input) {
      input.setSelectionRange(error.body.offset, error.body.offset + error.body.term.length);
    }
  }

  // --- the map and the policy view ----------------------------------------------
  // How long the last map took: the API call, then drawing and laying it out.
  const timings = { map_fetch_ms: 0, map_render_ms: 0 };

  async function loadMap() {
    const asked = performance.now();
    const map = await api("/api/map", viewParams(false));
    const received = performance.now();
    $("map-empty").hidden = map.edges.length > 0;
    $("map-info").textContent =
      `${map.nodes.length} nodes, ${map.edges.length} edges · ${formatRange(map.since_ns, map.until_ns)}`;
    graph.render(map);
    timings.map_fetch_ms = received - asked;
    timings.map_render_ms = performance.now() - received;
  }

  function cell(row, text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    row.appendChild(td);
  }

  function fillTable(table, items, cells) {
    const body = table.tBodies[0];
    body.replaceChildren();
    for (const item of items) {
      const row = document.createElement("tr");
      for (const [text, className] of cells(item)) cell(row, String(text), className);
      body.appendChild(row);
    }
  }

  async function loadPolicy() {
    const answer = await api("/api/policy", viewParams(false));
    fillTable($("policy-table"), answer.policies, (r) =>
      [[r.verdict.toLowerCase(), "verdict-" + r.verdict.toLowerCase()], [r.policy || "(none named)"], [r.flows]]);
    fillTable($("denied-table"), answer.endpoints, (e) =>
      [[e.source], [e.destination], [e.port ? `${e.port}/${e.protocol}` : e.protocol],
       [e.verdict, "verdict-" + e.verdict], [e.flows]]);
  }

  // --- flows ----------------------------------------------------------------
  function setColumns(columns) {
    const head = $("flows-table").tHead.rows[0];
    if (head.cells.length) return;
    for (const [, heading] of columns) {
      const th = document.createElement("th");
      th.textContent = heading;
      head.appendChild(th);
    }
    $("flows-table").dataset.columns = JSON.stringify(columns.map(([key]) => key));
  }

  function flowRow(entry) {
    const row = document.createElement("tr");
    for (const key of JSON.parse($("flows-table").dataset.columns)) {
      const className = key === "verdict" ? "verdict-" + entry.row.verdict : "";
      cell(row, entry.row[key], className);
    }
    row.addEventListener("click", () => {
      for (const chosen of document.querySelectorAll("#flows-table tr.chosen")) {
        chosen.classList.remove("chosen");
      }
      row.classList.add("chosen");
      showFlow(entry.flow);
    });
    return row;
  }

  function showRows() {
    const body = $("flows-table").tBodies[0];
    body.replaceChildren(...rows.map(flowRow));
    $("flows-count").textContent = `${rows.length} flows`;
  }

  async function loadFlows() {
    const params = viewParams(true);
    params.set("number", String(HISTORY_FLOWS));
    const answer = await api("/api/flows", params);
    setColumns(answer.columns);
    rows = answer.flows.reverse(); // newest first
    $("notices").textContent = answer.notices.join(" · ");
    showRows();
    const exportParams = viewParams(true);
    exportParams.set("format", "jsonl");
    $("export-jsonl").href = "/api/flows/export?" + exportParams.toString();
    exportParams.set("format", "csv");
    $("export-csv").href = "/api/flows/export?" + exportParams.toString();
  }

  function follow() {
    if (liveSource) { liveSource.close(); liveSource = null; }
    if (!state.live) return;
    liveSource = new EventSource("/api/flows/live?" + viewParams(true).toString());
    liveSource.addEventListener("flow", (event) => {
      const entry = JSON.parse(event.data);
      rows.unshift(entry);
      if (rows.length > TABLE_ROWS) rows.length = TABLE_ROWS;
      const body = $("flows-table").tBodies[0];
      body.insertBefore(flowRow(entry), body.firstChild);
      while (body.rows.length > TABLE_ROWS) body.deleteRow(-1);
      $("flows-count").textContent = `${rows.length} flows · live`;
    });
    liveSource.addEventListener("notice", (event) => {
      $("notices").textContent = JSON.parse(event.data);
    });
  }

  // Every field of one flow, nested objects as dotted names.
  function showFlow(flow) {
    const list = $("flow-fields");
    list.replaceChildren();
    const add = (name, value) => {
      if (value !== null && typeof value === "object" && !Array.isArray(value)) {
        for (const [key, inner] of Object.entries(value)) add(name ? `${name}.${key}` : key, inner);
        return;
      }
      const dt = document.createElement("dt");
      dt.textContent = name;
      const dd = document.createElement("dd");
      dd.textContent = Array.isArray(value)
        ? value.map((v) => (typeof v === "object" ? JSON.stringify(v) : String(v))).join(", ")
        : String(value);
      list.append(dt, dd);
    };
    add("", flow);
    $("flow-panel").hidden = false;
  }

  function showSelection() {
    const text = state.node ? `Flows of ${state.node}` : state.edge ? `Flows of ${state.edge}` : "";
    $("selection").textContent = text;
    $("clear-selection").hidden = !text;
  }

  // --- status bar -------------------------------------------------------------
  function formatTime(ns) {
    return new Date(Number(ns) / 1e6).toISOString().replace(/\.\d+Z$/, "Z");
  }

  function formatRange(since, until) {
    return `${formatTime(since)} – ${formatTime(until)}`;
  }

  async function loadStatus() {
    try {
      const s = await api("/api/status", new URLSearchParams());
      const total = s.nodes_connected + s.nodes_unavailable;
      $("status-nodes").textContent = `nodes: ${s.nodes_connected}/${total} connected`;
      $("status-rate").textContent = `flows/s: ${s.flows_rate.toFixed(1)}`;
      $("status-lost").textContent = `lost events: ${s.lost_events}`;
      $("status-store").textContent = s.store_oldest_ns === null
        ? "store: empty"
        : `store: ${s.stored_flows} flows, ${formatRange(s.store_oldest_ns, s.store_newest_ns)}`;
      $("status-error").textContent = "";
    } catch (error) {
      $("status-error").textContent = error.message;
    }
  }

  // --- putting it together ----------------------------------------------------------
  async function refresh() {
    writeUrl();
    showSelection();
    $("map-view").hidden = state.view !== "map";
    $("policy-view").hidden = state.view !== "policy";
    $("map-legend").hidden = state.view !== "map";
    $("map-info").hidden = state.view !== "map";
    for (const tab of document.querySelectorAll("#tabs button")) {
      tab.classList.toggle("active", tab.dataset.view === state.view);
    }
    try {
      await Promise.all([state.view === "map" ? loadMap() : loadPolicy(), loadFlows()]);
      showError(null);
      document.body.dataset.loaded = String(Date.now());
    } catch (error) {
      showError(error);
    }
    follow();
  }

  function scheduleRefresh() {
    clearInterval(refreshTimer);
    if (!state.live) return;
    refreshTimer = setInterval(() => {
      const loader = state.view === "map" ? loadMap() : loadPolicy();
      loader.catch(showError);
    }, REFRESH_MS);
  }

  function syncControls() {
    $("filter").value = state.q;
    $("group").value = state.group;
    $("range").value = state.range;
    $("since").value = state.since;
    $("until").value = state.until;
    $("live").checked = state.live;
    $("custom-range").hidden = state.range !== "custom";
  }

  async function loadNamespaces() {
    const select = $("namespaces");
    try {
      const answer = await api("/api/namespaces", new URLSearchParams());
      const names = new Set([...answer.namespaces.map((n) => n.namespace), ...state.ns]);
      select.replaceChildren(...[...names].sort().map((name) => {
        const option = document.createElement("option");
        option.value = name;
        option.textContent = name;
        option.selected = state.ns.includes(name);
        return option;
      }));
      select.size = Math.min(6, Math.max(1, names.size));
    } catch (error) {
      $("status-error").textContent = error.message;
    }
  }

  function bind() {
    $("filter-form").addEventListener("submit", (event) => {
      event.preventDefault();
      state.q = $("filter").value.trim();
      refresh();
    });
    $("namespaces").addEventListener("change", () => {
      state.ns = [...$("namespaces").selectedOptions].map((o) => o.value);
      refresh();
    });
    $("group").addEventListener("change", () => {
      state.group = $("group").value; state.node = ""; state.edge = ""; state.edgeGroup = "";
      refresh();
    });
    $("range").addEventListener("change", () => {
      state.range = $("range").value;
      $("custom-range").hidden = state.range !== "custom";
      if (state.range !== "custom" || state.since) refresh();
    });
    for (const id of ["since", "until"]) {
      $(id).addEventListener("change", () => {
        state.since = $("since").value.trim(); state.until = $("until").value.trim();
        refresh();
      });
    }
    $("live").addEventListener("change", () => {
      state.live = $("live").checked;
      scheduleRefresh();
      refresh();
    });
    for (const tab of document.querySelectorAll("#tabs button")) {
      tab.addEventListener("click", () => { state.view = tab.dataset.view; refresh(); });
    }
    $("clear-selection").addEventListener("click", () => {
      state.node = ""; state.edge = ""; state.edgeGroup = "";
      refresh();
    });
    $("close-panel").addEventListener("click", () => { $("flow-panel").hidden = true; });
  }

  function start() {
    readUrl();
    syncControls();
    graph = window.FlowscopeGraph.createGraph($("map"), {
      onNode(endpoint) {
        state.node = endpoint; state.edge = ""; state.edgeGroup = "";
        refreshFlows();
      },
      onEdge(edgeId, merged) {
        state.edge = edgeId; state.node = ""; state.edgeGroup = merged ? "namespace" : "";
        refreshFlows();
      },
    });
    window.flowscope = { graph, state, refresh, timings };
    bind();
    loadNamespaces();
    loadStatus();
    setInterval(loadStatus, REFRESH_MS);
    scheduleRefresh();
    refresh();
  }

  async function refreshFlows() {
    writeUrl();
    showSelection();
    try {
      await loadFlows();
      showError(null);
      document.body.dataset.flowsLoaded = String(Date.now());
    } catch (error) {
      showError(error);
    }
    follow();
  }

  document.addEventListener("DOMContentLoaded", start);
})();
