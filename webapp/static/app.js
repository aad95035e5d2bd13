// The example page: plain JavaScript, no build step, no network access beyond this web app.
// The browser never talks to Triton: every call goes to /api/* on the same origin.
"use strict";

const $ = (selector) => document.querySelector(selector);
const STATUS_EVERY_MS = 5000;
const DEBOUNCE_MS = 200;

let config = null;

// ---------------------------------------------------------------------------------------
// helpers

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.includes("-") || key === "role") node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

function pct(score) {
  const value = Math.max(0, Math.min(1, Number(score) || 0));
  return (value * 100).toFixed(value >= 0.995 || value < 0.0005 ? 0 : 1) + "%";
}

function bar(score) {
  const width = Math.max(0, Math.min(1, Number(score) || 0)) * 100;
  const fill = el("span");
  fill.style.width = width.toFixed(1) + "%";
  return el("div", { class: "bar-row" },
    el("div", { class: "bar", role: "img", "aria-label": pct(score) }, fill),
    el("span", { class: "pct", text: pct(score) }));
}

function ms(value) {
  if (value === null || value === undefined) return "–";
  return value >= 1000 ? (value / 1000).toFixed(2) + " s" : Math.round(value) + " ms";
}

function bytes(size) {
  if (size >= 1024 * 1024) return (size / (1024 * 1024)).toFixed(1) + " MB";
  if (size >= 1024) return Math.round(size / 1024) + " KB";
  return size + " bytes";
}

function showError(node, message) {
  if (message) {
    node.textContent = message;
    node.hidden = false;
  } else {
    node.textContent = "";
    node.hidden = true;
  }
}

// Fetch JSON from the web app; failures become {ok:false, message} in plain words.
async function callApi(url, options = {}) {
  let response;
  try {
    response = await fetch(url, options);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    return { ok: false, status: 0, body: null,
      message: "The web app is not reachable: is `make webapp` still running?" };
  }
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    body = null;
  }
  if (response.ok) return { ok: true, status: response.status, body };
  let message = body && body.error && body.error.message;
  if (!message) {
    message = response.status === 413
      ? "That is too large for the web app to accept."
      : `The web app answered with an error (HTTP ${response.status}).`;
  }
  return { ok: false, status: response.status, body, message, code: body && body.error && body.error.code };
}

// ---------------------------------------------------------------------------------------
// status strip

function statsText(stats) {
  if (!stats || !(stats.success || stats.fail)) return "no requests yet";
  const parts = [`${stats.success} ok`];
  if (stats.fail) parts.push(`${stats.fail} failed`);
  if (stats.avg_ms !== null && stats.avg_ms !== undefined) parts.push(`avg ${ms(stats.avg_ms)}`);
  return parts.join(" · ");
}

function renderStatus(result) {
  const body = result.body || {};
  const server = body.server || {};
  const pill = $("#server-pill");
  const text = $("#server-text");
  const url = server.url || (config && config.triton_url) || "";
  if (!result.ok && !body.server) {
    pill.className = "pill pill-bad";
    text.textContent = result.message;
  } else if (!server.reachable) {
    pill.className = "pill pill-bad";
    text.textContent = (body.error && body.error.message) || `Scoring server ${url} not reachable`;
  } else {
    const ok = server.live && server.ready;
    pill.className = "pill " + (ok ? "pill-ok" : "pill-warn");
    text.textContent = `Triton ${url}: ${server.live ? "live" : "not live"}, ${server.ready ? "ready" : "not ready"}`;
  }
  pill.dataset.reachable = String(Boolean(server.reachable));

  const pills = $("#model-pills");
  pills.replaceChildren();
  const rows = [];
  for (const model of [...(body.models || []), ...(body.components || [])]) {
    if (model.role !== "component") {
      const cls = model.ready ? "pill-ok" : (server.reachable ? "pill-bad" : "");
      const title = model.reason ? `${model.state}: ${model.reason}` : model.state;
      pills.append(el("span", { class: `pill ${cls}`, title, "data-model": model.name, "data-ready": String(model.ready) },
        el("span", { class: "dot" }),
        el("span", { text: model.name }),
        el("small", { text: model.ready ? statsText(model.stats) : (model.state || "").toLowerCase() })));
    }
    const s = model.stats || {};
    rows.push(el("tr", {},
      el("td", { text: model.name }),
      el("td", { text: model.state + (model.reason ? ` (${model.reason})` : "") }),
      el("td", { text: s.success ?? "–" }),
      el("td", { text: s.fail ?? "–" }),
      el("td", { text: ms(s.avg_ms) })));
  }
  $("#status-table tbody").replaceChildren(...rows);
  const notes = [];
  if (body.index_error) notes.push(`Repository index unavailable: ${body.index_error}`);
  if (body.latency_ms !== undefined && body.latency_ms !== null) notes.push(`status read in ${ms(body.latency_ms)}`);
  $("#status-note").textContent = notes.join(" · ");
  document.body.dataset.serverReachable = String(Boolean(server.reachable));
}

