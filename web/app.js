// The Images page: plain JavaScript over boxwright serve's API (no
// framework, no network beyond this server). Build progress is the
// `--progress json` event stream, relayed as Server-Sent Events.
"use strict";

const $ = (sel) => document.querySelector(sel);
let token = sessionStorage.getItem("boxwright-token") || "";

async function api(method, path, body, retried) {
  const headers = {};
  if (token) headers["Authorization"] = "Bearer " + token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 401 && !retried) {
    // Off loopback the server wants its token (serve --token-file).
    const t = prompt("This server needs its access token:");
    if (t) { token = t.trim(); sessionStorage.setItem("boxwright-token", token); return api(method, path, body, true); }
  }
  api.lastHeaders = res.headers;
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  if (!res.ok) throw new Error((data && data.error) || res.status + " " + res.statusText);
  return data;
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "onclick") e.addEventListener("click", v);
    else if (v !== null && v !== undefined) e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let u = 0;
  while (n >= 1024 && u < units.length - 1) { n /= 1024; u++; }
  return (u === 0 ? n : n.toFixed(1)) + " " + units[u];
}

function ago(iso) {
  if (!iso) return "";
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  const [n, unit] = s < 60 ? [s, "second"] : s < 3600 ? [s / 60, "minute"] : s < 86400 ? [s / 3600, "hour"] : [s / 86400, "day"];
  const k = Math.floor(n);
  return k + " " + unit + (k === 1 ? "" : "s") + " ago";
}

// ---- images ----------------------------------------------------------------

async function loadImages() {
  const tbody = $("#images tbody");
  const status = $("#images-status");
  status.textContent = "Loading…";
  try {
    const images = await api("GET", "/api/images");
    const registry = api.lastHeaders.get("X-Boxwright-Registry");
    const registryError = api.lastHeaders.get("X-Boxwright-Registry-Error");
    // With an org, builds go there by default (the server does the same
    // when a request leaves push out); set once, so the user's choice stays.
    if (registry && !loadImages.pushDefaulted) {
      loadImages.pushDefaulted = true;
      $("#push").checked = true;
    }
    tbody.replaceChildren();
    const msgs = [];
    if (registryError) msgs.push("Registry " + registry + " cannot be reached: " + registryError);
    if (images.length === 0) msgs.push("No images yet: build one with New image.");
    status.textContent = msgs.join(" ");
    for (const img of images) {
      const row = el("tr", { "data-name": img.name },
        el("td", {}, img.name),
        el("td", { class: "mono" }, (img.digest || "").slice(7, 19)),
        el("td", { class: "num" }, bytes(img.size || 0)),
        el("td", {}, ago(img.created)),
        el("td", {}, img.default ? "★ default" : ""),
        el("td", { class: "row-actions" },
          el("button", { type: "button", onclick: () => cloneImage(img.name) }, "Clone"),
          el("button", { type: "button", onclick: () => setDefault(img.name), "aria-label": "Set " + img.name + " as default" }, "Set default"),
          el("button", { type: "button", class: "danger", onclick: () => deleteImage(img.name) }, "Delete")));
      tbody.append(row);
    }
  } catch (e) {
    status.textContent = "Cannot list images: " + e.message;
  }
}

async function setDefault(name) {
  try { await api("POST", "/api/images/default", { name }); await loadImages(); }
  catch (e) { $("#images-status").textContent = "Cannot set the default: " + e.message; }
}

async function deleteImage(name) {
  if (!confirm("Delete " + name + "?")) return;
  try { await api("DELETE", "/api/images?name=" + encodeURIComponent(name)); await loadImages(); }
  catch (e) { $("#images-status").textContent = "Cannot delete " + name + ": " + e.message; }
}

let clonedRecipe = null;

async function cloneImage(name) {
  try {
    const data = await api("POST", "/api/images/clone", { name });
    clonedRecipe = data.recipe;
    openForm();
    $("#tag").value = name.replace(/:[^:/]*$/, "") + "-copy";
    $("#form-error").textContent = "Cloned the recipe of " + name + ": Build makes a new image from it.";
  } catch (e) {
    $("#images-status").textContent = "Cannot clone " + name + ": " + e.message;
  }
}

// ---- the build form --------------------------------------------------------

let catalog = null;

async function loadCatalog() {
  catalog = await api("GET", "/api/catalog");
  const tpl = $("#template");
  for (const t of catalog.templates) tpl.append(el("option", { value: t.name }, t.title + " — " + t.name));
  const rts = $("#runtimes");
  for (const r of catalog.runtimes) {
    const sel = el("select", { "data-runtime": r.name, "aria-label": r.title + " version" }, el("option", { value: "" }, "—"));
    for (const v of r.versions) sel.append(el("option", { value: v }, v));
    rts.append(el("label", { class: "field small" }, r.title, sel));
  }
  const tools = $("#ai-tools");
  for (const t of catalog.ai_tools) tools.append(el("label", { class: "check" }, el("input", { type: "checkbox", "data-tool": t.name }), " " + t.name));
}

function mode() { return document.querySelector("input[name=mode]:checked").value; }

