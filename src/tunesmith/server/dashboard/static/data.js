"use strict";
// Data: upload a file (POST /v1/files), then inspect it (POST /v1/files/{id}/inspect): its
// problems with line numbers, detected format, token-length histogram, estimate and preview.

let histogram = null;

function flat(object, prefix = "") {
  // {"time": {"seconds": 3}} -> [["time.seconds", 3]]
  return Object.entries(object || {}).flatMap(([key, value]) =>
    value && typeof value === "object" && !Array.isArray(value) ? flat(value, `${prefix}${key}.`) : [[`${prefix}${key}`, value]]);
}

function showReport(fileId, report) {
  document.getElementById("report").hidden = false;
  document.getElementById("file-id").textContent = fileId;
  document.getElementById("format").textContent = report.format || "";
  document.getElementById("task").textContent = report.task || "";
  document.getElementById("rows").textContent = report.rows ?? "";
  const problems = report.problems || [];
  document.getElementById("no-problems").hidden = problems.length > 0;
  document.querySelector("#problems tbody").replaceChildren(...problems.map((p) =>
    el("tr", {class: "problem"}, el("td", {}, p.line ?? ""), el("td", {}, p.key ?? ""), el("td", {}, p.message))));
  fill("notes", (report.notes || []).map((note) => el("li", {}, note)));
  const lengths = report.token_lengths || {edges: [], counts: []};
  const labels = lengths.counts.map((_, i) => `${Math.round(lengths.edges[i])}–${Math.round(lengths.edges[i + 1])}`);
  if (histogram) histogram.destroy();
  histogram = barChart(document.getElementById("histogram"), "tokens per row", labels, lengths.counts, "rows");
  document.querySelector("#estimate tbody").replaceChildren(...flat(report.estimate).map(([k, v]) =>
    el("tr", {}, el("th", {}, k), el("td", {}, figure(v)))));
  fill("preview", (report.preview || []).map((row) => el("div", {class: "preview-row"},
    el("p", {class: "hint"}, `line ${row.line}`),
    el("pre", {}, (row.segments || [{text: row.text}]).map((s) => el("span", {class: s.trainable ? "trainable" : null}, s.text))))));
  document.getElementById("use").href = `/jobs/new?training_file=${encodeURIComponent(fileId)}`;
}

function options() {
  const value = (id) => document.getElementById(id).value.trim();
  const body = {};
  if (value("model")) body.model = value("model");
  if (value("est-method")) {
    body.estimate = {method: {name: value("est-method")},
                     train: {batch_size: Number(value("est-batch")), epochs: Number(value("est-epochs"))},
                     data: {cutoff_len: Number(value("est-cutoff"))}};
    if (value("est-speed")) body.tokens_per_second = Number(value("est-speed"));
  }
  return body;
}

async function inspect(fileId) {
  document.body.dataset.inspecting = "true";
  try {
    showReport(fileId, await api("POST", `/v1/files/${fileId}/inspect`, options()));
  } finally {
    delete document.body.dataset.inspecting;
  }
}

async function listFiles(selected) {
  const files = await api("GET", "/v1/files?purpose=fine-tune");
  fill("files", el("option", {value: ""}, "choose…"), files.data.map((f) =>
    el("option", {value: f.id, selected: f.id === selected ? "selected" : null}, `${f.filename} (${f.id})`)));
}

document.getElementById("upload").onsubmit = async (event) => {
  event.preventDefault();
  try {
    const form = new FormData();
    form.append("purpose", "fine-tune");
    form.append("file", document.getElementById("file").files[0]);
    const uploaded = await api("POST", "/v1/files", form);
    await listFiles(uploaded.id);
    await inspect(uploaded.id);
    showError(null);
  } catch (err) { showError(err); }
};

document.getElementById("inspect").onclick = async () => {
  const fileId = document.getElementById("files").value;
  if (!fileId) return;
  try { await inspect(fileId); showError(null); } catch (err) { showError(err); }
};

(async () => {
  try {
    await listFiles(null);
    const schema = await api("GET", "/v1/config/schema");
    fill("models", (schema.models || []).map((m) => el("option", {value: typeof m === "string" ? m : m.name})));
    document.getElementById("est-method").append(...(schema.methods || []).map((m) => el("option", {value: m.name || m}, m.name || m)));
  } catch (err) { showError(err); }
})();
