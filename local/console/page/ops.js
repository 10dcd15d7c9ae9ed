// The operations console: polls the local stack's /_ops routes and draws them.
// Charts are plotly.js (served by the local stack from the plotly package, never from the internet).
"use strict";

const $ = (selector, root = document) => root.querySelector(selector);
const STATE_CLASS = { OK: "ok", ALARM: "alarm", INSUFFICIENT_DATA: "insufficient", UNKNOWN: "unknown" };
const ROW_PX = 34; // one unit of a CloudWatch widget's height
let timer = null;

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child ?? "")));
  }
  return node;
}

function time(ms) {
  return new Date(ms).toISOString().replace("T", " ").slice(0, 23);
}

async function getJson(url, options) {
  const response = await fetch(url, { cache: "no-store", ...options });
  const body = await response.json();
  if (!response.ok && response.status !== 404) throw new Error(body.message || response.statusText);
  return body;
}

// --- the dashboard ------------------------------------------------------------------------------

async function drawDashboard() {
  const minutes = $("#range").value;
  const data = await getJson(`/_ops/dashboard?minutes=${minutes}`);
  const grid = $("#grid");
  data.widgets.forEach((widget, index) => {
    let box = grid.children[index];
    if (!box) {
      box = element("article", { class: `widget ${widget.type}` },
        element("h3", {}, widget.title || ""), element("div", { class: "body" }));
      box.style.gridColumn = `${widget.x + 1} / span ${widget.width}`;
      box.style.gridRow = `${widget.y + 1} / span ${widget.height}`;
      grid.append(box);
    }
    box.dataset.type = widget.type;
    box.dataset.title = widget.title || "";
    const body = $(".body", box);
    if (widget.error) {
      box.dataset.error = widget.error;
      body.replaceChildren(element("p", { class: "error" }, widget.error));
      return;
    }
    delete box.dataset.error;
    WIDGETS[widget.type](widget, body, box, data);
  });
  const errors = data.widgets.filter((widget) => widget.error).length;
  document.body.dataset.widgetErrors = String(errors);
}

const WIDGETS = {
  metric(widget, body, box, data) {
    box.dataset.points = String(widget.points);
    if (widget.view === "singleValue") {
      body.replaceChildren(...widget.series.map((series) => {
        const last = [...series.y].reverse().find((value) => value !== null);
        return element("div", { class: "single" }, element("strong", {}, last ?? "–"), element("span", {}, series.label));
      }));
      return;
    }
    const traces = widget.series.map((series) => ({
      x: series.x,
      y: series.y,
      name: series.label,
      type: "scatter",
      mode: "lines+markers",
      marker: { size: 4 },
      line: { width: 1.5, color: series.color || undefined },
      yaxis: series.yAxis === "right" ? "y2" : "y",
      stackgroup: widget.stacked ? series.yAxis : undefined,
      connectgaps: false,
      hovertemplate: "%{y:.4~g}<extra>" + series.label + "</extra>",
    }));
    const right = widget.series.some((series) => series.yAxis === "right");
    const left = widget.yAxis.left || {};
    const layout = {
      height: widget.height * ROW_PX - 40,
      margin: { l: 48, r: right ? 48 : 12, t: 6, b: 28 },
      xaxis: { type: "date", range: [data.start, data.end], tickformat: "%H:%M", tickfont: { size: 10 } },
      yaxis: { rangemode: "tozero", tickfont: { size: 10 } },
      legend: { orientation: "h", y: -0.12, font: { size: 10 } },
      shapes: widget.annotations.map((line) => ({
        type: "line", xref: "paper", x0: 0, x1: 1, y0: line.value, y1: line.value,
        line: { color: line.color || "#d13212", dash: "dot", width: 1 },
      })),
      annotations: widget.annotations.map((line) => ({
        xref: "paper", x: 1, y: line.value, text: line.label || "", showarrow: false,
        xanchor: "right", yanchor: "bottom", font: { size: 9, color: "#d13212" },
      })),
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
    };
    // plotly reads every axis key it is given: a second axis only when a series uses it
    if (right) layout.yaxis2 = { overlaying: "y", side: "right", rangemode: "tozero", tickfont: { size: 10 } };
    if (left.min !== undefined && left.max !== undefined) layout.yaxis.range = [left.min, left.max];
    let chart = $(".chart", body);
    if (!chart) {
      chart = element("div", { class: "chart" });
      body.replaceChildren(chart);
    }
    Plotly.react(chart, traces, layout, { displayModeBar: false, responsive: true });
  },

  alarm(widget, body, box) {
    box.dataset.alarms = String(widget.alarms.length);
    body.replaceChildren(element("ul", { class: "alarm-list" }, widget.alarms.map((alarm) =>
      element("li", { class: `state ${STATE_CLASS[alarm.state] || "unknown"}`, "data-alarm": alarm.name, "data-state": alarm.state, title: alarm.reason },
        element("span", { class: "badge" }, alarm.state.replace("_", " ")), " ",
        element("a", { href: "#alarms" }, alarm.name)))));
  },

  text(widget, body) {
    body.innerHTML = widget.html; // rendered server-side from CommonMark with raw HTML disabled
    for (const link of body.querySelectorAll("a")) link.target = "_blank";
  },

  log(widget, body, box) {
    box.dataset.rows = String(widget.rows.length);
    body.replaceChildren(element("table", { class: "compact" },
      element("thead", {}, element("tr", {}, widget.columns.map((column) => element("th", {}, column)))),
      element("tbody", {}, widget.rows.length
        ? widget.rows.map((row) => element("tr", {}, row.map((cell) => element("td", {}, cell))))
        : element("tr", {}, element("td", { colspan: widget.columns.length, class: "muted" }, "No matching log events in this range")))));
  },
};