function showMode() {
  const m = mode();
  for (const d of document.querySelectorAll("[data-mode]")) d.hidden = !d.dataset.mode.split(" ").includes(m);
}

function openForm() {
  $("#form-error").textContent = "";
  showMode();
  $("#build-dialog").showModal();
  $("#tag").focus();
}

let searchTimer = null;
function searchPackages() {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(async () => {
    const word = $("#pkg-search").value.trim();
    const out = $("#pkg-results");
    out.replaceChildren();
    if (!word) return;
    const data = await api("GET", "/api/catalog/packages?search=" + encodeURIComponent(word));
    if (data.results.length === 0) { out.append(el("li", {}, "No package matches “" + word + "”: type apt names below.")); return; }
    for (const r of data.results) {
      for (const p of r.packages) {
        out.append(el("li", {}, el("button", { type: "button", "data-package": p, onclick: () => addPackage(p) }, "+ " + p), " ", el("small", {}, r.title)));
      }
    }
  }, 150);
}

function addPackage(p) {
  const input = $("#packages");
  const list = input.value.split(/\s+/).filter(Boolean);
  if (!list.includes(p)) list.push(p);
  input.value = list.join(" ");
}

function words(sel) { return $(sel).value.split(/\s+/).filter(Boolean); }

function formBody() {
  const m = mode();
  const tag = $("#tag").value.trim();
  const body = { tag, push: $("#push").checked };
  if (clonedRecipe !== null) { body.recipe = clonedRecipe; return body; }
  if (m === "byoi") { body.form = { mode: "byoi", image: $("#byoi-image").value.trim() }; return body; }
  const form = { mode: m };
  const t = $("#template").value;
  if (t) form.template = t;
  if (m === "template") { if (!t) throw new Error("pick a template"); body.form = form; return body; }
  const runtimes = {};
  for (const s of document.querySelectorAll("[data-runtime]")) if (s.value) runtimes[s.dataset.runtime] = s.value;
  form.runtimes = runtimes;
  form.packages = words("#packages");
  form.ai_tools = [...document.querySelectorAll("[data-tool]:checked")].map((c) => c.dataset.tool);
  const custom = $("#custom-tool").value.trim();
  if (custom) {
    const i = custom.indexOf(":");
    if (i < 1) throw new Error("write a custom tool as name: install command");
    form.custom_ai_tools = [{ name: custom.slice(0, i).trim(), run: custom.slice(i + 1).trim() }];
  }
  form.extensions = words("#extensions");
  form.commands = $("#commands").value.split("\n").map((c) => c.trim()).filter(Boolean);
  form.dev_access = $("#dev-access").checked;
  body.form = form;
  return body;
}

async function submitForm(ev) {
  ev.preventDefault();
  let body;
  try { body = formBody(); } catch (e) { $("#form-error").textContent = e.message; return; }
  if (!body.tag) { $("#form-error").textContent = "Give the image a name."; return; }
  try {
    const started = await api("POST", "/api/builds", body);
    clonedRecipe = null;
    $("#build-dialog").close();
    follow(started.id, body.tag);
  } catch (e) {
    $("#form-error").textContent = e.message;
  }
}

// ---- the build modal -------------------------------------------------------

const order = ["creating", "building", "pushing", "done"];
let source = null;
let currentBuild = null;

function setPhase(phase, failed) {
  const at = order.indexOf(phase);
  for (const li of document.querySelectorAll("#phases li")) {
    const i = order.indexOf(li.dataset.phase);
    li.className = i < at ? "done" : i === at ? (failed ? "failed" : phase === "done" ? "done" : "active") : "";
    if (i === at) li.setAttribute("aria-current", "step"); else li.removeAttribute("aria-current");
  }
}

function follow(id, tag) {
  currentBuild = id;
  const dlg = $("#progress-dialog");
  $("#progress-title").textContent = "Building " + tag;
  $("#log").textContent = "";
  $("#progress-error").textContent = "";
  $("#progress-step").textContent = "";
  $("#cancel-build").hidden = false;
  let phase = "creating";
  setPhase(phase, false);
  dlg.showModal();
  $("#close-progress").focus();
  // EventSource cannot send headers: the token goes as a query parameter.
  const url = "/api/builds/" + encodeURIComponent(id) + "/events" + (token ? "?access_token=" + encodeURIComponent(token) : "");
  source = new EventSource(url);
  source.onmessage = (m) => {
    let e;
    try { e = JSON.parse(m.data); } catch (err) { return; }
    const log = $("#log");
    switch (e.event) {
      case "phase": phase = e.phase; setPhase(phase, false); break;
      case "step_started": $("#progress-step").textContent = "Step " + e.step + " of " + e.total + ": " + e.description; break;
      case "step_cached": log.textContent += "step " + e.step + " cached\n"; break;
      case "log": log.textContent += e.line + "\n"; break;
      case "warning": log.textContent += "warning: " + e.message + "\n"; break;
      case "info": log.textContent += e.message + "\n"; break;
      case "finished":
        setPhase("done", false);
        $("#progress-step").textContent = "Done: " + (e.name || "") + " " + e.digest;
        finishBuild();
        break;
      case "failed":
        setPhase(phase, true);
        $("#progress-error").textContent = (e.step ? "Step " + e.step + " failed: " : "Failed: ") + e.message;
        if (e.last_lines && e.last_lines.length) log.textContent += e.last_lines.join("\n") + "\n";
        finishBuild();
        break;
    }
    log.scrollTop = log.scrollHeight;
  };
  source.onerror = () => {
    // The browser reconnects with Last-Event-ID by itself; after the final
    // event the server ends the stream and there is nothing more to wait for.
    if (source && source.readyState === EventSource.CLOSED) finishBuild();
  };
}

