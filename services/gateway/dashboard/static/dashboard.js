// Atelier dashboard: one page, plain DOM. Every API call carries the key from sessionStorage.
"use strict";

const KEY_STORAGE = "atelier.apiKey";
const SVG_NS = document.getElementById("svg-namespace").content.firstElementChild.namespaceURI;
const $ = (id) => document.getElementById(id);

let activeStream = null; // the AbortController of the job event stream being followed

// ------------------------------------------------------------------ API
class ApiError extends Error {
  constructor(status, detail) { super(detail); this.status = status; }
}

function apiKey() { return sessionStorage.getItem(KEY_STORAGE); }

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${options.key || apiKey()}`, Accept: "application/json" };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method: options.method || "GET", headers, signal: options.signal,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  if (!response.ok) {
    let detail = response.statusText;
    try { const problem = await response.json(); detail = problem.detail || problem.title || detail; } catch (_) { /* not JSON */ }
    if (response.status === 401 && !options.key) logout();
    throw new ApiError(response.status, `${response.status}: ${detail}`);
  }
  return response.status === 204 ? null : response.json();
}

function showError(err) { $("error").textContent = err ? String(err.message || err) : ""; }

// ------------------------------------------------------------------ DOM helpers
function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function svgEl(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function row(cells, attrs = {}) {
  const tr = el("tr", attrs);
  for (const cell of cells) tr.appendChild(el("td", {}, cell === null || cell === undefined ? "" : String(cell)));
  return tr;
}

function fmt(x, digits = 4) { return typeof x === "number" ? Number(x.toPrecision(digits)).toString() : String(x ?? ""); }

// ------------------------------------------------------------------ login / routing
function logout() {
  sessionStorage.removeItem(KEY_STORAGE);
  stopStream();
  render();
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const key = $("api-key").value.trim();
  $("login-error").textContent = "";
  try {
    await api("/v1/jobs?limit=1", { key }); // proves the key works before it is kept
    sessionStorage.setItem(KEY_STORAGE, key);
    $("api-key").value = "";
    if (!location.hash) location.hash = "#jobs";
    render();
  } catch (err) {
    $("login-error").textContent = err.status === 401 ? "That key was not accepted." : String(err.message);
  }
});
$("logout").addEventListener("click", logout);
window.addEventListener("hashchange", render);

const PAGES = { jobs: showJobs, graph: showGraph, quantization: showQuantization, training: showTraining };

function render() {
  const loggedIn = Boolean(apiKey());
  $("login-view").hidden = loggedIn;
  $("app").hidden = !loggedIn;
  $("nav").hidden = !loggedIn;
  if (!loggedIn) return;
  const page = PAGES[location.hash.slice(1)] ? location.hash.slice(1) : "jobs";
  for (const section of document.querySelectorAll(".page")) section.hidden = section.id !== `page-${page}`;
  for (const link of document.querySelectorAll("nav a")) link.classList.toggle("active", link.dataset.page === page);
  if (page !== "jobs") stopStream();
  showError(null);
  PAGES[page]().catch(showError);
}

// ------------------------------------------------------------------ jobs
async function listJobs(params) {
  const query = new URLSearchParams({ limit: "100" });
  for (const [k, v] of Object.entries(params)) if (v) query.set(k, v);
  return (await api(`/v1/jobs?${query}`)).items;
}

async function showJobs() {
  const jobs = await listJobs({ kind: $("jobs-kind").value.trim(), status: $("jobs-status").value });
  const body = $("jobs-table").querySelector("tbody");
  body.replaceChildren();
  for (const job of jobs) {
    const tr = row([job.id, job.kind, job.status, `${Math.round(job.progress * 100)}%`, job.created_at],
                   { "data-job-id": job.id });
    tr.addEventListener("click", () => selectJob(job.id));
    body.appendChild(tr);
  }
}
$("jobs-filter").addEventListener("submit", (event) => { event.preventDefault(); showJobs().catch(showError); });

function showJobState(job) {
  $("job-id").textContent = job.id;
  $("job-kind").textContent = job.kind;
  $("job-status").textContent = job.status;
  $("job-stage").textContent = job.stage || "";
  $("job-progress").value = job.progress || 0;
  $("job-percent").textContent = `${Math.round((job.progress || 0) * 100)}%`;
  $("job-error").textContent = job.error ? (job.error.detail || JSON.stringify(job.error)) : "";
  $("cancel-job").disabled = ["succeeded", "failed", "cancelled"].includes(job.status) || job.cancel_requested;
  const tr = document.querySelector(`#jobs-table tr[data-job-id="${CSS.escape(job.id)}"]`);
  if (tr) tr.children[2].textContent = job.status;
}

