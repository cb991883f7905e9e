"""The /dashboard one-page app driven by headless Chromium against a live gateway and a real worker."""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, auth, wait_for_job

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
STATIC = REPO / "services" / "gateway" / "dashboard" / "static"
ARTIFACTS = Path(os.environ["ATELIER_TEST_ARTIFACTS"]) / "dashboard" if os.environ.get("ATELIER_TEST_ARTIFACTS") \
    else REPO / "tests" / "artifacts" / "dashboard"
BROWSER_TIMEOUT_MS = 30_000


def _browser_missing_reason() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python playwright package is not installed (pip install playwright)"
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


needs_browser = pytest.mark.skipif(_browser_missing_reason() is not None, reason=str(_browser_missing_reason()))


# ----------------------------------------------------------------------------- static checks (no browser)
def _without_comments(text: str, suffix: str) -> str:
    text = re.sub(r"<!--.*?-->", "", text, flags=re.DOTALL) if suffix == ".html" else text
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
    if suffix == ".js":  # whole-line and trailing // comments; the code itself has no "//" inside strings
        text = re.sub(r"(^|\s)//[^\n]*", r"\1", text)
    return text


def test_static_files_reference_no_external_urls():
    files = sorted(p for p in STATIC.iterdir() if p.is_file())
    assert {p.name for p in files} >= {"index.html", "dashboard.js", "dashboard.css"}
    for path in files:
        code = _without_comments(path.read_text(), path.suffix)
        assert not re.search(r"https?://", code, re.IGNORECASE), f"{path.name} references an external URL"
        assert not re.search(r"""(src|href)\s*=\s*["']//""", code, re.IGNORECASE), f"{path.name} uses a protocol-relative URL"