// --- alarms -------------------------------------------------------------------------------------

function runbookLink(description) {
  const found = /Runbook:\s*(\S+\/([a-z0-9-]+\.md))/.exec(description || "");
  return found ? element("a", { href: `/_ops/runbooks/${found[2]}`, target: "_blank" }, `runbook: ${found[2]}`) : "";
}

async function drawAlarms() {
  const data = await getJson("/_ops/alarms");
  const counts = {};
  for (const alarm of data.alarms) counts[alarm.state] = (counts[alarm.state] || 0) + 1;
  $("#alarm-counts").textContent = Object.entries(counts).map(([state, n]) => `${n} ${state}`).join(" · ");
  const order = { ALARM: 0, INSUFFICIENT_DATA: 1, OK: 2 };
  const alarms = [...data.alarms].sort((a, b) => (order[a.state] - order[b.state]) || a.name.localeCompare(b.name));
  $("#alarm-table tbody").replaceChildren(...alarms.map((alarm) => element("tr", { "data-alarm": alarm.name },
    element("td", {}, element("span", { class: `badge state ${STATE_CLASS[alarm.state]}` }, alarm.state)),
    element("td", {}, element("strong", {}, alarm.name), alarm.composite ? " (composite)" : "", element("br"), runbookLink(alarm.description)),
    element("td", { class: "reason" }, alarm.reason),
    element("td", { class: "history" }, [...alarm.history].reverse().slice(0, 5).map((change) =>
      element("div", {}, `${change.timestamp.slice(11, 19)} ${change.oldState} → ${change.newState}`))))));
}

// --- traces -------------------------------------------------------------------------------------

async function drawTraceList() {
  const data = await getJson("/_ops/traces");
  $("#trace-table tbody").replaceChildren(...data.traces.map((trace) =>
    element("tr", { class: `status-${trace.status}`, onclick: () => showTrace(trace.traceId), "data-trace": trace.traceId },
      element("td", {}, time(trace.start).slice(11)), element("td", {}, trace.root), element("td", {}, trace.service),
      element("td", { class: "number" }, trace.durationMs.toFixed(1)), element("td", { class: "number" }, trace.spans))));
}

async function showTrace(traceId) {
  const data = await getJson(`/_ops/traces?traceId=${encodeURIComponent(traceId)}`);
  const total = Math.max(data.durationMs || 0, 0.001);
  const pane = $("#waterfall");
  if (!data.spans.length) {
    pane.replaceChildren(element("p", { class: "muted" }, `No spans kept for ${traceId}`));
    return;
  }
  let current = null;
  const rows = [];
  for (const span of data.spans) {
    if (span.traceId !== current) {
      current = span.traceId;
      const label = span.traceId === traceId ? "trace" : "linked trace";
      rows.push(element("div", { class: "trace-head" }, `${label} ${span.traceId}`,
        span.traceId === traceId ? "" : element("button", { type: "button", onclick: () => showTrace(span.traceId) }, "open")));
    }
    const bar = element("div", { class: `bar ${span.status}` });
    bar.style.left = `${(span.offsetMs / total) * 100}%`;
    bar.style.width = `${Math.max((span.durationMs / total) * 100, 0.3)}%`;
    rows.push(element("div", { class: "span-row", "data-span": span.id, title: span.detail },
      element("div", { class: "span-name" }, element("span", { style: `padding-left:${span.depth * 14}px` }, span.name),
        span.service ? element("em", {}, ` ${span.service}`) : "", span.detail ? element("small", {}, ` ${span.detail}`) : ""),
      element("div", { class: "span-track" }, bar),
      element("div", { class: "span-ms number" }, span.durationMs.toFixed(1))));
  }
  pane.replaceChildren(element("h3", {}, `${traceId} · ${total.toFixed(1)} ms`),
    element("p", {}, element("a", { href: "#logs", onclick: () => filterLogs({ traceId }) }, "logs of this trace")), ...rows);
  pane.dataset.trace = traceId;
}

