"use strict";
// Registry: GET /v1/registry and /v1/registry/{name}; split editor (PUT .../split), rollback,
// aliases, promote, add version (POST ...); the A/B report (GET .../ab) and per-version latency
// and request charts (GET .../stats).

let NAME = null;
const charts = [];

function state(serves) {
  if (!serves) return "";
  if (serves.split) return Object.entries(serves.split).map(([v, w]) => `v${v}=${figure(w)}%`).join(" ");
  return serves.version ? `v${serves.version}` : "";
}

async function names() {
  const listing = await api("GET", "/v1/registry");
  document.querySelector("#names tbody").replaceChildren(...(listing.data || listing).map((row) => el("tr", {},
    el("td", {}, el("a", {href: `#${row.name}`, onclick: () => open(row.name)}, row.name)), el("td", {}, row.versions),
    el("td", {}, state(row.serves)), el("td", {}, Object.entries(row.aliases || {}).map(([a, v]) => `${a}→v${v}`).join(", ")))));
  const wanted = decodeURIComponent(window.location.hash.slice(1));
  const first = (listing.data || listing)[0];
  if (!NAME && (wanted || first)) await open(wanted || first.name);
}

async function call(method, path, body) {
  try {
    await api(method, path, body);
    await open(NAME);
    await names();
    showError(null);
  } catch (err) { showError(err); }
}

async function open(name) {
  NAME = name;
  const shown = await api("GET", `/v1/registry/${encodeURIComponent(name)}`);
  document.getElementById("detail").hidden = false;
  document.getElementById("name").textContent = name;
  document.getElementById("serves").textContent = state(shown.serves);
  document.getElementById("serves").dataset.state = state(shown.serves);
  const aliasesOf = (v) => Object.entries(shown.aliases || {}).filter(([, to]) => to === v).map(([a]) => a).join(", ");
  document.querySelector("#versions tbody").replaceChildren(...shown.versions.map((v) => el("tr", {},
    el("td", {}, `v${v.version}`), el("td", {}, v.run_path), el("td", {}, v.note || ""),
    el("td", {}, Object.entries(v.figures || {}).map(([k, x]) => `${k} ${figure(x)}`).join(", ")),
    el("td", {}, aliasesOf(v.version)),
    el("td", {}, el("button", {onclick: () => call("POST", `/v1/registry/${encodeURIComponent(NAME)}/promote`, {version: v.version})}, "promote")))));
  const split = shown.split || (shown.serves && shown.serves.version ? {[shown.serves.version]: 100} : {});
  fill("split-fields", shown.versions.map((v) => el("label", {}, `v${v.version} `,
    el("input", {type: "number", min: "0", max: "100", step: "any", size: "5", "data-version": v.version,
                 value: split[v.version] ?? 0}))));
  fill("alias-version", shown.versions.map((v) => el("option", {value: v.version}, `v${v.version}`)));
  document.querySelector("#history tbody").replaceChildren(...[...shown.history].reverse().map((h) => el("tr", {},
    el("td", {}, h.at), el("td", {}, h.target), el("td", {}, state(h)), el("td", {}, h.rolled_back ? "yes" : ""))));
  await reports(name);
}

async function reports(name) {
  for (const chart of charts.splice(0)) chart.destroy();
  const [ab, stats] = await Promise.all([api("GET", `/v1/registry/${encodeURIComponent(name)}/ab`),
                                         api("GET", `/v1/registry/${encodeURIComponent(name)}/stats`)]);
  document.getElementById("verdict").textContent = ab.verdict || "";
  const rows = ab.versions || [];
  document.querySelector("#ab tbody").replaceChildren(...rows.map((r) => el("tr", {},
    el("td", {}, `v${r.version}`), el("td", {}, r.requests), el("td", {}, r.errors), el("td", {}, figure(r.latency_p50_ms)),
    el("td", {}, figure(r.latency_p95_ms)), el("td", {}, r.feedback), el("td", {}, figure(r.mean_feedback)))));
  const canvas = document.getElementById("ab-chart");
  charts.push(new Chart(canvas, {type: "bar", data: {labels: rows.map((r) => `v${r.version}`), datasets: [
    {label: "requests", data: rows.map((r) => r.requests), backgroundColor: COLORS[0], yAxisID: "y"},
    {label: "mean feedback", data: rows.map((r) => r.mean_feedback), backgroundColor: COLORS[2], yAxisID: "y1"}]},
    options: {animation: false, responsive: true, maintainAspectRatio: false,
              plugins: {title: {display: true, text: `A/B: ${name}`}},
              scales: {y: {position: "left"}, y1: {position: "right", grid: {drawOnChartArea: false}}}}}));
  canvas.dataset.points = rows.length;
  statsCharts(stats);
}

function statsCharts(stats) {
  // requests per time bucket, one line per version; latency percentiles per version
  const [requestsBox, requestsCanvas] = chartBox("requests");
  const [latencyBox, latencyCanvas] = chartBox("latency");
  requestsCanvas.id = "stats-requests";
  latencyCanvas.id = "stats-latency";
  fill("stats", requestsBox, latencyBox);
  const requests = lineChart(requestsCanvas, `requests per ${stats.bucket_seconds} s`, "time");
  const starts = stats.versions.flatMap((v) => v.timeline.map(([start]) => start));
  if (starts.length) {  // one bucket or many: the axis spans the buckets, with one bucket of margin
    requests.options.scales.x.min = Math.min(...starts) - stats.bucket_seconds;
    requests.options.scales.x.max = Math.max(...starts) + stats.bucket_seconds;
  }
  requests.options.scales.x.ticks = {stepSize: stats.bucket_seconds,
                                     callback: (value) => new Date(value * 1000).toLocaleTimeString()};
  requests.update_series(Object.fromEntries(stats.versions.map((v) => [`v${v.version}`,
    v.timeline.map(([start, count]) => [start, count])])));
  charts.push(requests);
  const labels = stats.versions.map((v) => `v${v.version}`);
  charts.push(new Chart(latencyCanvas, {type: "bar", data: {labels, datasets: [
    {label: "p50 ms", data: stats.versions.map((v) => v.latency_p50_ms), backgroundColor: COLORS[0]},
    {label: "p95 ms", data: stats.versions.map((v) => v.latency_p95_ms), backgroundColor: COLORS[1]}]},
    options: {animation: false, responsive: true, maintainAspectRatio: false,
              plugins: {title: {display: true, text: "latency per version"}}}}));
  latencyCanvas.dataset.points = stats.versions.filter((v) => v.requests).length;
}

document.getElementById("split").onsubmit = (event) => {
  event.preventDefault();
  const weights = Object.fromEntries([...document.querySelectorAll("#split-fields input")]
    .map((input) => [input.dataset.version, Number(input.value)]));
  call("PUT", `/v1/registry/${encodeURIComponent(NAME)}/split`, {weights});
};
document.getElementById("rollback").onclick = () => call("POST", `/v1/registry/${encodeURIComponent(NAME)}/rollback`, {});
document.getElementById("alias").onsubmit = (event) => {
  event.preventDefault();
  call("POST", `/v1/registry/${encodeURIComponent(NAME)}/aliases`,
       {alias: document.getElementById("alias-name").value.trim(), version: Number(document.getElementById("alias-version").value)});
};
document.getElementById("add").onsubmit = (event) => {
  event.preventDefault();
  NAME = document.getElementById("add-name").value.trim();
  call("POST", `/v1/registry/${encodeURIComponent(NAME)}/versions`,
       {run: document.getElementById("add-run").value.trim(), note: document.getElementById("add-note").value});
};

names().catch(showError);
