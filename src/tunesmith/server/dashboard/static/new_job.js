"use strict";
// New job: a form generated from GET /v1/config/schema (every option with its default, range and
// description; how each `auto` is chosen), the same training as config.yaml and commands from
// POST /v1/config/render, submitted as POST /v1/fine_tuning/jobs. ?clone=JOB or ?clone_run=RUN
// fills it from a past job (its run's config) or run.

const HYPER = ["epochs", "batch_size", "learning_rate"];  // train.*, "auto" unless given
const SKIP = {train: [...HYPER, "seed"], data: ["train", "eval", "pipeline", "columns"]};
let SCHEMA = null;
const FILES = {};

function resolve(spec) {
  if (spec && spec.$ref) return SCHEMA.json_schema.$defs[spec.$ref.split("/").pop()];
  if (spec && spec.anyOf) return resolve(spec.anyOf.find((s) => s.type && s.type !== "null") || spec.anyOf[0]);
  return spec || {};
}

function section(name) {
  return resolve(SCHEMA.json_schema.properties[name]);
}

function methodSchema(name) {
  const entry = SCHEMA.methods.find((m) => m.name === name);
  return {properties: entry ? entry.options : {}};
}

function field(path, spec, placeholder) {
  // one input for one scalar option; empty means "the default"
  const s = resolve(spec);
  let input;
  if (s.enum || s.type === "boolean") {
    input = el("select", {}, el("option", {value: ""}, `default (${spec.default})`),
      (s.enum || [true, false]).map((c) => el("option", {value: JSON.stringify(c)}, String(c))));
    input.dataset.kind = "json";
  } else if (["integer", "number", "string"].includes(s.type)) {
    input = el("input", {type: "text", placeholder: placeholder ?? spec.default ?? ""});
    input.dataset.kind = s.type;
  } else {
    return null;  // lists and objects: a clone's config keeps them
  }
  input.name = path;
  input.oninput = input.onchange = rerender;
  const low = s.minimum ?? s.exclusiveMinimum, high = s.maximum ?? s.exclusiveMaximum;
  const range = low !== undefined || high !== undefined
    ? ` Range ${s.exclusiveMinimum !== undefined ? "(" : "["}${low ?? "−∞"}, ${high ?? "∞"}${s.exclusiveMaximum !== undefined ? ")" : "]"}.` : "";
  const auto = path.startsWith("train.") && SCHEMA.auto[path.slice(6)];
  return el("label", {}, el("span", {}, path.split(".").pop()), input,
    el("span", {class: "hint"}, `${spec.description || ""} Default ${JSON.stringify(spec.default ?? null)}.${range}`),
    auto ? el("span", {class: "hint auto"}, `auto: ${auto}`) : null);
}

function value(input) {
  const text = input.value.trim();
  if (text === "") return undefined;
  if (input.dataset.kind === "json") return JSON.parse(text);
  if (input.dataset.kind === "integer" || input.dataset.kind === "number") return isNaN(Number(text)) ? text : Number(text);
  return text;
}

function sectionFields(id, name, spec, only) {
  const props = (spec || {}).properties || {};
  const keys = only || Object.keys(props).filter((key) => key !== "name" && !(SKIP[name] || []).includes(key));
  fill(id, keys.map((key) => field(`${name}.${key}`, props[key], only ? "auto" : undefined)).filter(Boolean));
}

function methodOptions() {
  const name = document.getElementById("method-name").value;
  sectionFields("method-options", "method", methodSchema(name));
  const entry = SCHEMA.methods.find((m) => m.name === name);
  document.getElementById("method-help").textContent = entry ? entry.summary : "";
}

function options() {
  // {section: {key: value}} of every option given in the form
  const form = document.getElementById("job-form");
  const given = {method: {name: document.getElementById("method-name").value}};
  const task = document.getElementById("task-name").value;
  if (task) given.task = {name: task};
  for (const input of form.querySelectorAll("[name*='.']")) {
    const v = value(input);
    if (v === undefined) continue;
    const [group, key] = input.name.split(".");
    (given[group] = given[group] || {})[key] = v;
  }
  return given;
}

function config() {
  // the run config this job trains, as `tunesmith train` would read it (files by their names)
  const form = document.getElementById("job-form");
  const given = options();
  const train = {...(given.train || {})};
  for (const key of HYPER) if (train[key] === undefined) train[key] = "auto";
  const data = {...(given.data || {}), train: [FILES[form.training_file.value] || "train.jsonl"]};
  if (form.validation_file.value) data.eval = [FILES[form.validation_file.value]];
  return {...given, model: {name_or_path: form.model.value.trim()}, data, train};
}

