"use strict";
// Runs: GET /v1/runs (jobs' runs and CLI runs alike) as a table; the selected ones' curves
// overlaid and their figures side by side (GET /v1/runs/compare).

const curves = {};

function figures(run) {
  return Object.entries(run.metrics || {}).filter(([, v]) => typeof v === "number")
    .map(([k, v]) => `${k} ${figure(v)}`).join(", ");
}

function selected() {
  return [...document.querySelectorAll("#runs input:checked")].map((box) => box.value);
}

async function refresh() {
  const runs = await api("GET", "/v1/runs?limit=200");
  const list = runs.data || runs;
  document.querySelector("#runs tbody").replaceChildren(...list.map((run) => el("tr", {"data-run": run.id},
    el("td", {}, el("input", {type: "checkbox", value: run.id, "aria-label": `select ${run.id}`,
      onchange: () => { document.getElementById("compare").disabled = selected().length < 2; }})),
    el("td", {title: run.id}, run.path.split("/").pop()), el("td", {}, run.job_id ? el("a", {href: `/jobs/${run.job_id}`}, run.job_id) : "CLI"),
    el("td", {}, badge(run.status || "")), el("td", {}, when(run.created_at)), el("td", {}, run.model || ""),
    el("td", {}, run.method || ""), el("td", {class: "figures"}, figures(run)),
    el("td", {}, el("a", {href: `/jobs/new?clone_run=${encodeURIComponent(run.id)}`}, "clone")))));
}

function overlay(runs) {
  // one chart per metric, one line per run
  const byMetric = {};
  for (const run of runs) {
    for (const [name, points] of Object.entries(run.series || {})) {
      if (points.length) (byMetric[name] = byMetric[name] || {})[run.name || run.id] = points;
    }
  }
  for (const chart of Object.values(curves)) chart.destroy();
  const boxes = Object.entries(byMetric).map(([name, lines]) => {
    const [box, canvas] = chartBox(name);
    canvas.id = `curve-${name}`;
    curves[name] = {canvas, lines};
    return box;
  });
  fill("curves", boxes);
  for (const [name, entry] of Object.entries(curves)) {
    const chart = lineChart(entry.canvas, name);
    chart.update_series(entry.lines);
    curves[name] = chart;
  }
}

function report(comparison) {
  // rows: the figures, the extra eval metrics and the options that differ; columns: the runs
  const runs = comparison.runs;
  const rows = [["train loss", (r) => r.train_loss], ["eval loss", (r) => r.eval_loss], ["steps", (r) => r.steps],
    ["seconds", (r) => r.seconds], ["best eval loss", (r) => (r.best ? "yes" : "")],
    ...comparison.metrics.map((k) => [k, (r) => r.metrics[k]]),
    ...comparison.differing.map((k) => [k, (r) => (typeof r.config[k] === "object" ? JSON.stringify(r.config[k]) : r.config[k])])];
  document.querySelector("#report thead").replaceChildren(el("tr", {}, el("th", {}, ""),
    runs.map((r) => el("th", {title: r.path}, r.name || r.id))));
  document.querySelector("#report tbody").replaceChildren(...rows.map(([label, value]) =>
    el("tr", {}, el("th", {}, label), runs.map((r) => el("td", {}, figure(value(r)))))));
}

document.getElementById("compare").onclick = async () => {
  const ids = selected();
  try {
    const comparison = await api("GET", `/v1/runs/compare?ids=${ids.map(encodeURIComponent).join(",")}`);
    document.getElementById("comparison").hidden = false;
    overlay(comparison.runs);
    report(comparison);
    showError(null);
  } catch (err) { showError(err); }
};

refresh().catch(showError);
