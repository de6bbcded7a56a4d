// garment review: the page drives the JSON API. Every catalogue value reaches the DOM
// through textContent or an attribute property, never as HTML.
"use strict";

const TOKEN = document.querySelector('meta[name="garment-token"]').content;
const PAGE = Number(document.querySelector('meta[name="garment-page-size"]').content) || 48;
const form = document.getElementById("filters");
const grid = document.getElementById("grid");
const statusEl = document.getElementById("status");
const tpl = document.getElementById("card");
// Key -> label, from the buttons the template drew (1-9, 0 for the ten classes, o for other).
const KEYS = new Map([...tpl.content.querySelectorAll("button[data-label]")]
  .map((b) => [b.querySelector("kbd").textContent, b.dataset.label]));

let items = [];
let loadedSource = new Map();  // id -> label source when the page was loaded
let total = 0;
let offset = 0;
let current = 0;
let busy = Promise.resolve();

function params() {
  const p = new URLSearchParams();
  for (const [k, v] of new FormData(form)) if (v !== "") p.set(k, v);
  return p;
}

function restore() {
  const p = new URLSearchParams(location.search);
  for (const el of form.elements) {
    if (!el.name || !p.has(el.name)) continue;
    if (el.type === "checkbox") el.checked = p.get(el.name) === el.value;
    else el.value = p.get(el.name);
  }
  offset = Math.max(0, Number(p.get("offset")) || 0);
}

async function api(method, url, body) {
  const opts = { method, headers: {} };
  if (method !== "GET") opts.headers["X-Garment-Token"] = TOKEN;
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(url, opts);
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(typeof data.detail === "string" ? data.detail : r.status + " " + r.statusText);
  return data;
}

function say(text, error) {
  statusEl.textContent = text;
  statusEl.classList.toggle("error", Boolean(error));
}

function summary() {
  if (!total) return "No products match.";
  return `${offset + 1}–${offset + items.length} of ${total}`;
}

// Run one change at a time, in key order, so fast typing never races the server.
function queue(fn) {
  busy = busy.then(fn).catch((e) => say(e.message, true));
  return busy;
}

async function load(keepSelection) {
  const p = params();
  p.set("limit", PAGE);
  p.set("offset", offset);
  const data = await api("GET", "/api/products?" + p);
  if (!data.items.length && offset > 0 && data.total > 0) {  // the page emptied: step back
    offset = Math.max(0, offset - PAGE);
    return load(false);
  }
  total = data.total;
  items = data.items;
  loadedSource = new Map(items.map((x) => [x.id, x.label_source]));
  const q = params();
  if (offset) q.set("offset", offset);
  history.replaceState(null, "", "?" + q);
  grid.replaceChildren(...items.map(card));
  document.getElementById("prev").disabled = offset === 0;
  document.getElementById("next").disabled = offset + items.length >= total;
  document.getElementById("accept").disabled = !items.length;
  say(summary());
  select(keepSelection ? Math.min(current, items.length - 1) : 0, !keepSelection);
}

function pct(x) {
  return x === null || x === undefined ? "" : Number(x).toFixed(2);
}

function card(it, i) {
  const el = tpl.content.firstElementChild.cloneNode(true);
  el.dataset.id = it.id;
  el.addEventListener("click", (ev) => {
    select(i, false);
    const b = ev.target.closest("button");
    if (!b) return;
    if (b.dataset.label) queue(() => setLabel(i, b.dataset.label));
    else if (b.classList.contains("revert")) queue(() => revert(i));
  });
  fill(el, it);
  return el;
}

function fill(el, it) {
  const shot = el.querySelector(".packshot");
  const view = el.querySelector(".view");
  if (it.image_url) shot.src = it.image_url; else shot.removeAttribute("src");
  if (it.view_url) view.src = it.view_url; else view.removeAttribute("src");
  shot.alt = it.name || "";
  el.querySelector(".name").textContent = it.name || it.sku || `#${it.id}`;
  el.querySelector(".category").textContent = it.category || "";
  const label = el.querySelector(".label");
  label.textContent = it.label ?? "no label";
  el.querySelector(".conf").textContent = pct(it.confidence);
  const src = el.querySelector(".source");
  src.textContent = it.label_source || "";
  src.className = "source src-" + (it.label_source || "none");
  let why = "";
  if (it.label_source === "human") {
    why = it.predicted_label ? `predicted ${it.predicted_label} ${pct(it.predicted_confidence)} (${it.predicted_label_source})`
      : "no prediction";
  } else if (it.conflict) {
    why = `image ${it.image_label} ${pct(it.image_confidence)} · text ${it.text_label}`;
  } else if (it.text_evidence) {
    why = it.text_evidence;
  }
  el.querySelector(".why").textContent = why;
  el.classList.toggle("human", it.label_source === "human");
  for (const b of el.querySelectorAll("button[data-label]")) {
    b.classList.toggle("on", b.dataset.label === it.label);
    b.setAttribute("aria-pressed", String(b.dataset.label === it.label));
  }
}

