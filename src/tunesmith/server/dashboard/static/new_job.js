"use strict";
// New job: a form generated from GET /v1/config/schema (every option with its default, range and
// description), the equivalent YAML and CLI command from POST /v1/config/render, and submit as
// POST /v1/fine_tuning/jobs. ?clone=JOB or ?clone_run=RUN fills it from a past job or run.

const HYPER = ["n_epochs", "batch_size", "learning_rate_multiplier"];
const SKIP = {train: ["epochs", "batch_size", "learning_rate"], data: ["train", "eval", "pipeline", "columns"]};
let SCHEMA = null;

function resolve(spec) {
  if (spec && spec.$ref) return SCHEMA.json_schema.$defs[spec.$ref.split("/").pop()];
  if (spec && spec.anyOf) return resolve(spec.anyOf.find((s) => s.type !== "null") || spec.anyOf[0]);
  return spec || {};
}

function section(name) {
  return resolve(SCHEMA.json_schema.properties[name]);
}

function field(path, spec, own) {
  // one input for one scalar option; empty means "the default"
  const s = resolve(spec);
  const type = s.type;
  let input;
  if (s.enum || type === "boolean") {
    const choices = s.enum || [true, false];
    input = el("select", {}, el("option", {value: ""}, `default (${spec.default})`),
      choices.map((c) => el("option", {value: JSON.stringify(c)}, String(c))));
  } else if (type === "integer" || type === "number") {
    input = el("input", {type: "text", inputmode: "decimal", placeholder: spec.default ?? ""});
  } else if (type === "string") {
    input = el("input", {type: "text", placeholder: spec.default ?? ""});
  } else {
    return null;  // lists and objects: the YAML of a clone keeps them
  }
  input.name = path;
  input.dataset.kind = s.enum || type === "boolean" ? "json" : type;
  input.oninput = input.onchange = rerender;
  const range = [s.minimum ?? s.exclusiveMinimum, s.maximum ?? s.exclusiveMaximum];
  const limits = range[0] !== undefined || range[1] !== undefined
    ? ` range ${s.exclusiveMinimum !== undefined ? "(" : "["}${range[0] ?? "−∞"}, ${range[1] ?? "∞"}${s.exclusiveMaximum !== undefined ? ")" : "]"}` : "";
  return el("label", {}, el("span", {}, own || path.split(".").pop()), input,
    el("span", {class: "hint"}, `${spec.description || ""} default ${JSON.stringify(spec.default ?? null)}.${limits}`));
}

function value(input) {
  const text = input.value.trim();
  if (text === "") return undefined;
  if (input.dataset.kind === "json") return JSON.parse(text);
  if (input.dataset.kind === "integer" || input.dataset.kind === "number") {
    return text === "auto" || isNaN(Number(text)) ? text : Number(text);
  }
  return text;
}

function sectionFields(id, name, spec) {
  const props = (spec || {}).properties || {};
  fill(id, Object.entries(props).filter(([key]) => key !== "name" && !(SKIP[name] || []).includes(key))
    .map(([key, s]) => field(`${name}.${key}`, s)).filter(Boolean));
}

function methodOptions() {
  const name = document.getElementById("method-name").value;
  sectionFields("method-options", "method", SCHEMA.json_schema["x-methods"][name]);
  const entry = (SCHEMA.methods || []).find((m) => (m.name || m) === name);
  document.getElementById("method-help").textContent = entry && entry.description ? entry.description : "";
}

function body() {
  const form = document.getElementById("job-form");
  const job = {model: form.model.value.trim(), training_file: form.training_file.value};
  if (form.validation_file.value) job.validation_file = form.validation_file.value;
  if (form.suffix.value.trim()) job.suffix = form.suffix.value.trim();
  if (form.seed.value !== "") job.seed = Number(form.seed.value);
  job.hyperparameters = {};
  for (const key of HYPER) {
    const v = form[key].value.trim();
    job.hyperparameters[key] = v === "" || v === "auto" ? "auto" : Number(v);
  }
  const extension = {method: {name: document.getElementById("method-name").value}};
  const task = document.getElementById("task-name").value;
  if (task) extension.task = {name: task};
  for (const input of form.querySelectorAll("[name*='.']")) {
    const v = value(input);
    if (v === undefined) continue;
    const [group, key] = input.name.split(".");
    (extension[group] = extension[group] || {})[key] = v;
  }
  job.tunesmith = extension;
  return job;
}