function job() {
  // POST /v1/fine_tuning/jobs: epochs and batch size as OpenAI hyperparameters, the rest in `tunesmith`
  const form = document.getElementById("job-form");
  const extension = options();
  const train = {...(extension.train || {})};
  const hyperparameters = {n_epochs: train.epochs ?? "auto", batch_size: train.batch_size ?? "auto"};
  delete train.epochs; delete train.batch_size;
  if (Object.keys(train).length) extension.train = train; else delete extension.train;
  const body = {model: form.model.value.trim(), training_file: form.training_file.value, hyperparameters,
                tunesmith: extension};
  if (form.validation_file.value) body.validation_file = form.validation_file.value;
  if (form.suffix.value.trim()) body.suffix = form.suffix.value.trim();
  if (form.seed.value !== "") body.seed = Number(form.seed.value);
  return body;
}

let pending = null;
function rerender() {
  clearTimeout(pending);
  pending = setTimeout(async () => {
    try {
      const rendered = await api("POST", "/v1/config/render", {config: config()});
      document.getElementById("yaml").textContent = rendered.yaml || "";
      document.getElementById("command").textContent = [rendered.command, rendered.jobs_command].filter(Boolean).join("\n");
      // the job reads its files by id (uploaded); the config names them only for the CLI's sake
      const problems = (rendered.problems || []).filter((p) => !["data.train", "data.eval"].includes(p.key));
      fill("problems", problems.map((p) => el("li", {}, p.key ? `${p.key}: ${p.message}` : p.message)));
      showError(null);
    } catch (err) { showError(err); }
  }, 250);
}

function setField(name, v) {
  const input = document.querySelector(`[name="${name}"]`);
  if (!input || v === undefined || v === null) return;
  input.value = input.dataset.kind === "json" ? JSON.stringify(v) : String(v);
}

function setConfig(config) {
  // a run's config: its hyperparameters, and every other option the form shows where it is not the default
  if (config.model && config.model.name_or_path) setField("model", config.model.name_or_path);
  if (config.method && config.method.name) {
    document.getElementById("method-name").value = config.method.name;
    methodOptions();
  }
  if (config.task && config.task.name) document.getElementById("task-name").value = config.task.name;
  for (const group of ["method", "train", "eval", "data"]) {
    const defaults = group === "method" ? methodSchema(config.method.name) : section(group);
    for (const [key, v] of Object.entries(config[group] || {})) {
      const spec = ((defaults || {}).properties || {})[key];
      const always = group === "train" && HYPER.includes(key);
      if (spec && (always || JSON.stringify(spec.default) !== JSON.stringify(v))) setField(`${group}.${key}`, v);
    }
  }
}

async function clone(params) {
  const note = document.getElementById("cloned");
  if (params.get("clone")) {
    const past = await api("GET", `/v1/fine_tuning/jobs/${params.get("clone")}`);
    if (past.run_id) setConfig((await api("GET", `/v1/runs/${encodeURIComponent(past.run_id)}`)).config || {});
    for (const key of ["model", "training_file", "validation_file", "suffix", "seed"]) setField(key, past[key]);
    setField("suffix", past.user_provided_suffix);
    note.textContent = `A copy of job ${past.id} (${past.status}); change what you like and start it.`;
  } else if (params.get("clone_run")) {
    const run = await api("GET", `/v1/runs/${encodeURIComponent(params.get("clone_run"))}`);
    setConfig(run.config || {});
    note.textContent = `A copy of run ${run.id}; pick its training file and start it.`;
  } else {
    return;
  }
  note.hidden = false;
}

document.getElementById("job-form").onsubmit = async (event) => {
  event.preventDefault();
  try {
    const created = await api("POST", "/v1/fine_tuning/jobs", job());
    window.location = `/jobs/${created.id}`;
  } catch (err) { showError(err); }
};

(async () => {
  try {
    const params = new URLSearchParams(window.location.search);
    const [schema, files] = await Promise.all([api("GET", "/v1/config/schema"), api("GET", "/v1/files?purpose=fine-tune")]);
    SCHEMA = schema;
    fill("models", schema.models.map((name) => el("option", {value: name})));
    for (const f of files.data) FILES[f.id] = f.filename;
    const choices = files.data.map((f) => el("option", {value: f.id}, `${f.filename} (${f.id}, ${f.status})`));
    fill("training_file", choices);
    fill("validation_file", el("option", {value: ""}, "none"), choices.map((o) => o.cloneNode(true)));
    if (params.get("training_file")) document.getElementById("training_file").value = params.get("training_file");
    for (const id of ["model", "training_file", "validation_file", "suffix", "seed"]) {
      document.getElementById(id).oninput = document.getElementById(id).onchange = rerender;
    }
    fill("method-name", schema.methods.map((m) => el("option", {value: m.name}, m.name)));
    document.getElementById("method-name").value = "lora";
    document.getElementById("method-name").onchange = () => { methodOptions(); rerender(); };
    fill("task-name", el("option", {value: ""}, "detected from the data"), schema.tasks.map((t) => el("option", {value: t}, t)));
    document.getElementById("task-name").onchange = rerender;
    methodOptions();
    sectionFields("hyperparameters", "train", section("train"), HYPER);
    sectionFields("train-options", "train", section("train"));
    sectionFields("eval-options", "eval", section("eval"));
    sectionFields("data-options", "data", section("data"));
    await clone(params);
    rerender();
  } catch (err) { showError(err); }
})();
