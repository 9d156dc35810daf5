"""The dashboard (issue 17) driven as a person would, in a real headless Chromium (the Debian
package, through Playwright): `tunesmith server` with API keys, a worker and the tiny llama on a
loopback port. The tests run in order on one server and one logged-in browser page: log in,
upload files, start a job and watch its chart grow, reload mid-run, cancel, compare runs, chat,
change a registry split and roll it back; then every request the pages made is checked against
the documented API. TUNESMITH_SCREENSHOTS=1 also writes docs/images/dashboard-*.png."""

from __future__ import annotations

import json
import os
import re
import threading
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import pytest

from inproc import serving
from jobs_helpers import ROWS, jsonl

CHROMIUM = "/usr/bin/chromium"
KEY = "key-dash"
DOCS = Path(__file__).parents[1] / "docs"
SHOTS = os.environ.get("TUNESMITH_SCREENSHOTS") == "1"
LONG = 120_000  # ms: a job's start (a child process importing torch) on a busy machine
state: dict = {}  # what one step leaves for the next (file id, job ids, model names)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).is_file():
        reason = f"{CHROMIUM} is missing (apt-get install -y chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"Chromium needed in CI: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@contextmanager
def dashboard_server(tmp_path: Path, runs_root: Path):
    """The app of `tunesmith server` (jobs, runs, registry, inference, pages) with one worker."""
    from tunesmith.jobs.store import Store
    from tunesmith.jobs.tenancy import ProjectKeys
    from tunesmith.jobs.worker import Worker
    from tunesmith.server.jobs_routes import create_server_app
    from tunesmith.serving.catalog import Catalog
    from tunesmith.serving.engine import LocalEngine
    from tunesmith.serving.registry import ModelRegistry
    from tunesmith.serving.service import Service

    store = Store(f"sqlite:///{tmp_path / 'server.db'}", tmp_path / "storage")
    service = Service(Catalog(store.storage / "models", [], ModelRegistry(store.url)), LocalEngine())
    app = create_server_app(store, service, ProjectKeys.load([f"team:{KEY}"]), runs_root=runs_root)
    worker = Worker(store, name="dashboard-worker", heartbeat=0.3, stale_after=30, poll=0.2)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        with serving(app) as url:
            yield url
    finally:
        worker.stop.set()
        thread.join(120)
        service.engine.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Base URL of the server, its runs root empty (the runs API test has CLI runs: test_dashboard_api.py)."""
    folder = tmp_path_factory.mktemp("dashboard")
    with dashboard_server(folder, folder / "runs") as url:
        yield url


@pytest.fixture(scope="module")
def page(browser, server):
    """One browser page; every request it makes is recorded in state["requests"]."""
    context = browser.new_context(base_url=server, viewport={"width": 1280, "height": 900})
    state["requests"] = []
    opened = context.new_page()
    context.on("request", lambda r: state["requests"].append((r.method, urlparse(r.url).path)))
    opened.set_default_timeout(30_000)
    yield opened
    context.close()


def shot(page, name: str) -> None:
    if SHOTS:
        (DOCS / "images").mkdir(exist_ok=True)
        page.screenshot(path=str(DOCS / "images" / f"dashboard-{name}.png"), full_page=True)


def points(page, canvas: str) -> int:
    return int(page.get_attribute(canvas, "data-points") or 0)


def wait_points_above(page, canvas: str, count: int, timeout: float = LONG) -> int:
    page.wait_for_function(f"(document.querySelector('{canvas}')?.dataset.points || 0) > {count}", timeout=timeout)
    return points(page, canvas)


def status_is(page, status: str, timeout: float = LONG) -> None:
    page.wait_for_function(f"document.body.dataset.status === '{status}'", timeout=timeout)
    assert page.inner_text("#status").strip() == status


# --- 1. login ------------------------------------------------------------------------------------------------
def test_every_page_needs_a_login_and_a_wrong_key_is_refused(page, server):
    for path in ("/", "/data", "/jobs/new", "/runs", "/playground", "/registry"):
        page.goto(path)
        assert urlparse(page.url).path == "/login", path
    page.fill("input[name=key]", "not-a-key")
    page.click("button[type=submit]")
    assert "not valid" in page.inner_text(".error")
    shot(page, "login")
    page.fill("input[name=key]", KEY)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}/")
    assert page.inner_text("h1") == "Jobs"
    [cookie] = page.context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and KEY not in cookie["value"]
    # the session authenticates the page's own calls, but an unsafe call without the CSRF token is refused
    refused = page.evaluate("""async () => (await fetch('/v1/fine_tuning/jobs', {method: 'POST',
        headers: {'content-type': 'application/json'}, body: '{}'})).status""")
    assert refused == 403
    assert page.evaluate("async () => (await fetch('/v1/files')).status") == 200


# --- 2. data -------------------------------------------------------------------------------------------------
def test_the_data_page_shows_a_bad_files_line_and_a_good_files_report(page, tiny_model_dir):
    page.goto("/data")
    page.wait_for_selector("#est-method option[value=lora]", state="attached")
    page.fill("#model", str(tiny_model_dir))
    bad = jsonl(ROWS[:2]) + b'{"messages": [{"role": "user", "content": "no end"\n'
    page.set_input_files("#file", files=[{"name": "bad.jsonl", "mimeType": "application/json", "buffer": bad}])
    page.click("#upload button[type=submit]")
    problem = page.locator("#problems tbody tr").first
    problem.wait_for()
    assert problem.locator("td").first.inner_text() == "3"  # the line of the broken row
    assert "JSON" in problem.inner_text()
    state["bad_file"] = page.inner_text("#file-id")

    page.select_option("#est-method", "lora")
    page.fill("#est-epochs", "2")
    page.fill("#est-speed", "1000")  # the estimate computed at once (empty: measured by a warm-up)
    page.set_input_files("#file", files=[{"name": "sums.jsonl", "mimeType": "application/json",
                                          "buffer": jsonl(ROWS)}])
    page.click("#upload button[type=submit]")
    page.wait_for_function("document.getElementById('file-id').textContent.length > 0 && "
                           "document.getElementById('no-problems').hidden === false")
    assert page.inner_text("#format") == "openai" and page.inner_text("#rows") == str(len(ROWS))
    assert points(page, "#histogram") > 0
    assert "what is 0 plus 0?" in page.inner_text("#preview")
    estimate = page.inner_text("#estimate")
    assert re.search(r"steps\s+6\b", estimate) and "trained_tokens" in estimate  # 12 rows / 4 per step, 2 epochs
    state["file"] = page.inner_text("#file-id")
    shot(page, "data")


# --- 3. a job from the form ----------------------------------------------------------------------------------
def _fill_options(page, model: str, steps: int, save_steps: int) -> None:
    page.fill("#model", model)
    for name, value in {"method.r": "4", "method.alpha": "8", "method.dropout": "0", "train.max_steps": str(steps),
                        "train.save_steps": str(save_steps), "train.logging_steps": "1",
                        "eval.steps": "2", "data.eval_ratio": "0.25"}.items():
        page.fill(f"[name='{name}']", value)
    page.select_option("[name='train.precision']", '"fp32"')
    page.select_option("[name='eval.before_training']", "false")
    page.fill("[name='data.template']", "chatml")


def test_a_job_started_from_the_form_shows_its_curves_and_its_final_state(page, tiny_model_dir):
    page.goto(f"/jobs/new?training_file={state['file']}")
    page.wait_for_selector("[name='method.r']")
    assert page.input_value("#training_file") == state["file"]
    assert "auto" in page.inner_text("#hyperparameters")  # each hyperparameter explains its auto value
    _fill_options(page, str(tiny_model_dir), 12, 6)
    page.fill("[name='method.r']", "-4")  # the form shows a config problem by its key, then it is fixed
    page.wait_for_selector("#problems li:has-text('method.r')")
    page.fill("[name='method.r']", "4")
    page.wait_for_selector("#problems li", state="detached")
    page.fill("#suffix", "sums")
    page.wait_for_function("document.getElementById('yaml').textContent.includes('max_steps: 12')")
    assert "tunesmith" in page.inner_text("#command")
    shot(page, "new-job")
    page.click("#submit")
    page.wait_for_url(re.compile(r".*/jobs/ftjob-[^/]+$"))
    state["job"] = page.url.rsplit("/", 1)[1]
    wait_points_above(page, "#chart-loss", 0)  # (the long job below shows the chart growing)
    status_is(page, "succeeded")
    assert "eval_loss" in page.get_attribute("#chart-loss", "data-series").split()
    assert "step 12 of 12" in page.inner_text("#progress-text")
    state["model"] = page.inner_text("#fine-tuned-model")
    state["run"] = page.inner_text("#run-id")
    assert state["model"].startswith("ft:") and state["model"].endswith(state["job"])
    assert page.locator("#checkpoints tbody tr").count() == 2
    assert page.is_disabled("#cancel") and "running" not in page.inner_text("#status")
    shot(page, "job")


# --- 4. clone, reload mid-run, another browser, cancel -------------------------------------------------------
def test_a_cloned_job_grows_its_chart_reattaches_after_a_reload_and_is_cancelled(page, browser, server, tiny_model_dir):
    page.goto(f"/jobs/new?clone={state['job']}")
    page.wait_for_selector("#cloned:not([hidden])")
    page.wait_for_function("document.querySelector(\"[name='train.max_steps']\").value === '12'")
    assert page.input_value("#model") == str(tiny_model_dir) and page.input_value("#suffix") == "sums"
    page.fill("[name='train.max_steps']", "400")
    page.fill("[name='train.save_steps']", "1")
    page.click("#submit")
    page.wait_for_url(re.compile(r".*/jobs/ftjob-[^/]+$"))
    job = page.url.rsplit("/", 1)[1]
    assert job != state["job"]
    state["cancelled"] = job
    first = wait_points_above(page, "#chart-loss", 0)
    before = wait_points_above(page, "#chart-loss", first)  # the chart grows while the job trains
    page.reload()
    status_is(page, "running")
    assert wait_points_above(page, "#chart-loss", before - 1) >= before  # the same live job, not a new start
    wait_points_above(page, "#chart-loss", points(page, "#chart-loss"))

    other = browser.new_context(base_url=server)  # another browser, its own login
    second = other.new_page()
    second.goto("/login")
    second.fill("input[name=key]", KEY)
    second.click("button[type=submit]")
    second.goto(f"/jobs/{job}")
    status_is(second, "running")
    page.click("#cancel")
    status_is(page, "cancelled")
    status_is(second, "cancelled")  # polled: no stale "running" in the other browser either
    assert second.is_disabled("#cancel") and second.is_disabled("#pause")
    other.close()
    page.reload()
    status_is(page, "cancelled")
    assert page.locator("#checkpoints tbody tr").count() >= 1


def test_a_job_on_a_bad_file_shows_failed_with_the_files_line(page, tiny_model_dir):
    page.goto(f"/jobs/new?training_file={state['bad_file']}")
    page.wait_for_selector("[name='method.r']")
    page.fill("#model", str(tiny_model_dir))
    page.click("#submit")
    page.wait_for_url(re.compile(r".*/jobs/ftjob-[^/]+$"))
    status_is(page, "failed")
    assert "line 3" in page.inner_text("#job-error")
    assert page.is_disabled("#cancel") and page.is_hidden("#playground")


# --- 5. runs -------------------------------------------------------------------------------------------------
def test_the_jobs_and_runs_pages_list_both_jobs_and_overlay_their_curves(page):
    page.goto("/")
    page.wait_for_selector(f"#jobs tr[data-job='{state['cancelled']}'] [data-status=cancelled]")
    assert "succeeded" in page.inner_text(f"#jobs tr[data-job='{state['job']}']")
    shot(page, "jobs")
    page.goto("/runs")
    finished = page.locator("#runs tbody tr", has_text=state["job"])
    cancelled = page.locator("#runs tbody tr", has_text=state["cancelled"])
    finished.wait_for()
    assert "succeeded" in finished.inner_text() and "cancelled" in cancelled.inner_text()
    assert "eval_loss" in finished.inner_text()  # the run's figures
    finished.locator("input[type=checkbox]").check()
    cancelled.locator("input[type=checkbox]").check()
    page.click("#compare")
    page.wait_for_selector("#curve-train_loss")
    assert len(page.get_attribute("#curve-train_loss", "data-series").split()) == 2  # two runs overlaid
    assert points(page, "#curve-train_loss") > 12
    assert page.locator("#report thead th").count() == 3
    assert "max_steps" in page.inner_text("#report")  # the option the two runs differ in
    shot(page, "runs")


# --- 6. playground -------------------------------------------------------------------------------------------
def test_the_playground_streams_the_tuned_model_beside_its_base(page, tiny_model_dir):
    base = str(tiny_model_dir)  # the job's base model is served beside what was tuned from it
    page.goto(f"/playground?model={state['model']}")
    page.wait_for_function(f"document.getElementById('model-a').value === {json.dumps(state['model'])}")
    page.fill("#model-b", base)
    page.fill("#prompt", "what is 2 plus 2?")
    page.click("#send")
    page.wait_for_selector("#answer-a .reply[data-done=true]", timeout=LONG)
    page.wait_for_selector("#answer-b .reply[data-done=true]", timeout=LONG)
    assert page.get_attribute("#answer-a .reply", "data-model") == state["model"]
    assert page.get_attribute("#answer-b .reply", "data-model") == base
    assert page.inner_text("#answer-a .reply").strip()  # an answer came
    assert page.is_hidden("#error")
    shot(page, "playground")


# --- 7. registry ---------------------------------------------------------------------------------------------
def test_a_registry_split_is_changed_and_rolled_back_on_the_page(page):
    page.goto("/registry")
    for version in (1, 2):  # the job's run, registered twice (a retrained copy would do the same)
        page.fill("#add-name", "chat")
        page.fill("#add-run", state["run"])
        page.click("#add button[type=submit]")
        page.wait_for_function(f"document.querySelectorAll('#versions tbody tr').length === {version}")
    assert page.get_attribute("#serves", "data-state") == "v1"
    page.fill("[data-version='1']", "70")
    page.fill("[data-version='2']", "30")
    page.click("#split button[type=submit]")
    page.wait_for_function("document.getElementById('serves').dataset.state === 'v1=70% v2=30%'")
    page.wait_for_function("document.getElementById('names').innerText.includes('v1=70% v2=30%')")
    page.click("#rollback")
    page.wait_for_function("document.getElementById('serves').dataset.state === 'v1'")
    assert "yes" in page.inner_text("#history")  # the split stays in the history, rolled back
    # requests to the name show up in its per-version charts
    asked = page.evaluate("""async () => (await fetch('/v1/chat/completions', {method: 'POST', headers:
        {'content-type': 'application/json', 'x-csrf-token': document.querySelector('meta[name=csrf-token]').content},
        body: JSON.stringify({model: 'chat', max_tokens: 2, messages: [{role: 'user', content: 'hi'}]})})).status""")
    assert asked == 200
    page.reload()
    page.wait_for_function("(document.getElementById('stats-requests')?.dataset.points || 0) > 0")
    assert page.get_attribute("#stats-latency", "data-points") == "1"
    assert page.is_hidden("#error")
    shot(page, "registry")


# --- 8. only the documented API ------------------------------------------------------------------------------
def _documented() -> list[tuple[str, re.Pattern]]:
    """(method, path pattern) of every endpoint of docs/api.md's table (`| GET | `/v1/runs/{run_id}` |`)."""
    found = []
    table = (DOCS / "api.md").read_text()
    for method, path in re.findall(r"^\| (GET|POST|PUT|PATCH|DELETE) \| `(/[^`]*)`", table, re.M):
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path))
        found.append((method, re.compile(pattern + "$")))
    assert len(found) > 30, "docs/api.md lists the endpoints in a table: | METHOD | `PATH` |"
    return found


def test_the_pages_call_only_documented_endpoints(page):
    documented = _documented()
    called = {(m, p) for m, p in state["requests"] if p.startswith("/v1/") or p == "/metrics"}
    assert len({p for _, p in called}) > 15  # the steps above used much of the API
    undocumented = sorted((m, p) for m, p in called if not any(m == dm and dp.match(p) for dm, dp in documented))
    assert undocumented == []