async function selectJob(jobId) {
  for (const tr of document.querySelectorAll("#jobs-table tr[data-job-id]")) {
    tr.classList.toggle("selected", tr.dataset.jobId === jobId);
  }
  $("job-detail").hidden = false;
  $("job-detail").dataset.jobId = jobId;
  showJobState(await api(`/v1/jobs/${encodeURIComponent(jobId)}`));
  followJob(jobId);
}

function stopStream() {
  if (activeStream) activeStream.abort();
  activeStream = null;
}

// EventSource cannot send an Authorization header, so the stream is read with fetch and parsed here.
async function followJob(jobId) {
  stopStream();
  const controller = new AbortController();
  activeStream = controller;
  $("job-stream-state").textContent = "following live progress...";
  try {
    const response = await fetch(`/v1/jobs/${encodeURIComponent(jobId)}/events?poll_s=0.2`, {
      headers: { Authorization: `Bearer ${apiKey()}`, Accept: "text/event-stream" }, signal: controller.signal,
    });
    if (!response.ok) throw new ApiError(response.status, `${response.status}: event stream refused`);
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const event = parseSseEvent(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (event.type === "progress" && $("job-detail").dataset.jobId === jobId) showJobState(JSON.parse(event.data));
        if (event.type === "end") $("job-stream-state").textContent = `stream ended: ${JSON.parse(event.data).status}`;
      }
    }
  } catch (err) {
    if (err.name !== "AbortError") $("job-stream-state").textContent = `stream failed: ${err.message}`;
  } finally {
    if (activeStream === controller) activeStream = null;
  }
}

function parseSseEvent(block) {
  const event = { type: "message", data: "" };
  const data = [];
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue; // comment / keep-alive
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") event.type = value;
    else if (field === "data") data.push(value);
    else if (field === "id") event.id = value;
  }
  event.data = data.join("\n");
  return event;
}

$("cancel-job").addEventListener("click", async () => {
  const jobId = $("job-detail").dataset.jobId;
  try {
    showJobState(await api(`/v1/jobs/${encodeURIComponent(jobId)}/cancel`, { method: "POST" }));
  } catch (err) { showError(err); }
});

// ------------------------------------------------------------------ graph
async function showGraph() {
  const graph = await api("/v1/selection/graph");
  const v = graph.version;
  $("graph-version").textContent = v ? `graph version ${v.id}${graph.stale ? " (stale: data changed since the fit)" : ""}`
                                     : "no graph fitted yet";
  const models = graph.nodes.filter((n) => n.type === "model");
  const datasets = graph.nodes.filter((n) => n.type === "dataset");
  const gap = 34, top = 30, width = 760;
  const height = top * 2 + gap * Math.max(models.length, datasets.length, 1);
  const svg = $("graph-svg");
  svg.replaceChildren();
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.appendChild(svgEl("text", { x: 150, y: 18, class: "axis-label", "text-anchor": "middle" }, "models"));
  svg.appendChild(svgEl("text", { x: 610, y: 18, class: "axis-label", "text-anchor": "middle" }, "datasets"));
  const position = {};
  models.forEach((n, i) => { position[n.id] = { x: 150, y: top + gap * (i + 0.5) }; });
  datasets.forEach((n, i) => { position[n.id] = { x: 610, y: top + gap * (i + 0.5) }; });
  const edges = svgEl("g", { class: "edges" });
  for (const e of graph.edges) {
    if (e.type !== "finetune" || !position[e.source] || !position[e.target]) continue;
    const a = position[e.source], b = position[e.target];
    const line = svgEl("line", { class: "edge", x1: a.x, y1: a.y, x2: b.x, y2: b.y });
    line.appendChild(svgEl("title", {}, `${e.metric}: ${fmt(e.value)}`));
    edges.appendChild(line);
  }
  svg.appendChild(edges);
  for (const n of [...models, ...datasets]) {
    const p = position[n.id];
    const left = n.type === "model";
    const g = svgEl("g", { class: `node ${n.type}`, "data-name": n.name, "data-id": n.id });
    g.appendChild(svgEl("circle", { cx: p.x, cy: p.y, r: 8 }));
    g.appendChild(svgEl("text", { x: left ? p.x - 14 : p.x + 14, y: p.y + 4, "text-anchor": left ? "end" : "start" },
                        n.name));
    if (n.type === "dataset") g.addEventListener("click", () => rankFor(n.name, g).catch(showError));
    svg.appendChild(g);
  }
}

