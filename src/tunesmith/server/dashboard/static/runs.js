"use strict";
// Runs: GET /v1/runs (jobs' runs and CLI runs alike) as a table; the selected ones' curves
// overlaid (GET /v1/runs/{id}/metrics) and their reports side by side (GET /v1/runs/compare).

const curves = {};

function figures(run) {
  const values = run.figures || run.results || run.metrics || {};
  return Object.entries(values).filter(([, v]) => typeof v === "number")
    .map(([k, v]) => `${k} ${figure(v)}`).join(", ");
}

function selected() {
  return [...document.querySelectorAll("#runs input:checked")].map((box) => box.value);
}

async function refresh() {
  const runs = await api("GET", "/v1/runs");
  const list = runs.data || runs;
  document.querySelector("#runs tbody").replaceChildren(...list.map((run) => el("tr", {"data-run": run.id},
    el("td", {}, el("input", {type: "checkbox", value: run.id, "aria-label": `select ${run.id}`,
      onchange: () => { document.getElementById("compare").disabled = selected().length < 2; }})),
    el("td", {}, run.id), el("td", {}, badge(run.status || "")), el("td", {}, run.model || ""),
    el("td", {}, run.method || ""), el("td", {class: "figures"}, figures(run)),
    el("td", {}, el("a", {href: `/jobs/new?clone_run=${encodeURIComponent(run.id)}`}, "clone")))));
}

function overlay(all) {
  // one chart per metric, one line per run
  const byMetric = {};
  for (const [runId, metrics] of Object.entries(all)) {
    for (const [name, points] of Object.entries(metrics.series || {})) {
      if (points.length) (byMetric[name] = byMetric[name] || {})[runId] = points;
    }
  }
  for (const chart of Object.values(curves)) chart.destroy();
  const boxes = Object.entries(byMetric).map(([name, lines]) => {
    const [box, canvas] = chartBox(name);
    canvas.id = `curve-${name}`;
    curves[name] = {box, canvas, lines};
    return box;
  });
  fill("curves", boxes);
  for (const [name, entry] of Object.entries(curves)) {
    const chart = lineChart(entry.canvas, name);
    chart.update_series(entry.lines);
    curves[name] = chart;
  }
}

function report(comparison, ids) {
  // rows: every figure any run reports; columns: the runs
  const runs = comparison.runs || comparison.data || [];
  const values = {};
  for (const run of runs) {
    for (const [k, v] of Object.entries(run.figures || run.metrics || run.results || {})) {
      (values[k] = values[k] || {})[run.id] = v;
    }
  }
  for (const [k, row] of Object.entries(comparison.metrics || {})) values[k] = {...(values[k] || {}), ...row};
  document.querySelector("#report thead").replaceChildren(el("tr", {}, el("th", {}, "figure"), ids.map((id) => el("th", {}, id))));
  document.querySelector("#report tbody").replaceChildren(...Object.entries(values).map(([k, row]) =>
    el("tr", {}, el("th", {}, k), ids.map((id) => el("td", {}, figure(row[id]))))));
}

document.getElementById("compare").onclick = async () => {
  const ids = selected();
  try {
    const metrics = await Promise.all(ids.map((id) => api("GET", `/v1/runs/${encodeURIComponent(id)}/metrics`)));
    const comparison = await api("GET", `/v1/runs/compare?ids=${ids.map(encodeURIComponent).join(",")}`);
    document.getElementById("comparison").hidden = false;
    overlay(Object.fromEntries(ids.map((id, i) => [id, metrics[i]])));
    report(comparison, ids);
    showError(null);
  } catch (err) { showError(err); }
};

refresh().catch(showError);
