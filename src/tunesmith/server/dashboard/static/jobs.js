"use strict";
// The jobs list: every fine-tuning job of the project (GET /v1/fine_tuning/jobs), refreshed.

async function refresh() {
  try {
    const jobs = await api("GET", "/v1/fine_tuning/jobs?limit=100");
    const rows = jobs.data.map((job) => el("tr", {"data-job": job.id},
      el("td", {}, el("a", {href: `/jobs/${job.id}`}, job.id)), el("td", {}, badge(job.status)),
      el("td", {}, job.model), el("td", {}, job.fine_tuned_model || ""), el("td", {}, when(job.created_at)),
      el("td", {}, el("a", {href: `/jobs/new?clone=${job.id}`}, "clone"))));
    document.querySelector("#jobs tbody").replaceChildren(...rows);
    showError(null);
  } catch (err) { showError(err); }
}

refresh();
setInterval(refresh, 3000);
