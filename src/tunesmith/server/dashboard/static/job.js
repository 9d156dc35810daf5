"use strict";
// One job, live: its status, progress and ETA, every metric series as a chart, checkpoints and
// events, polled from the API until the job ends. Everything shown comes from the server, so a
// reload or another browser shows the same job, and a job that ended shows its final state.

const JOB = document.getElementById("job-id").textContent.trim();
const FINAL = ["succeeded", "failed", "cancelled"];
const charts = {};

function grouped(series) {
  // the losses share one chart; every other in-loop metric gets its own
  const groups = {loss: {}};
  for (const [name, points] of Object.entries(series)) {
    if (!points.length) continue;
    if (name.endsWith("loss")) groups.loss[name] = points;
    else groups[name] = {[name]: points};
  }
  return groups;
}

function draw(series) {
  for (const [group, lines] of Object.entries(grouped(series))) {
    if (!Object.keys(lines).length) continue;
    if (!charts[group]) {
      const [box, canvas] = chartBox(group);
      canvas.id = `chart-${group}`;
      document.getElementById("charts").append(box);
      charts[group] = lineChart(canvas, group);
    }
    charts[group].update_series(lines);
  }
}

function seriesFromEvents(events) {
  // before the job's run exists (or on a server without /v1/runs): its metric events
  const series = {};
  for (const event of [...events].reverse()) {
    if (event.type !== "metrics" || !event.data) continue;
    for (const [name, value] of Object.entries(event.data)) {
      if (name !== "step" && typeof value === "number") (series[name] = series[name] || []).push([event.data.step, value]);
    }
  }
  return series;
}

function showProgress(job, progress) {
  const bar = document.getElementById("progress");
  const text = [];
  if (progress && progress.total_steps) {
    bar.max = progress.total_steps;
    bar.value = job.status === "succeeded" ? progress.total_steps : progress.step || 0;
    text.push(`step ${progress.step || 0} of ${progress.total_steps}`);
    if (!FINAL.includes(job.status) && progress.eta_seconds !== null && progress.eta_seconds !== undefined) {
      text.push(`about ${duration(progress.eta_seconds)} left`);
    }
  } else if (job.status === "succeeded") {
    bar.value = bar.max;
  }
  if (job.finished_at) text.push(`${job.status} at ${when(job.finished_at)}`);
  document.getElementById("progress-text").textContent = text.join(" · ");
}

function showJob(job) {
  fill("status", badge(job.status));
  const hyper = Object.entries(job.hyperparameters || {}).map(([k, v]) => `${k}=${v}`).join(", ");
  fill("summary", el("table", {class: "summary"}, el("tbody", {},
    el("tr", {}, el("th", {}, "model"), el("td", {}, job.model)),
    el("tr", {}, el("th", {}, "training file"), el("td", {}, job.training_file)),
    el("tr", {}, el("th", {}, "hyperparameters"), el("td", {}, hyper)),
    el("tr", {}, el("th", {}, "run"), el("td", {id: "run-id"}, job.run_id || "")),
    el("tr", {}, el("th", {}, "fine-tuned model"), el("td", {id: "fine-tuned-model"}, job.fine_tuned_model || "")),
    el("tr", {}, el("th", {}, "created"), el("td", {}, when(job.created_at))))));
  const failure = document.getElementById("job-error");
  failure.hidden = !job.error;
  failure.textContent = job.error ? `failed: ${job.error.message}` : "";
  const active = !FINAL.includes(job.status);
  document.getElementById("cancel").disabled = !active;
  document.getElementById("pause").disabled = !["queued", "running"].includes(job.status);
  document.getElementById("resume").disabled = job.status !== "paused";
  const chat = document.getElementById("playground");
  chat.hidden = !job.fine_tuned_model;
  if (job.fine_tuned_model) chat.href = `/playground?model=${encodeURIComponent(job.fine_tuned_model)}`;
}

function showEvents(events) {
  document.querySelector("#events tbody").replaceChildren(...events.filter((e) => e.type !== "metrics").map((e) =>
    el("tr", {}, el("td", {}, when(e.created_at)), el("td", {}, e.level), el("td", {}, e.message))));
}

function showCheckpoints(checkpoints) {
  document.querySelector("#checkpoints tbody").replaceChildren(...checkpoints.map((c) => el("tr", {},
    el("td", {}, c.step_number), el("td", {}, c.fine_tuned_model_checkpoint),
    el("td", {}, figure(c.metrics && c.metrics.train_loss)), el("td", {}, figure(c.metrics && c.metrics.valid_loss)))));
}

async function tick() {
  const job = await api("GET", `/v1/fine_tuning/jobs/${JOB}`);
  const [events, checkpoints] = await Promise.all([
    api("GET", `/v1/fine_tuning/jobs/${JOB}/events?limit=100`),
    api("GET", `/v1/fine_tuning/jobs/${JOB}/checkpoints?limit=100`)]);
  let metrics = null;
  if (job.run_id && job.status !== "validating_files") {
    try { metrics = await api("GET", `/v1/runs/${encodeURIComponent(job.run_id)}/metrics`); } catch (err) { metrics = null; }
  }
  showJob(job);
  draw(metrics ? metrics.series : seriesFromEvents(events.data));
  showProgress(job, metrics && metrics.progress);
  showEvents(events.data);
  showCheckpoints(checkpoints.data);
  document.body.dataset.status = job.status;
  return job.status;
}

async function poll() {
  let status = null;
  try {
    status = await tick();
    showError(null);
  } catch (err) {
    showError(err);
    if (err.status === 404) return;  // no such job: nothing to follow
  }
  if (!FINAL.includes(status)) setTimeout(poll, status === "paused" ? 3000 : 1000);
}

for (const action of ["cancel", "pause", "resume"]) {
  document.getElementById(action).onclick = async () => {
    try {
      await api("POST", `/v1/fine_tuning/jobs/${JOB}/${action}`);
      await tick();
    } catch (err) { showError(err); }
  };
}

poll();