def test_dashboard_is_public_but_its_api_calls_need_a_key(gateway, keys):
    page = gateway.get("/dashboard/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "dashboard.js" in page.text
    assert gateway.get("/dashboard", follow_redirects=False).headers["location"] == "/dashboard/"
    script = gateway.get("/dashboard/dashboard.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert gateway.get("/dashboard/dashboard.css").status_code == 200
    # Nothing outside static/ is reachable, and a missing file is a problem+json 404.
    for bad in ("/dashboard/__init__.py", "/dashboard/..%2F__init__.py", "/dashboard/nope.js"):
        missing = gateway.get(bad)
        assert missing.status_code == 404, bad
        assert missing.headers["content-type"].startswith("application/problem+json")
    # The API the page calls stays closed without a key.
    for path in ("/v1/jobs", "/v1/selection/graph"):
        assert gateway.get(path).status_code == 401
        assert gateway.get(path, headers=auth(keys["read"])).status_code == 200
    assert gateway.post("/v1/selection/rank", json={"dataset": "x"}).status_code == 401


# ----------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def live_gateway(gateway_app, gateway) -> str:
    """The same app object the `gateway` fixture serves, on a real loopback port for the browser."""
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # lifespan off: the TestClient already ran startup, and a second shutdown would close shared clients.
    server = uvicorn.Server(uvicorn.Config(gateway_app, host="127.0.0.1", port=port, lifespan="off",
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def seeded(api, celery_worker, tmp_path_factory):
    """A fitted selection graph plus one finished quantization job and one finished training job."""
    from services.common.diffusion import generate_synthetic_dataset

    suffix = f"dash{celery_worker.proc.pid}"
    data = generate_synthetic_dataset(tmp_path_factory.mktemp("dash") / "shapes", domain="shapes", n=16, seed=0,
                                      resolution=16, overwrite=True)
    # Both slow jobs go in first, so the single worker is busy while the graph is seeded.
    quant = api.post("/v1/quantization/jobs", json={
        "model": "tiny:unet2d", "signal": "uniform", "num_inference_steps": 2, "eval_seeds": [1, 2],
        "calibration": {"n": 2, "sampled_steps": 2}, "budget": {"avg_weight_bits": 4, "avg_act_bits": 8}})
    assert quant.status_code == 202, quant.text
    training = api.post("/v1/training/jobs", json={"model": "tiny:unet2d-condition", "dataset": str(data),
                                                   "mode": "memlean", "steps": 2, "batch_size": 2, "eval_size": 2,
                                                   "num_samples": 0})
    assert training.status_code == 202, training.text

    models = [f"{suffix}-m{i}" for i in range(3)]
    datasets = [f"{suffix}-d{i}" for i in range(3)]
    for name in models:
        assert api.post("/v1/selection/models", json={"name": name, "family": name[-2:]}).status_code == 201
    for name in datasets:
        assert api.post("/v1/selection/datasets", json={"name": name, "size": 100}).status_code == 201
    results = [{"model": m, "dataset": d, "value": 0.5 + 0.1 * i + 0.02 * j}
               for i, m in enumerate(models) for j, d in enumerate(datasets)]
    assert api.post("/v1/selection/results", json=results).status_code == 201
    for i, a in enumerate(datasets):
        for b in datasets[i + 1:]:
            assert api.post("/v1/selection/similarities",
                            json={"dataset_a": a, "dataset_b": b, "value": 1.0}).status_code == 204
    fit = api.post("/v1/selection/fit", json={"embedding": "sage", "evaluate": False, "members": 1})
    assert fit.status_code == 202, fit.text

    jobs = {name: wait_for_job(api, response.json()["id"], timeout=300)
            for name, response in (("quantization", quant), ("training", training), ("fit", fit))}
    for name, job in jobs.items():
        assert job["status"] == "succeeded", (name, job)
    return {"models": models, "datasets": datasets, **jobs}


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=BROWSER_TIMEOUT_MS)  # the default 5 s is tight on a busy 2-core machine
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, live_gateway, keys, request):
    context = browser.new_context(base_url=live_gateway, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(BROWSER_TIMEOUT_MS)
    page = context.new_page()
    external: list[str] = []
    page.on("request", lambda r: external.append(r.url) if not r.url.startswith(live_gateway) else None)
    page.goto("/dashboard/")
    yield page
    page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    assert not external, f"the dashboard fetched outside the gateway: {external}"


def log_in(page, key: str) -> None:
    page.fill("#api-key", key)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#nav a[data-page=jobs]", state="visible")


@needs_browser
def test_login_rejects_a_bad_key_and_keeps_a_good_one(page, keys):
    from playwright.sync_api import expect

    expect(page.locator("#login-view")).to_be_visible()
    page.fill("#api-key", "atl_nope_nope")
    page.click("#login-form button[type=submit]")
    expect(page.locator("#login-error")).to_contain_text("not accepted")
    expect(page.locator("#app")).to_be_hidden()
    log_in(page, keys["write"])
    # the page shows the app and stores the key in separate steps: wait for the store, then compare
    page.wait_for_function("sessionStorage.getItem('atelier.apiKey') !== null", timeout=10_000)
    assert page.evaluate("sessionStorage.getItem('atelier.apiKey')") == keys["write"]
    page.reload()  # the key survives a reload within the tab
    expect(page.locator("#app")).to_be_visible()
    page.click("#logout")
    expect(page.locator("#login-view")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('atelier.apiKey')") is None


@needs_browser
def test_jobs_page_follows_a_job_and_cancels_one(page, keys, api, seeded, tmp_path):
    from playwright.sync_api import expect

    log_in(page, keys["write"])
    page.goto("/dashboard/#jobs")
    quant_id = seeded["quantization"]["id"]
    page.select_option("#jobs-status", "succeeded")
    page.fill("#jobs-kind", "quantization.quantize")
    page.click("#jobs-filter button[type=submit]")
    row = page.locator(f"#jobs-table tr[data-job-id='{quant_id}']")
    expect(row).to_contain_text("quantization.quantize")
    # The filter reached the API: exactly the rows the API lists for it (other tests may add some).
    listed = api.get("/v1/jobs", params={"kind": "quantization.quantize", "status": "succeeded",
                                         "limit": 100}).json()["items"]
    expect(page.locator("#jobs-table tbody tr")).to_have_count(len(listed))
    row.click()
    expect(page.locator("#job-status")).to_have_text("succeeded")
    expect(page.locator("#job-percent")).to_have_text("100%")
    # Only the SSE stream's `end` event writes this: the hand-rolled reader parsed the stream.
    expect(page.locator("#job-stream-state")).to_have_text("stream ended: succeeded")
    expect(page.locator("#cancel-job")).to_be_disabled()

    from services.common.diffusion import generate_synthetic_dataset

    data = generate_synthetic_dataset(tmp_path / "long", domain="shapes", n=16, seed=0, resolution=16,
                                      overwrite=True)
    long_job = api.post("/v1/training/jobs", json={"model": "tiny:unet2d", "dataset": str(data), "steps": 400,
                                                   "batch_size": 2, "eval_size": 2, "num_samples": 0}).json()
    try:
        page.fill("#jobs-kind", "")
        page.select_option("#jobs-status", "")
        page.click("#jobs-filter button[type=submit]")
        page.click(f"#jobs-table tr[data-job-id='{long_job['id']}']")
        expect(page.locator("#job-id")).to_have_text(long_job["id"])
        expect(page.locator("#cancel-job")).to_be_enabled()
        page.click("#cancel-job")
        expect(page.locator("#job-stream-state")).to_have_text("stream ended: cancelled", timeout=90_000)
        expect(page.locator("#job-status")).to_have_text("cancelled")
        assert wait_for_job(api, long_job["id"])["status"] == "cancelled"
    finally:  # never leave a 400-step job to hold the shared worker for the tests after this one
        api.post(f"/v1/jobs/{long_job['id']}/cancel")


@needs_browser
def test_graph_page_ranks_a_clicked_dataset(page, keys, seeded):
    from playwright.sync_api import expect

    log_in(page, keys["read"])
    page.click("#nav a[data-page=graph]")
    for name in seeded["models"]:
        expect(page.locator(f"#graph-svg g.node.model[data-name='{name}']")).to_have_count(1)
    target = seeded["datasets"][0]
    node = page.locator(f"#graph-svg g.node.dataset[data-name='{target}']")
    expect(node).to_have_count(1)
    assert page.locator("#graph-svg line.edge").count() >= len(seeded["models"]) * len(seeded["datasets"])
    node.click()
    expect(page.locator("#ranking-dataset")).to_have_text(target)
    rows = page.locator("#ranking-table tbody tr")
    expect(rows.first).to_be_visible()
    assert rows.count() >= len(seeded["models"])
    # The best model is the one seeded with the highest results everywhere; its row explains itself.
    expect(rows.first).to_contain_text(seeded["models"][-1])
    expect(rows.first.locator("td").nth(3)).to_contain_text("distance")
    expect(page.locator("#ranking-predictor")).not_to_be_empty()
    expect(node).to_have_class(re.compile(r"\bselected\b"))


@needs_browser
def test_quantization_page_shows_heatmap_and_bits(page, keys, seeded):
    from playwright.sync_api import expect

    log_in(page, keys["write"])
    page.click("#nav a[data-page=quantization]")
    job = seeded["quantization"]
    page.wait_for_selector(f"#quant-job option[value='{job['id']}']", state="attached")
    page.select_option("#quant-job", job["id"])
    layers, matrix = job["result"]["layers"], job["result"]["importance_matrix"]
    expect(page.locator("#heatmap rect.cell")).to_have_count(len(matrix) * len(matrix[0]))
    rows = page.locator("#bits-table tbody tr")
    expect(rows).to_have_count(len(layers))
    expect(rows.first.locator("td").first).to_have_text(layers[0]["name"])
    expect(rows.first.locator("td").nth(1)).to_have_text(str(layers[0]["weight_bits"]))


@needs_browser
def test_training_page_draws_loss_and_memory_curves(page, keys, seeded):
    from playwright.sync_api import expect

    log_in(page, keys["write"])
    page.click("#nav a[data-page=training]")
    job = seeded["training"]
    page.wait_for_selector(f"#training-job option[value='{job['id']}']", state="attached")
    page.select_option("#training-job", job["id"])
    result = job["result"]
    loss = page.locator("#loss-chart polyline")
    expect(loss).to_have_attribute("data-points", str(len(result["loss_curve"])))
    assert len(loss.get_attribute("points").split()) == len(result["loss_curve"]) == 2
    expect(page.locator("#memory-chart polyline")).to_have_attribute("data-points", str(len(result["memory_curve"])))
    expect(page.locator("#training-summary")).to_contain_text(f"{result['steps_done']} steps")