async function pollStatus() {
  const result = await callApi("/api/status");
  renderStatus(result);
  setTimeout(pollStatus, STATUS_EVERY_MS);
}

// ---------------------------------------------------------------------------------------
// FAQ: as you type

const faq = { timer: null, controller: null, seq: 0 };

function renderMatches(body, roundTripMs) {
  const list = $("#faq-results");
  const confident = body.matched !== false;  // false: the FAQ does not answer it; suggestions only
  const items = body.matches.map((match, i) =>
    el("li", { class: i === 0 && confident ? "best" : "", "data-faq-id": String(match.faq_id) },
      el("span", { class: "rank", text: String(i + 1) }),
      el("div", {},
        el("div", { class: "faq-question", text: match.question }),
        bar(match.score),
        el("div", { class: "faq-answer", text: match.answer, title: "click to show all",
          onclick: (event) => event.currentTarget.classList.toggle("open") }),
        el("div", { class: "faq-id muted", text: `FAQ #${match.faq_id}` }))));
  const note = confident ? [] : [el("li", { class: "no-match", text: "No good match in the FAQ. Did you mean one of these?" })];
  list.replaceChildren(...note, ...items);
  $("#faq-meta").textContent = body.matches.length
    ? `${body.matches.length} ${confident ? "matches" : "suggestions"} · ${body.model} ${ms(body.latency_ms)} · round trip ${ms(roundTripMs)}`
    : "No matches.";
}

async function askNow(text) {
  if (faq.controller) faq.controller.abort();
  const seq = ++faq.seq;
  const card = $("#faq-card");
  if (!text.trim()) {
    card.dataset.state = "idle";
    $("#faq-results").replaceChildren();
    $("#faq-meta").textContent = "Matches appear as you type.";
    showError($("#faq-error"), null);
    return;
  }
  if (config && text.trim().length > config.max_question_chars) {
    card.dataset.state = "error";
    showError($("#faq-error"),
      `Your question is too long (${text.trim().length} characters): the limit is ${config.max_question_chars} characters. Shorten it and try again.`);
    return;
  }
  faq.controller = new AbortController();
  card.dataset.state = "loading";
  $("#faq-results").classList.add("busy");
  const started = performance.now();
  let result;
  try {
    result = await callApi("/api/faq", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ text }),
      signal: faq.controller.signal,
    });
  } catch (err) {
    return; // aborted: a newer question is on its way
  }
  if (seq !== faq.seq) return;
  $("#faq-results").classList.remove("busy");
  if (!result.ok) {
    card.dataset.state = "error";
    showError($("#faq-error"), result.message);
    return;
  }
  showError($("#faq-error"), null);
  renderMatches(result.body, performance.now() - started);
  card.dataset.state = "done";
  card.dataset.query = text;
}

function onQuestionInput() {
  const text = $("#faq-input").value;
  const counter = $("#faq-counter");
  const limit = config ? config.max_question_chars : 0;
  counter.textContent = limit ? `${text.trim().length} / ${limit}` : "";
  counter.classList.toggle("over", Boolean(limit) && text.trim().length > limit);
  clearTimeout(faq.timer);
  faq.timer = setTimeout(() => askNow(text), DEBOUNCE_MS);
}

// ---------------------------------------------------------------------------------------
// images: drop or choose, one column per ensemble

function modelColumn(model) {
  const warning = /random|meaningless/i.test(model.note || "");
  return el("div", { class: "model-col", "data-model": model.name },
    el("h3", {}, el("span", { text: model.name }), el("span", { class: "latency", text: "" })),
    model.note ? el("p", { class: "note" + (warning ? " warning" : ""), text: model.note }) : null,
    el("div", { class: "model-body" }, el("p", { class: "placeholder", text: "Waiting for an image." })));
}

function setupColumns() {
  $("#model-grid").replaceChildren(...config.image_models.map(modelColumn));
}

function renderModelResult(result) {
  const col = document.querySelector(`.model-col[data-model="${CSS.escape(result.model)}"]`);
  if (!col) return;
  col.querySelector(".latency").textContent = ms(result.latency_ms);
  col.dataset.state = result.ok ? "done" : "error";
  const body = col.querySelector(".model-body");
  if (!result.ok) {
    body.replaceChildren(el("div", { class: "alert small", role: "alert", text: result.error.message }));
    return;
  }
  body.replaceChildren(el("ol", { class: "top5" }, ...result.top.map((c) =>
    el("li", { "data-class-id": String(c.class_id) },
      el("div", { class: "label", title: c.label },
        el("span", { text: c.label }), " ", el("span", { class: "class-id", text: `#${c.class_id}` })),
      bar(c.score)))));
}