// --- logs ---------------------------------------------------------------------------------------

function filterLogs(values) {
  const form = $("#log-filter");
  form.reset();
  for (const [name, value] of Object.entries(values)) form.elements[name].value = value;
  drawLogs();
}

async function drawLogs() {
  const parameters = new URLSearchParams();
  for (const [name, value] of new FormData($("#log-filter"))) if (value) parameters.set(name, value);
  const data = await getJson(`/_ops/logs?${parameters}`);
  $("#log-table tbody").replaceChildren(...data.lines.map((line) => element("tr", { class: `level-${(line.level || "").toLowerCase()}` },
    element("td", {}, time(line.timestamp)),
    element("td", {}, line.group.split("/").pop()),
    element("td", {}, line.level),
    element("td", {}, line.correlationId ? element("a", { href: "#logs", onclick: () => filterLogs({ correlationId: line.correlationId }) }, line.correlationId) : ""),
    element("td", {}, line.bookingId ? element("a", { href: "#logs", onclick: () => filterLogs({ bookingId: line.bookingId }) }, line.bookingId) : ""),
    element("td", { class: "message", title: line.raw }, line.message,
      line.traceId ? element("a", { href: "#traces", class: "trace-link", onclick: () => showTrace(line.traceId) }, " trace") : ""))));
}

// --- faults -------------------------------------------------------------------------------------

async function drawFaults(answer) {
  const data = answer || await getJson("/_local/faults");
  const injected = Object.entries(data.injected || {}).map(([key, n]) => `${key}: ${n}`).join(" · ") || "none yet";
  const active = Object.entries(data.plan).filter(([, value]) => value).map(([key, value]) => `${key}=${value}`).join(", ");
  $("#fault-status").textContent = `Active: ${active || "no faults"}. Injected so far: ${injected}`;
  document.body.dataset.faults = active || "none";
}

async function setFaults(plan) {
  const answer = await getJson("/_local/faults", { method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify(plan) });
  if (answer.plan === undefined) throw new Error(answer.detail || JSON.stringify(answer));
  await drawFaults(answer);
}

// --- refresh ------------------------------------------------------------------------------------

async function refresh() {
  document.body.dataset.refreshing = "1";
  const results = await Promise.allSettled([drawDashboard(), drawAlarms(), drawTraceList(), drawLogs(), drawFaults()]);
  const failed = results.filter((result) => result.status === "rejected").map((result) => result.reason.message);
  for (const result of results) if (result.status === "rejected") console.error(result.reason.stack);
  $("#updated").textContent = failed.length ? `refresh failed: ${failed.join("; ")}` : `updated ${time(Date.now()).slice(11, 19)} UTC`;
  document.body.dataset.loaded = String(Number(document.body.dataset.loaded || 0) + 1);
  delete document.body.dataset.refreshing;
}

// ?refresh=N sets the period in seconds (at least 2; 10 by default)
const REFRESH_SECONDS = Math.max(2, Number(new URLSearchParams(location.search).get("refresh")) || 10);

function schedule() {
  clearInterval(timer);
  if ($("#auto").checked) timer = setInterval(refresh, REFRESH_SECONDS * 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  $("#refresh-period").textContent = String(REFRESH_SECONDS);
  $("#range").addEventListener("change", refresh);
  $("#refresh").addEventListener("click", refresh);
  $("#auto").addEventListener("change", schedule);
  $("#log-filter").addEventListener("submit", (event) => { event.preventDefault(); drawLogs(); });
  $("#log-filter").addEventListener("reset", () => setTimeout(drawLogs));
  $("#fault-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const plan = {};
    for (const [name, value] of new FormData(event.target)) plan[name] = Number(value);
    setFaults(plan).catch((error) => { $("#fault-status").textContent = `Refused: ${error.message}`; });
  });
  $("#fault-clear").addEventListener("click", () => { $("#fault-form").reset(); setFaults({}); });
  // Links into the console: /_ops?minutes=15&refresh=30&trace=1-…&bookingId=bkg_… (any log filter by name)
  const linked = new URLSearchParams(location.search);
  if (linked.get("minutes")) $("#range").value = linked.get("minutes");
  for (const name of ["correlationId", "bookingId", "traceId", "level"]) {
    if (linked.get(name)) $("#log-filter").elements[name].value = linked.get(name);
  }
  if (linked.get("trace")) showTrace(linked.get("trace")).catch((error) => console.error(error.stack));
  refresh();
  schedule();
});