async function rankFor(dataset, node) {
  for (const g of document.querySelectorAll("#graph-svg .node")) g.classList.toggle("selected", g === node);
  const ranked = await api("/v1/selection/rank", { method: "POST", body: { dataset, k: 5 } });
  $("ranking").hidden = false;
  $("ranking-dataset").textContent = ranked.dataset;
  $("ranking-predictor").textContent = ranked.predictor_version;
  const body = $("ranking-table").querySelector("tbody");
  body.replaceChildren();
  for (const r of ranked.ranking) {
    const x = r.explanation || {};
    const similar = (x.similar_datasets || []).map((d) => `${d.dataset} (distance ${fmt(d.distance, 3)})`).join(", ");
    const evidence = [["similarity-weighted quality", x.similarity_weighted_quality],
                      ["mean quality elsewhere", x.mean_quality_elsewhere],
                      ["results elsewhere", x.results_elsewhere], ["graph score", x.graph_score]]
      .filter(([, v]) => v !== null && v !== undefined).map(([k, v]) => `${k} ${fmt(v, 3)}`).join("; ");
    body.appendChild(row([r.rank, r.model, fmt(r.score), similar, evidence], { "data-model": r.model }));
  }
}

// ------------------------------------------------------------------ job pickers
async function fillJobPicker(select, kindPrefix) {
  const jobs = (await listJobs({ status: "succeeded" })).filter((j) => j.kind.startsWith(kindPrefix));
  const chosen = select.value;
  select.replaceChildren(el("option", { value: "" }, jobs.length ? "choose a succeeded job" : "no succeeded jobs yet"));
  for (const job of jobs) select.appendChild(el("option", { value: job.id }, `${job.id} (${job.created_at})`));
  if (jobs.some((j) => j.id === chosen)) select.value = chosen;
}

// ------------------------------------------------------------------ quantization
async function showQuantization() {
  await fillJobPicker($("quant-job"), "quantization.quantize");
  if ($("quant-job").value) await showQuantJob($("quant-job").value);
}
$("quant-job").addEventListener("change", () => showQuantJob($("quant-job").value).catch(showError));

function heatColour(t) { // 0 -> pale yellow, 1 -> deep red
  const r = 255, g = Math.round(240 - 200 * t), b = Math.round(200 - 180 * t);
  return `rgb(${r},${g},${b})`;
}