function resetColumns(text) {
  for (const col of document.querySelectorAll(".model-col")) {
    col.dataset.state = "loading";
    col.querySelector(".latency").textContent = "";
    col.querySelector(".model-body").replaceChildren(el("p", { class: "placeholder", text }));
  }
}

function showPreview(file) {
  const img = $("#preview");
  if (img.src) URL.revokeObjectURL(img.src);
  img.hidden = true;
  img.onload = () => { img.hidden = false; };
  img.onerror = () => { img.hidden = true; };
  img.src = URL.createObjectURL(file);
  $("#file-info").textContent = `${file.name || "image"} · ${bytes(file.size)}`;
}

async function classify(file) {
  const card = $("#image-card");
  showError($("#image-error"), null);
  showPreview(file);
  if (file.size > config.max_upload_bytes) {
    card.dataset.state = "error";
    resetColumns("Not sent.");
    showError($("#image-error"),
      `The file is too large (${bytes(file.size)}): images up to ${bytes(config.max_upload_bytes)} are accepted.`);
    return;
  }
  card.dataset.state = "loading";
  resetColumns("Classifying…");
  $("#image-meta").textContent = `Sending ${file.name || "image"} to ${config.image_models.length} models…`;
  const form = new FormData();
  form.append("image", file, file.name || "image");
  const started = performance.now();
  const result = await callApi("/api/classify", { method: "POST", body: form });
  const roundTrip = performance.now() - started;
  const body = result.body || {};
  for (const r of body.results || []) renderModelResult(r);
  if (!result.ok) {
    card.dataset.state = "error";
    if (!body.results) resetColumns("No result.");
    showError($("#image-error"), result.message);
    $("#image-meta").textContent = `No model could classify ${file.name || "this file"} · round trip ${ms(roundTrip)}`;
    return;
  }
  card.dataset.state = "done";
  $("#image-meta").textContent =
    `${body.file.name} (${bytes(body.file.bytes)}) · all models ${ms(body.latency_ms)} · round trip ${ms(roundTrip)}`;
}

function setupDropzone() {
  const zone = $("#dropzone");
  const input = $("#file-input");
  zone.addEventListener("click", (event) => {
    if (event.target.tagName !== "LABEL" && event.target !== input) input.click();
  });
  zone.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") { event.preventDefault(); input.click(); }
  });
  input.addEventListener("change", () => {
    if (input.files.length) classify(input.files[0]);
    input.value = "";
  });
  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, (event) => { event.preventDefault(); zone.classList.add("over"); });
  }
  for (const type of ["dragleave", "drop"]) {
    zone.addEventListener(type, (event) => { event.preventDefault(); zone.classList.remove("over"); });
  }
  zone.addEventListener("drop", (event) => {
    const files = event.dataTransfer && event.dataTransfer.files;
    if (files && files.length) classify(files[0]);
  });
  // a file dropped next to the zone must not navigate away from the page
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());
}

async function setupSamples() {
  const result = await callApi("/api/samples");
  if (!result.ok || !result.body.samples.length) return;
  const buttons = result.body.samples.map((sample) =>
    el("button", { type: "button", class: "chip", text: sample.name, "data-sample": sample.name,
      onclick: async () => {
        const response = await fetch(sample.url);
        const blob = await response.blob();
        const ext = sample.url.split(".").pop();
        classify(new File([blob], `${sample.name}.${ext}`, { type: blob.type }));
      } }));
  $("#sample-buttons").replaceChildren(...buttons);
  $("#samples").hidden = false;
}

// ---------------------------------------------------------------------------------------

async function init() {
  const result = await callApi("/api/config");
  if (!result.ok) {
    showError($("#faq-error"), result.message);
    return;
  }
  config = result.body;
  $("#faq-model").textContent = `model: ${config.faq_model}`;
  $("#image-limit").textContent = `images up to ${bytes(config.max_upload_bytes)}`;
  setupColumns();
  setupDropzone();
  const input = $("#faq-input");
  input.addEventListener("input", onQuestionInput);
  for (const chip of document.querySelectorAll("#faq-examples .chip")) {
    chip.addEventListener("click", () => { input.value = chip.textContent; onQuestionInput(); input.focus(); });
  }
  document.body.dataset.ready = "true";
  pollStatus();
  setupSamples();
}

document.addEventListener("DOMContentLoaded", init);
