// Shared helpers of the dashboard pages: API calls (the session cookie authenticates them, the
// CSRF token from the page's meta tag goes on every call), element building, Chart.js charts.
"use strict";

const CSRF = () => document.querySelector('meta[name="csrf-token"]').content;

async function api(method, path, body) {
  const options = {method, headers: {"x-csrf-token": CSRF()}, credentials: "same-origin"};
  if (body instanceof FormData) {
    options.body = body;
  } else if (body !== undefined) {
    options.headers["content-type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  if (response.status === 401) {
    window.location = "/login";
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = text; }
  if (!response.ok) {
    const message = data && data.error ? data.error.message : `${response.status} ${response.statusText}`;
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return data;
}

function showError(err) {
  const box = document.getElementById("error");
  box.textContent = err ? String(err.message || err) : "";
  box.hidden = !err;
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name === "onclick" || name === "onchange" || name === "oninput") node[name] = value;
    else if (value !== null && value !== undefined && value !== false) node.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function fill(id, ...children) {
  const node = document.getElementById(id);
  node.replaceChildren(...children.flat());
  return node;
}

function when(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleString() : "";
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  seconds = Math.max(0, Math.round(seconds));
  const m = Math.floor(seconds / 60), s = seconds % 60;
  return m >= 60 ? `${Math.floor(m / 60)} h ${m % 60} min` : m ? `${m} min ${s} s` : `${s} s`;
}

function figure(value) {
  return typeof value === "number" ? (Number.isInteger(value) ? String(value) : value.toPrecision(4)) : (value ?? "");
}

function badge(status) {
  return el("span", {class: `badge ${status}`, "data-status": status}, status);
}

const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777"];

// A line chart of named series ({name: [[x, y], ...]}); `update_series` replaces its data in place. The
// canvas's data-points attribute counts the points drawn (the browser tests read it).
function lineChart(canvas, title, xLabel) {
  const chart = new Chart(canvas, {
    type: "line",
    data: {datasets: []},
    options: {animation: false, parsing: false, responsive: true, maintainAspectRatio: false,
              plugins: {title: {display: true, text: title}},
              scales: {x: {type: "linear", title: {display: true, text: xLabel || "step"}}}},
  });
  chart.update_series = (series) => {
    chart.data.datasets = Object.entries(series).map(([name, points], i) => ({
      label: name, data: points.map(([x, y]) => ({x, y})), borderColor: COLORS[i % COLORS.length],
      backgroundColor: COLORS[i % COLORS.length], pointRadius: 2, borderWidth: 2}));
    chart.update();
    canvas.dataset.points = Object.values(series).reduce((n, points) => n + points.length, 0);
    canvas.dataset.series = Object.keys(series).join(" ");
  };
  return chart;
}

function barChart(canvas, title, labels, values, label) {
  const chart = new Chart(canvas, {
    type: "bar",
    data: {labels, datasets: [{label, data: values, backgroundColor: COLORS[0]}]},
    options: {animation: false, responsive: true, maintainAspectRatio: false,
              plugins: {title: {display: true, text: title}}},
  });
  canvas.dataset.points = values.length;
  return chart;
}

function chartBox(title) {
  const canvas = el("canvas", {"aria-label": title, role: "img"});
  return [el("div", {class: "chart"}, canvas), canvas];
}