let pending = null;
function rerender() {
  clearTimeout(pending);
  pending = setTimeout(async () => {
    try {
      const rendered = await api("POST", "/v1/config/render", body());
      document.getElementById("yaml").textContent = rendered.yaml || "";
      document.getElementById("command").textContent = rendered.command || "";
      fill("problems", (rendered.problems || []).map((p) => el("li", {}, typeof p === "string" ? p : p.message)));
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
  // a run's config: every option the form shows, where it differs from the default
  if (config.model && config.model.name_or_path) setField("model", config.model.name_or_path);
  if (config.method && config.method.name) {
    document.getElementById("method-name").value = config.method.name;
    methodOptions();
  }
  if (config.task && config.task.name) document.getElementById("task-name").value = config.task.name;
  for (const group of ["method", "train", "eval", "data"]) {
    const defaults = group === "method" ? SCHEMA.json_schema["x-methods"][config.method.name] : section(group);
    for (const [key, v] of Object.entries(config[group] || {})) {
      const spec = ((defaults || {}).properties || {})[key];
      if (spec && JSON.stringify(spec.default) !== JSON.stringify(v)) setField(`${group}.${key}`, v);
    }
  }
}

async function clone(params) {
  const note = document.getElementById("cloned");
  if (params.get("clone")) {
    const job = await api("GET", `/v1/fine_tuning/jobs/${params.get("clone")}`);
    if (job.run_id) {
      try { setConfig((await api("GET", `/v1/runs/${encodeURIComponent(job.run_id)}`)).config || {}); } catch (err) { /* run gone */ }
    }
    for (const key of ["model", "training_file", "validation_file", "suffix", "seed"]) setField(key, job[key]);
    for (const key of HYPER) setField(key, job.hyperparameters[key]);
    note.textContent = `A copy of job ${job.id} (${job.status}); change what you like and start it.`;
  } else if (params.get("clone_run")) {
    const run = await api("GET", `/v1/runs/${encodeURIComponent(params.get("clone_run"))}`);
    setConfig(run.config || {});
    note.textContent = `A copy of run ${params.get("clone_run")}; pick its training file and start it.`;
  } else {
    return;
  }
  note.hidden = false;
}

document.getElementById("job-form").onsubmit = async (event) => {
  event.preventDefault();
  try {
    const job = await api("POST", "/v1/fine_tuning/jobs", body());
    window.location = `/jobs/${job.id}`;
  } catch (err) { showError(err); }
};

(async () => {
  try {
    const params = new URLSearchParams(window.location.search);
    const [schema, files] = await Promise.all([api("GET", "/v1/config/schema"), api("GET", "/v1/files?purpose=fine-tune")]);
    SCHEMA = schema;
    fill("models", (schema.models || []).map((m) => el("option", {value: m.name || m}, m.description || null)));
    const options = files.data.map((f) => el("option", {value: f.id}, `${f.filename} (${f.id}, ${f.status})`));
    fill("training_file", options);
    fill("validation_file", el("option", {value: ""}, "none"), options.map((o) => o.cloneNode(true)));
    if (params.get("training_file")) document.getElementById("training_file").value = params.get("training_file");
    const auto = schema.auto || {};
    fill("hyperparameters", HYPER.map((key) => el("label", {}, key,
      el("input", {name: key, placeholder: "auto", oninput: rerender}),
      el("span", {class: "hint"}, typeof auto[key] === "string" ? `auto: ${auto[key]}` : ""))));
    document.getElementById("auto-help").textContent = typeof auto === "string" ? auto : (auto.help || "");
    fill("method-name", (schema.methods || []).map((m) => el("option", {value: m.name || m}, m.name || m)));
    document.getElementById("method-name").value = "lora";
    document.getElementById("method-name").onchange = () => { methodOptions(); rerender(); };
    fill("task-name", el("option", {value: ""}, "default"), (schema.tasks || []).map((t) => el("option", {value: t.name || t}, t.name || t)));
    document.getElementById("task-name").onchange = rerender;
    methodOptions();
    sectionFields("train-options", "train", section("train"));
    sectionFields("eval-options", "eval", section("eval"));
    sectionFields("data-options", "data", section("data"));
    await clone(params);
    rerender();
  } catch (err) { showError(err); }
})();