async function showQuantJob(jobId) {
  $("quant-detail").hidden = !jobId;
  if (!jobId) return;
  const job = await api(`/v1/jobs/${encodeURIComponent(jobId)}`);
  const result = job.result || {};
  const matrix = result.importance_matrix || [];
  const layers = result.layers || [];
  $("quant-summary").textContent = `signal ${result.signal ?? "?"}, average weight bits ${fmt(result.avg_weight_bits, 3)}, `
    + `${layers.length} layers, sampled steps ${(result.sampled_steps || []).join(", ")}`;
  const steps = matrix.length ? matrix[0].length : 0;
  const cell = 18, labelWidth = 260, top = 24;
  const values = matrix.flat();
  const lo = Math.min(...values), hi = Math.max(...values);
  const svg = $("heatmap");
  svg.replaceChildren();
  const width = labelWidth + cell * steps + 10, height = top + cell * matrix.length + 10;
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  (result.sampled_steps || []).forEach((s, j) => svg.appendChild(
    svgEl("text", { x: labelWidth + cell * j + cell / 2, y: top - 6, class: "axis-label", "text-anchor": "middle" }, s)));
  matrix.forEach((rowValues, i) => {
    const name = layers[i] ? layers[i].name : `layer ${i}`;
    svg.appendChild(svgEl("text", { x: labelWidth - 6, y: top + cell * i + cell * 0.7, class: "axis-label",
                                    "text-anchor": "end" }, name));
    rowValues.forEach((v, j) => {
      const t = hi > lo ? (v - lo) / (hi - lo) : 0.5;
      const rect = svgEl("rect", { class: "cell", x: labelWidth + cell * j, y: top + cell * i, width: cell - 1,
                                   height: cell - 1, fill: heatColour(t), "data-layer": i, "data-step": j });
      rect.appendChild(svgEl("title", {}, `${name}, step ${j}: ${fmt(v)}`));
      svg.appendChild(rect);
    });
  });
  const body = $("bits-table").querySelector("tbody");
  body.replaceChildren();
  for (const layer of layers) {
    const act = Array.isArray(layer.act_bits) ? layer.act_bits.join(" / ") : layer.act_bits;
    body.appendChild(row([layer.name, layer.weight_bits, act, fmt(layer.importance)], { "data-layer": layer.name }));
  }
}

// ------------------------------------------------------------------ training
async function showTraining() {
  await fillJobPicker($("training-job"), "training.");
  if ($("training-job").value) await showTrainingJob($("training-job").value);
}
$("training-job").addEventListener("change", () => showTrainingJob($("training-job").value).catch(showError));

function drawCurve(svg, points, yLabel) {
  const width = 520, height = 220, pad = 44;
  svg.replaceChildren();
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  if (!points.length) {
    svg.appendChild(svgEl("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "axis-label" },
                          "no data recorded"));
    return;
  }
  const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
  const sx = (x) => pad + (x1 > x0 ? (x - x0) / (x1 - x0) : 0.5) * (width - 2 * pad);
  const sy = (y) => height - pad - (y1 > y0 ? (y - y0) / (y1 - y0) : 0.5) * (height - 2 * pad);
  svg.appendChild(svgEl("line", { class: "axis", x1: pad, y1: height - pad, x2: width - pad, y2: height - pad }));
  svg.appendChild(svgEl("line", { class: "axis", x1: pad, y1: pad, x2: pad, y2: height - pad }));
  svg.appendChild(svgEl("text", { x: width / 2, y: height - 10, "text-anchor": "middle", class: "axis-label" },
                        `step ${x0} to ${x1}`));
  svg.appendChild(svgEl("text", { x: 4, y: pad - 10, class: "axis-label" }, `${yLabel}: ${fmt(y0, 3)} to ${fmt(y1, 3)}`));
  svg.appendChild(svgEl("polyline", { points: points.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" "),
                                      "data-points": points.length }));
}

async function showTrainingJob(jobId) {
  $("training-detail").hidden = !jobId;
  if (!jobId) return;
  const job = await api(`/v1/jobs/${encodeURIComponent(jobId)}`);
  const result = job.result || {};
  $("training-summary").textContent = `${result.steps_done ?? "?"} steps, final validation loss `
    + `${fmt(result.final_val_loss)}, peak memory ${fmt((result.peak_memory_bytes || 0) / 2 ** 20, 4)} MiB`;
  drawCurve($("loss-chart"), (result.loss_curve || []).map((p) => [p.step, p.loss]), "loss");
  drawCurve($("memory-chart"), (result.memory_curve || []).map((p) => [p.step, p.peak_bytes / 2 ** 20]), "MiB");
}

render();