function update(it) {
  const i = items.findIndex((x) => x.id === it.id);
  if (i < 0) return;
  items[i] = it;
  fill(grid.children[i], it);
}

function select(i, scroll) {
  if (!items.length) return;
  current = Math.max(0, Math.min(items.length - 1, i));
  for (const c of grid.querySelectorAll(".card.current")) c.classList.remove("current");
  const el = grid.children[current];
  el.classList.add("current");
  if (scroll !== false) el.scrollIntoView({ block: "nearest" });
}

async function setLabel(i, label) {
  const it = await api("PUT", `/api/products/${items[i].id}/label`, { label });
  update(it);
  say(`${it.name || "#" + it.id}: ${it.label} (human) · ${summary()}`);
  if (i === current) select(current + 1);
}

async function revert(i) {
  const it = await api("DELETE", `/api/products/${items[i].id}/label`);
  update(it);
  say(`${it.name || "#" + it.id}: back to ${it.label ?? "no label"} · ${summary()}`);
}

async function acceptPage() {
  const data = await api("POST", "/api/accept", { ids: items.map((x) => x.id) });
  data.items.forEach(update);
  say(`accepted ${data.accepted} label${data.accepted === 1 ? "" : "s"} · ${summary()}`);
}

async function undo() {
  const data = await api("POST", "/api/undo");
  data.items.forEach(update);
  say(data.undone.length ? `undid ${data.undone.length} change${data.undone.length === 1 ? "" : "s"} · ${summary()}`
    : "nothing to undo");
}

function columns() {
  const cards = [...grid.children];
  if (!cards.length) return 1;
  const top = cards[0].offsetTop;
  const n = cards.findIndex((c) => c.offsetTop !== top);
  return n < 0 ? cards.length : n;
}

// Whether a product corrected on this page has left the positions before the next page:
// it no longer passes the filters, or, least confident first, a human label (confidence 1)
// moved it towards the end. The next page starts that much earlier, so nothing is skipped.
function left(it) {
  const p = params();
  const c = it.confidence;
  if (p.has("label") && (it.label ?? "none") !== p.get("label")) return true;
  if (p.has("source") && (it.label_source || "none") !== p.get("source")) return true;
  if (p.has("min_conf") && (c === null || c < Number(p.get("min_conf")))) return true;
  if (p.has("max_conf") && (c === null || c > Number(p.get("max_conf")))) return true;
  return (p.get("sort") || "confidence") === "confidence" && it.label_source === "human"
    && loadedSource.get(it.id) !== "human";
}

function page(step) {
  const gone = step > 0 ? items.filter(left).length : 0;
  const next = Math.max(0, offset + step * PAGE - gone);
  if ((step < 0 && offset === 0) || next >= total - gone) return;
  offset = next;
  queue(() => load(false));
}

document.addEventListener("keydown", (ev) => {
  const t = ev.target;
  if (t instanceof HTMLInputElement || t instanceof HTMLSelectElement || t instanceof HTMLTextAreaElement) {
    if (ev.key === "Escape") t.blur();
    return;
  }
  if (ev.altKey || ev.metaKey) return;
  const key = ev.key.toLowerCase();
  if (ev.ctrlKey && key !== "z") return;
  let handled = true;
  if ((ev.ctrlKey && key === "z") || key === "u") queue(undo);
  else if (KEYS.has(key)) { if (items.length) { const i = current; queue(() => setLabel(i, KEYS.get(key))); } }
  else if (key === "enter") {
    const i = current;
    if (items[i] && items[i].label) queue(() => setLabel(i, items[i].label));
  } else if (key === "backspace" || key === "delete") { if (items.length) { const i = current; queue(() => revert(i)); } }
  else if (key === "arrowright") select(current + 1);
  else if (key === "arrowleft") select(current - 1);
  else if (key === "arrowdown") select(current + columns());
  else if (key === "arrowup") select(current - columns());
  else if (key === "]") page(1);
  else if (key === "[") page(-1);
  else handled = false;
  if (handled) ev.preventDefault();
});

let typing;
form.addEventListener("input", () => {
  clearTimeout(typing);
  typing = setTimeout(() => { offset = 0; queue(() => load(false)); }, 200);
});
form.addEventListener("submit", (ev) => ev.preventDefault());
document.getElementById("prev").addEventListener("click", () => page(-1));
document.getElementById("next").addEventListener("click", () => page(1));
document.getElementById("accept").addEventListener("click", () => queue(acceptPage));
document.getElementById("undo").addEventListener("click", () => queue(undo));

// Cards scrolled into view stop below the sticky header, whatever its height.
function headerHeight() {
  const h = document.querySelector("header");
  document.documentElement.style.setProperty("--head", h.offsetHeight + "px");
}
window.addEventListener("resize", headerHeight);

async function start() {
  headerHeight();
  const f = await api("GET", "/api/facets");
  const sel = form.elements.category;
  for (const c of f.categories) {
    const o = document.createElement("option");
    o.value = c.value;
    o.textContent = `${c.value} (${c.n})`;
    sel.append(o);
  }
  restore();
  await load(false);
  document.body.dataset.ready = "1";
}

queue(start);