function finishBuild() {
  if (source) { source.close(); source = null; }
  $("#cancel-build").hidden = true;
  loadImages();
}

async function cancelBuild() {
  if (!currentBuild) return;
  try { await api("DELETE", "/api/builds/" + encodeURIComponent(currentBuild)); }
  catch (e) { $("#progress-error").textContent = "Cannot cancel: " + e.message; }
}

// ---- sandboxes and fork ----------------------------------------------------

async function loadSandboxes() {
  const tbody = $("#sandboxes tbody");
  const status = $("#sandboxes-status");
  try {
    const data = await api("GET", "/api/sandboxes");
    tbody.replaceChildren();
    status.textContent = data.sandboxes.length ? "" : "No sandboxes: start one with boxwright run -d IMAGE.";
    for (const s of data.sandboxes) {
      tbody.append(el("tr", { "data-name": s.name },
        el("td", {}, s.name), el("td", {}, s.image), el("td", {}, s.status),
        el("td", { class: "num" }, bytes(s.changes_bytes || 0)),
        el("td", { class: "row-actions" }, el("button", { type: "button", onclick: () => openFork(s.name, s.image) }, "Fork"))));
    }
  } catch (e) {
    status.textContent = "Cannot list sandboxes: " + e.message;
  }
}

let forking = null;

function section(title, d) {
  const items = [];
  for (const p of d.added || []) items.push("+ " + p.name + " " + p.version);
  for (const p of d.removed || []) items.push("− " + p.name + " " + p.version);
  for (const p of d.changed || []) items.push("~ " + p.name + " " + p.from + " → " + p.to);
  if (!items.length) return null;
  return el("div", { class: "report-section" }, el("h3", {}, title), el("ul", {}, ...items.map((i) => el("li", {}, i))));
}

async function openFork(name, image) {
  forking = name;
  $("#fork-title").textContent = "Fork " + name;
  $("#fork-report").replaceChildren();
  $("#fork-error").textContent = "";
  $("#fork-status").textContent = "Looking for changes…";
  $("#fork-tag").value = (image || name).replace(/:[^:/]*$/, "") + "-" + name;
  $("#fork-dialog").showModal();
  try {
    const r = await api("POST", "/api/sandboxes/" + encodeURIComponent(name) + "/fork", { dry_run: true });
    const parts = [section("apt", r.apt), section("pip", r.pip), section("npm", r.npm), section("VS Code extensions", r.vscode_extensions)].filter(Boolean);
    $("#fork-report").append(...parts,
      el("p", {}, "Other files: " + r.other.files + " (" + bytes(r.other.bytes) + ")"),
      el("p", {}, "Left out (secrets, caches, histories, workspace): " + r.excluded.paths + " paths"));
    $("#fork-status").textContent = parts.length ? "" : "No package changes detected.";
  } catch (e) {
    $("#fork-status").textContent = "";
    $("#fork-error").textContent = e.message;
  }
}

async function doFork() {
  const tag = $("#fork-tag").value.trim();
  if (!tag) { $("#fork-error").textContent = "Give the new image a name."; return; }
  $("#fork-status").textContent = "Forking…";
  try {
    const r = await api("POST", "/api/sandboxes/" + encodeURIComponent(forking) + "/fork", { tag });
    $("#fork-status").textContent = "Forked into " + tag + (r.image ? " " + r.image.digest : "");
    loadImages();
  } catch (e) {
    $("#fork-status").textContent = "";
    $("#fork-error").textContent = e.message;
  }
}

// ---- wiring ----------------------------------------------------------------

$("#new-build").addEventListener("click", () => { clonedRecipe = null; openForm(); });
$("#refresh").addEventListener("click", () => { loadImages(); loadSandboxes(); });
$("#cancel-form").addEventListener("click", () => $("#build-dialog").close());
$("#build-form").addEventListener("submit", submitForm);
for (const r of document.querySelectorAll("input[name=mode]")) r.addEventListener("change", showMode);
$("#pkg-search").addEventListener("input", searchPackages);
$("#close-progress").addEventListener("click", () => { $("#progress-dialog").close(); });
$("#cancel-build").addEventListener("click", cancelBuild);
$("#close-fork").addEventListener("click", () => $("#fork-dialog").close());
$("#do-fork").addEventListener("click", doFork);

loadCatalog().catch((e) => { $("#images-status").textContent = "Cannot read the catalog: " + e.message; });
loadImages();
loadSandboxes();
