// Paddock web console. Plain modern JavaScript, no dependencies: the page
// talks to the JSON API under /console/api/ (docs/CONSOLE.md).
"use strict";

const API = "api/";
const PAGE = 100; // children per page

const state = {
  info: null,          // GET api/info
  writes: false,
  creds: null,         // {user, password} (sessionStorage)
  selected: "/",       // selected path
  node: null,          // last loaded node (GET api/node)
  view: "text",        // data view: text | json | hex
  editing: false,
  timer: null,
};

// ---------- small helpers ----------

function $(sel, root = document) { return root.querySelector(sel); }

// el builds an element: el("a", {href: "#", class: "x"}, "text", child, ...).
function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const k of kids.flat()) {
    if (k === undefined || k === null || k === false) continue;
    e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return e;
}

function toast(msg, bad = false) {
  const t = $("#toast");
  t.textContent = msg;
  t.className = "toast" + (bad ? " bad" : "");
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, bad ? 6000 : 3000);
}

function b64ToBytes(s) {
  const bin = atob(s || "");
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function bytesToB64(bytes) {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

function utf8(bytes) {
  try { return new TextDecoder("utf-8", { fatal: true }).decode(bytes); } catch { return null; }
}

function hexDump(bytes) {
  const lines = [];
  const max = Math.min(bytes.length, 64 * 1024);
  for (let off = 0; off < max; off += 16) {
    const row = bytes.subarray(off, Math.min(off + 16, max));
    const hex = Array.from(row, b => b.toString(16).padStart(2, "0")).join(" ");
    const asc = Array.from(row, b => (b >= 32 && b < 127 ? String.fromCharCode(b) : ".")).join("");
    lines.push(off.toString(16).padStart(8, "0") + "  " + hex.padEnd(47, " ") + "  " + asc);
  }
  if (bytes.length > max) lines.push(`… ${bytes.length - max} more bytes`);
  return lines.join("\n");
}

function fmtTime(ms) {
  if (!ms) return "0";
  const d = new Date(ms);
  return d.toISOString().replace("T", " ").replace("Z", " UTC");
}

function parentOf(p) {
  if (p === "/") return null;
  const i = p.lastIndexOf("/");
  return i <= 0 ? "/" : p.slice(0, i);
}

function baseName(p) { return p === "/" ? "/" : p.slice(p.lastIndexOf("/") + 1); }

function joinPath(parent, name) { return parent === "/" ? "/" + name : parent + "/" + name; }

function treeHref(p) { return "#/tree" + p.split("/").map(encodeURIComponent).join("/"); }

// ---------- API ----------

async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  if (state.creds) headers["Authorization"] = "Basic " + btoa(unescape(encodeURIComponent(state.creds.user + ":" + state.creds.password)));
  if (method !== "GET") headers["X-Paddock-Console"] = "1";
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(API + path, init);
  } catch (e) {
    return { ok: false, status: 0, body: { error: "Network", message: "cannot reach the server: " + e.message } };
  }
  let data = null;
  try { data = await res.json(); } catch { data = { error: "BadResponse", message: res.statusText }; }
  return { ok: res.ok, status: res.status, body: data };
}

function q(params) {
  return Object.entries(params).map(([k, v]) => encodeURIComponent(k) + "=" + encodeURIComponent(v)).join("&");
}

// ---------- header ----------

async function loadInfo() {
  const r = await api("GET", "info");
  if (!r.ok) {
    $("#member").textContent = r.body.message || "unavailable";
    if (r.status === 401) openSignIn();
    return;
  }
  state.info = r.body;
  state.writes = r.body.writes;
  const s = r.body.server;
  const m = $("#member");
  m.replaceChildren(
    "server ", el("b", {}, s.serverId), " · ", el("b", { id: "member-mode" }, s.mode),
    " · zxid ", el("b", { id: "member-zxid" }, s.zxid), " · ", s.nodes, " nodes · ", s.sessions, " sessions",
    s.ready ? "" : el("span", { class: "pill bad" }, " not ready: " + s.notReady));
  const wb = $("#writes-badge");
  wb.textContent = state.writes ? "writes enabled" : "read-only";
  wb.className = "badge" + (state.writes ? " rw" : "");
  wb.title = state.writes ? "Changes go through the replicated log as the signed-in user; ACLs apply."
    : "Start the server with --console-writes to create, edit and delete nodes.";
  $("#identity").textContent = (r.body.identity || []).join(", ");
  $("#identity").title = "Your ZooKeeper ids: " + $("#identity").textContent;
  $("#btn-signin").textContent = state.creds ? "Sign out" : "Sign in";
}

function openSignIn() {
  const d = $("#dlg-signin");
  if (!d.open) d.showModal();
}

function setupSignIn() {
  const saved = sessionStorage.getItem("paddock.creds");
  if (saved) { try { state.creds = JSON.parse(saved); } catch { /* ignore */ } }
  $("#btn-signin").addEventListener("click", () => {
    if (state.creds) {
      state.creds = null;
      sessionStorage.removeItem("paddock.creds");
      refreshAll();
      return;
    }
    openSignIn();
  });
  $("#dlg-signin").addEventListener("close", () => {
    if ($("#dlg-signin").returnValue !== "ok") return;
    const user = $("#signin-user").value.trim();
    if (!user) return;
    state.creds = { user, password: $("#signin-password").value };
    sessionStorage.setItem("paddock.creds", JSON.stringify(state.creds));
    $("#signin-password").value = "";
    refreshAll();
  });
}

// ---------- tree ----------

// A tree item: <li data-path><div class=row>twisty name count</div><ul/></li>
function treeItem(entry) {
  const li = el("li", { role: "treeitem", "aria-expanded": "false", dataset: { path: entry.path } });
  const hasKids = entry.numChildren > 0;
  const tw = el("button", { class: "twisty" + (hasKids ? "" : " leaf"), type: "button", "aria-label": "expand", tabindex: "-1" }, "▶");
  tw.addEventListener("click", ev => { ev.preventDefault(); toggle(li); });
  const row = el("div", { class: "row" },
    tw,
    el("a", { class: "name", href: treeHref(entry.path), title: entry.path }, entry.name),
    hasKids ? el("span", { class: "count", title: entry.numChildren + " children" }, entry.numChildren) : null,
    entry.ephemeral ? el("span", { class: "eph", title: "ephemeral" }, "E") : null);
  li.append(row, el("ul", { role: "group", hidden: true }));
  return li;
}

function findItem(path) {
  return document.querySelector(`#tree li[data-path="${CSS.escape(path)}"]`);
}

async function loadChildren(li, offset = 0) {
  const path = li.dataset.path;
  const r = await api("GET", "children?" + q({ path, offset, limit: PAGE }));
  const ul = li.querySelector(":scope > ul");
  if (!r.ok) {
    ul.replaceChildren(el("li", { class: "error" }, r.body.message || r.body.error));
    ul.hidden = false;
    return false;
  }
  if (offset === 0) ul.replaceChildren();
  ul.querySelector(":scope > li.more-li")?.remove();
  for (const c of r.body.children) {
    if (!findItem(c.path)) ul.append(treeItem(c));
  }
  const loaded = offset + r.body.children.length;
  if (loaded < r.body.total) {
    const btn = el("button", { class: "btn small more", type: "button" }, `Load more (${loaded} of ${r.body.total})`);
    btn.addEventListener("click", () => loadChildren(li, loaded));
    ul.append(el("li", { class: "more-li" }, btn));
  }
  li.dataset.loaded = "1";
  const tw = li.querySelector(":scope > .row > .twisty");
  if (tw) tw.classList.toggle("leaf", r.body.total === 0);
  const count = li.querySelector(":scope > .row > .count");
  if (count) count.textContent = r.body.total;
  return true;
}

async function expand(li) {
  if (!li.dataset.loaded) await loadChildren(li);
  li.querySelector(":scope > ul").hidden = false;
  li.setAttribute("aria-expanded", "true");
  const tw = li.querySelector(":scope > .row > .twisty");
  if (tw) tw.textContent = "▼";
}

function collapse(li) {
  li.querySelector(":scope > ul").hidden = true;
  li.setAttribute("aria-expanded", "false");
  const tw = li.querySelector(":scope > .row > .twisty");
  if (tw) tw.textContent = "▶";
}

function toggle(li) {
  if (li.getAttribute("aria-expanded") === "true") collapse(li); else expand(li);
}

function initTree() {
  const root = treeItem({ name: "/", path: "/", numChildren: 1 });
  $("#tree").replaceChildren(el("ul", {}, root));
  return root;
}

// reveal expands the ancestors of path and returns its item, adding it to
// a paged parent when it is not on a loaded page.
async function reveal(path) {
  let li = findItem("/") || initTree();
  if (path === "/") return li;
  const parts = path.split("/").slice(1);
  let cur = "/";
  for (const part of parts) {
    await expand(li);
    const next = joinPath(cur, part);
    let child = findItem(next);
    if (!child) {
      child = treeItem({ name: part, path: next, numChildren: 1 });
      li.querySelector(":scope > ul").prepend(child);
    }
    li = child;
    cur = next;
  }
  return li;
}

function markSelected(path) {
  document.querySelectorAll("#tree .row.selected").forEach(r => r.classList.remove("selected"));
  const li = findItem(path);
  if (li) {
    const row = li.querySelector(":scope > .row");
    row.classList.add("selected");
    row.scrollIntoView({ block: "nearest" });
  }
}

// refreshItem reloads an item's children if they were loaded.
async function refreshItem(path) {
  const li = findItem(path);
  if (!li) return;
  if (li.dataset.loaded) {
    delete li.dataset.loaded;
    await loadChildren(li);
    if (li.getAttribute("aria-expanded") === "true") li.querySelector(":scope > ul").hidden = false;
  }
}

// ---------- jump / search ----------

function setupJump() {
  $("#jump").addEventListener("submit", async ev => {
    ev.preventDefault();
    const v = $("#jump-input").value.trim();
    const box = $("#search-results");
    if (!v) { box.hidden = true; return; }
    if (v.startsWith("/")) {
      box.hidden = true;
      location.hash = treeHref(v.length > 1 ? v.replace(/\/+$/, "") : v);
      return;
    }
    const r = await api("GET", "search?" + q({ q: v, limit: 50 }));
    if (!r.ok) { toast(r.body.message, true); return; }
    box.replaceChildren(el("div", { class: "head" },
      r.body.paths.length ? `${r.body.paths.length}${r.body.more ? "+" : ""} ${r.body.paths.length === 1 && !r.body.more ? "path" : "paths"} containing “${v}”${r.body.truncated ? " (search stopped early: large tree)" : ""}` : `no path contains “${v}”`));
    for (const p of r.body.paths) box.append(el("a", { href: treeHref(p) }, p));
    box.hidden = false;
  });
}

// ---------- node view ----------

async function showNode(path) {
  state.selected = path;
  state.editing = false;
  const pane = $("#node");
  const li = await reveal(path);
  // Selecting a node opens it, as a file browser does.
  if (li && li.getAttribute("aria-expanded") !== "true") await expand(li);
  markSelected(path);
  const r = await api("GET", "node?" + q({ path }));
  if (state.selected !== path) return;
  if (!r.ok) {
    state.node = null;
    pane.replaceChildren(crumbs(path),
      el("div", { class: "alert error", id: "node-error" }, el("h4", {}, r.body.error), el("p", {}, r.body.message)));
    if (r.status === 404 && li) li.remove();
    return;
  }
  state.node = r.body;
  const bytes = b64ToBytes(r.body.data);
  const text = utf8(bytes);
  let json = null;
  if (text !== null && text.trim() !== "") { try { json = JSON.parse(text); } catch { /* not JSON */ } }
  state.view = json !== null ? "json" : text !== null ? "text" : "hex";
  renderNode({ bytes, text, json });
  // keep the tree's count in step with what the node says
  const count = li && li.querySelector(":scope > .row > .count");
  if (count) count.textContent = r.body.stat.numChildren;
}

function crumbs(path) {
  const h = el("h1", { class: "crumbs", id: "node-path", dataset: { path } });
  h.append(el("a", { href: treeHref("/") }, "/"));
  if (path !== "/") {
    let cur = "";
    path.split("/").slice(1).forEach((part, i) => {
      cur += "/" + part;
      if (i > 0) h.append(el("span", { class: "sep" }, "/"));
      h.append(el("a", { href: treeHref(cur) }, part));
    });
  }
  return h;
}

function renderNode(d) {
  const n = state.node;
  const st = n.stat;
  const pane = $("#node");
  const eph = st.ephemeralOwner !== "0x0";
  const meta = el("div", { class: "meta" },
    el("span", {}, `version ${st.version}`),
    el("span", {}, `${st.dataLength} bytes`),
    el("span", {}, `${st.numChildren} ${st.numChildren === 1 ? "child" : "children"}` + (n.descendants !== undefined ? ` (${n.descendants} below)` : "")),
    eph ? el("span", {}, "ephemeral, owner ", el("code", {}, st.ephemeralOwner)) : null,
    el("span", {}, "modified " + fmtTime(st.mtime)));

  const toolbar = el("div", { class: "toolbar" },
    el("button", { class: "btn small", type: "button", id: "btn-refresh", onclick: () => showNode(n.path) }, "Refresh"));
  if (state.writes) {
    toolbar.append(
      el("button", { class: "btn small", type: "button", id: "btn-edit", onclick: () => startEdit(d) , disabled: !n.readable }, "Edit data"),
      el("button", { class: "btn small", type: "button", id: "btn-new", onclick: () => openCreate(n.path) }, "New child"),
      n.path !== "/" ? el("button", { class: "btn small danger", type: "button", id: "btn-delete", onclick: () => openDelete(n) }, "Delete") : null);
  } else {
    toolbar.append(el("span", { class: "meta" }, "read-only console"));
  }

  pane.replaceChildren(crumbs(n.path), meta, toolbar, el("div", { id: "alerts" }),
    dataCard(d), el("div", { class: "grid2" }, statCard(st), aclCard(n)));
}

function dataCard(d) {
  const n = state.node;
  const card = el("div", { class: "card", id: "data-card" });
  const seg = el("span", { class: "seg", role: "tablist" });
  for (const [k, label] of [["text", "Text"], ["json", "JSON"], ["hex", "Hex"]]) {
    const disabled = (k === "text" && d.text === null) || (k === "json" && d.json === null);
    seg.append(el("button", {
      type: "button", class: state.view === k ? "on" : "", disabled, id: "view-" + k,
      onclick: () => { state.view = k; $("#data-card").replaceWith(dataCard(d)); },
    }, label));
  }
  card.append(el("h3", {}, "Data", seg));
  let content;
  if (!n.readable) content = el("pre", { class: "data empty" }, "no READ permission on this node for your ids (" + (state.info?.identity || []).join(", ") + ")");
  else if (d.bytes.length === 0) content = el("pre", { class: "data empty", id: "data-view" }, "(empty)");
  else if (state.view === "json") content = el("pre", { class: "data", id: "data-view" }, JSON.stringify(d.json, null, 2));
  else if (state.view === "text") content = el("pre", { class: "data", id: "data-view" }, d.text);
  else content = el("pre", { class: "data", id: "data-view" }, hexDump(d.bytes));
  card.append(el("div", { class: "body" }, content));
  return card;
}

function statCard(st) {
  const owner = st.ephemeralOwner;
  const rows = [
    ["czxid", st.czxid], ["mzxid", st.mzxid],
    ["ctime", st.ctime, fmtTime(st.ctime)], ["mtime", st.mtime, fmtTime(st.mtime)],
    ["version", st.version], ["cversion", st.cversion], ["aversion", st.aversion],
    ["ephemeralOwner", owner], ["dataLength", st.dataLength], ["numChildren", st.numChildren], ["pzxid", st.pzxid],
  ];
  const dl = el("dl", { class: "kv", id: "stat" });
  for (const [k, v, sub] of rows) {
    dl.append(el("dt", {}, k), el("dd", { dataset: { field: k } }, String(v), sub ? el("span", { class: "sub" }, sub) : null));
  }
  return el("div", { class: "card" }, el("h3", {}, "Stat"), el("div", { class: "body" }, dl));
}

function aclCard(n) {
  const body = el("div", { class: "body" });
  if (n.acl) {
    const t = el("table", { id: "acl" }, el("tr", {}, el("th", {}, "scheme"), el("th", {}, "id"), el("th", {}, "perms")));
    for (const a of n.acl) t.append(el("tr", {}, el("td", { class: "mono" }, a.scheme), el("td", { class: "mono" }, a.id), el("td", { class: "mono" }, a.perms)));
    body.append(t);
  } else {
    body.append(el("p", { class: "empty-note" }, "ACL not readable: " + n.aclError));
  }
  return el("div", { class: "card" }, el("h3", {}, "ACL"), body);
}

// ---------- editing ----------

function startEdit(d) {
  const n = state.node;
  state.editing = true;
  const binary = d.text === null;
  const ta = el("textarea", { id: "edit-data", rows: 14, spellcheck: "false" });
  ta.value = binary ? bytesToB64(d.bytes) : (state.view === "json" && d.json !== null ? JSON.stringify(d.json, null, 2) : d.text);
  const enc = el("select", { id: "edit-encoding" }, el("option", { value: "text" }, "text (UTF-8)"), el("option", { value: "base64" }, "base64"));
  enc.value = binary ? "base64" : "text";
  const ver = el("input", { id: "edit-version", type: "number", value: n.stat.version, title: "The version this edit expects; -1 overwrites any version" });
  const card = el("div", { class: "card editor", id: "edit-card" },
    el("h3", {}, "Edit data"),
    el("div", { class: "body" }, ta,
      el("div", { class: "row" },
        el("label", {}, "encoding", enc),
        el("label", {}, "expected version", ver),
        el("button", { class: "btn primary", type: "button", id: "btn-save", onclick: () => save() }, "Save"),
        el("button", { class: "btn", type: "button", id: "btn-cancel", onclick: () => showNode(n.path) }, "Cancel"))));
  $("#data-card").replaceWith(card);
  ta.focus();
}

async function save(forceVersion) {
  const n = state.node;
  const version = forceVersion !== undefined ? forceVersion : parseInt($("#edit-version").value, 10);
  const body = { path: n.path, data: $("#edit-data").value, encoding: $("#edit-encoding").value, version };
  const r = await api("PUT", "node", body);
  const alerts = $("#alerts");
  if (r.ok) {
    toast(`Saved ${n.path} (version ${r.body.stat.version}, zxid ${r.body.zxid})`);
    await showNode(n.path);
    $("#alerts").replaceChildren(el("div", { class: "alert ok", id: "saved" }, `Saved: version ${r.body.stat.version}, mzxid ${r.body.stat.mzxid}.`));
    loadInfo();
    return;
  }
  if (r.body.error === "BadVersion") {
    const cur = r.body.current;
    alerts.replaceChildren(el("div", { class: "alert conflict", id: "conflict", role: "alert" },
      el("h4", {}, "Version conflict — your change was not saved"),
      el("p", {}, `You edited version ${version}, but ${n.path} is now at version ${cur ? cur.version : "?"}` +
        (cur ? ` (changed ${fmtTime(cur.mtime)}, mzxid ${cur.mzxid}).` : ".")),
      el("p", {}, "Someone else changed the node since you loaded it. Load the latest data and re-apply your edit, or overwrite their change."),
      el("div", { class: "actions" },
        el("button", { class: "btn", type: "button", id: "btn-reload", onclick: () => showNode(n.path) }, "Load latest (discard my edit)"),
        cur ? el("button", { class: "btn danger", type: "button", id: "btn-overwrite", onclick: () => save(cur.version) }, `Overwrite version ${cur.version}`) : null)));
    return;
  }
  alerts.replaceChildren(el("div", { class: "alert error", id: "write-error", role: "alert" }, el("h4", {}, r.body.error), el("p", {}, r.body.message)));
}

function openCreate(parent) {
  $("#create-parent").textContent = parent;
  $("#create-name").value = "";
  $("#create-data").value = "";
  $("#create-error").hidden = true;
  $("#dlg-create").dataset.parent = parent;
  $("#dlg-create").showModal();
  $("#create-name").focus();
}

function setupDialogs() {
  $("#create-mode").addEventListener("change", () => {
    $("#create-ttl-row").hidden = !$("#create-mode").value.endsWith("_ttl");
  });
  $("#form-create").addEventListener("submit", async ev => {
    if (ev.submitter && ev.submitter.value !== "ok") return;
    ev.preventDefault();
    const parent = $("#dlg-create").dataset.parent;
    const name = $("#create-name").value.trim().replace(/^\/+/, "");
    if (!name) return;
    const mode = $("#create-mode").value;
    const body = { path: joinPath(parent, name), data: $("#create-data").value, mode, acl: $("#create-acl").value };
    if (mode.endsWith("_ttl")) body.ttl = parseInt($("#create-ttl").value, 10);
    const r = await api("POST", "node", body);
    if (!r.ok) {
      const e = $("#create-error");
      e.textContent = `${r.body.error}: ${r.body.message}`;
      e.hidden = false;
      return;
    }
    $("#dlg-create").close("ok");
    toast(`Created ${r.body.path}`);
    await refreshItem(parent);
    loadInfo();
    location.hash = treeHref(r.body.path);
  });
  $("#form-delete").addEventListener("submit", async ev => {
    if (ev.submitter && ev.submitter.value !== "ok") return;
    ev.preventDefault();
    const n = state.node;
    const r = await api("DELETE", "node?" + q({ path: n.path, version: n.stat.version }));
    if (!r.ok) {
      const e = $("#delete-error");
      e.textContent = r.body.error === "BadVersion"
        ? `Version conflict: the node is now at version ${r.body.current?.version}; reload it before deleting.`
        : `${r.body.error}: ${r.body.message}`;
      e.hidden = false;
      return;
    }
    $("#dlg-delete").close("ok");
    toast(`Deleted ${n.path}`);
    const parent = parentOf(n.path);
    findItem(n.path)?.remove();
    await refreshItem(parent);
    loadInfo();
    location.hash = treeHref(parent);
  });
}

function openDelete(n) {
  $("#delete-path").textContent = n.path;
  $("#delete-version").textContent = n.stat.version;
  $("#delete-error").hidden = true;
  $("#dlg-delete").showModal();
}

// ---------- sessions, watches, ensemble ----------

function sessionLink(id) { return el("code", {}, id); }

async function renderSessions() {
  const r = await api("GET", "sessions");
  const v = $("#view-sessions");
  if (!r.ok) { v.replaceChildren(el("p", { class: "error" }, r.body.message)); return; }
  const rows = r.body.sessions.map(s => el("tr", { dataset: { session: s.id } },
    el("td", {}, sessionLink(s.id), s.console ? el("span", { class: "pill", title: "the session the console writes with" }, " console") : null),
    el("td", {}, (s.timeoutMs / 1000) + " s"),
    el("td", { class: "mono" }, s.connected || "—"),
    el("td", {}, s.expiresInMs >= 0 ? (s.expiresInMs / 1000).toFixed(1) + " s" : "—"),
    el("td", {}, s.watches),
    el("td", {}, s.ephemerals.length
      ? el("ul", { class: "plain" }, s.ephemerals.map(p => el("li", {}, el("a", { href: treeHref(p), class: "mono" }, p))))
      : el("span", { class: "empty-note" }, "none"))));
  v.replaceChildren(el("h2", {}, `Sessions (${r.body.sessions.length})`),
    el("p", { class: "meta" }, "Live sessions of the ensemble (replicated); connection and watches as held by this member; expiry as tracked by the leader."),
    rows.length ? el("div", { class: "table-wrap" }, el("table", { id: "sessions" },
      el("tr", {}, ["session", "timeout", "connection here", "expires in", "watches", "ephemeral nodes"].map(h => el("th", {}, h))), rows))
      : el("p", { class: "empty-note" }, "No sessions."));
}

async function renderWatches() {
  const r = await api("GET", "watches");
  const v = $("#view-watches");
  if (!r.ok) { v.replaceChildren(el("p", { class: "error" }, r.body.message)); return; }
  const w = r.body;
  const filter = el("input", { type: "search", placeholder: "filter paths", id: "watch-filter", value: renderWatches.filter || "" });
  const byPath = el("table", { id: "watches-by-path" }, el("tr", {}, el("th", {}, "path"), el("th", {}, "sessions")));
  const bySession = el("table", { id: "watches-by-session" }, el("tr", {}, el("th", {}, "session"), el("th", {}, "paths")));
  const fill = () => {
    const f = filter.value;
    renderWatches.filter = f;
    byPath.querySelectorAll("tr.d").forEach(t => t.remove());
    bySession.querySelectorAll("tr.d").forEach(t => t.remove());
    for (const p of w.byPath.filter(x => x.path.includes(f))) {
      byPath.append(el("tr", { class: "d" }, el("td", {}, el("a", { href: treeHref(p.path), class: "mono" }, p.path)), el("td", { class: "mono" }, p.sessions.join(", "))));
    }
    for (const s of w.bySession) {
      const paths = s.paths.filter(p => p.includes(f));
      if (!paths.length) continue;
      bySession.append(el("tr", { class: "d" }, el("td", { class: "mono" }, s.session),
        el("td", {}, el("ul", { class: "plain" }, paths.map(p => el("li", {}, el("a", { href: treeHref(p), class: "mono" }, p)))))));
    }
  };
  filter.addEventListener("input", fill);
  fill();
  v.replaceChildren(el("h2", {}, `Watches (${w.total})`),
    el("p", { class: "meta" }, "Watches live on the member holding the session's connection; this is this member's share."),
    el("div", { class: "filter" }, filter),
    el("div", { class: "grid2" },
      el("div", {}, el("h3", {}, "By path"), el("div", { class: "table-wrap" }, byPath)),
      el("div", {}, el("h3", {}, "By session"), el("div", { class: "table-wrap" }, bySession))));
  if (document.activeElement === document.body && renderWatches.filter) filter.focus();
}

function healthPill(h) {
  const cls = h === "ok" ? "ok" : h === "unknown" ? "" : h === "lagging" ? "warn" : "bad";
  return el("span", { class: "pill " + cls }, h);
}

async function renderEnsemble() {
  const r = await api("GET", "ensemble");
  const v = $("#view-ensemble");
  if (!r.ok) { v.replaceChildren(el("p", { class: "error" }, r.body.message)); return; }
  const e = r.body;
  const card = (k, val, id) => el("div", { class: "stat-card" }, el("div", { class: "k" }, k), el("div", { class: "v", id }, val));
  const cards = el("div", { class: "cards" },
    card("this member", `server ${e.self}`), card("mode", e.mode, "ens-mode"),
    card("leader", e.leader ? `server ${e.leader}` : "none", "ens-leader"), card("term", e.term),
    card("applied zxid", "0x" + e.applied.toString(16)), card("committed zxid", "0x" + e.committed.toString(16)));
  const rows = e.members.map(m => el("tr", { dataset: { member: m.id } },
    el("td", {}, m.id, m.self ? el("span", { class: "pill" }, " this") : null),
    el("td", {}, m.role),
    el("td", {}, el("span", { class: "pill" + (m.state === "leader" ? " leader" : "") }, m.state)),
    el("td", { class: "mono" }, m.peerAddr || "—"),
    el("td", { class: "mono" }, m.clientAddr || "—"),
    el("td", { class: "mono" }, m.matchKnown ? "0x" + m.match.toString(16) : "—"),
    el("td", {}, m.matchKnown ? m.lag : "—"),
    el("td", {}, healthPill(m.health)),
    el("td", {}, m.progress || "—")));
  const changes = e.leaderChanges.map(c => el("tr", {},
    el("td", {}, fmtTime(Date.parse(c.at))), el("td", {}, c.leader ? `server ${c.leader}` : "no leader"), el("td", {}, c.term)));
  v.replaceChildren(...[el("h2", {}, e.standalone ? "Ensemble (standalone)" : "Ensemble"), cards,
    el("p", { class: "meta" }, e.standalone ? "A standalone server is a one-member Raft group; it leads itself."
      : e.authoritative ? "This member leads: the replication progress of every member is known (match = last zxid replicated to it)."
      : "The progress of other members is known on the leader; open the leader's console to see their lag."),
    el("div", { class: "table-wrap" }, el("table", { id: "members" },
      el("tr", {}, ["id", "role", "state", "peer address", "client address", "match zxid", "lag", "health", "replication"].map(h => el("th", {}, h))), rows)),
    el("h3", {}, "Leader changes seen by this member"),
    changes.length ? el("div", { class: "table-wrap" }, el("table", { id: "leader-changes" },
      el("tr", {}, ["when", "leader", "term"].map(h => el("th", {}, h))), changes)) : el("p", { class: "empty-note" }, "None yet."),
    e.configText ? el("h3", {}, "/zookeeper/config") : null,
    e.configText ? el("pre", { class: "data card body" }, e.configText) : null].filter(Boolean));
}

// ---------- routing ----------

function route() {
  const h = decodeURI(location.hash || "#/tree/");
  clearInterval(state.timer);
  let tab = "tree";
  if (h.startsWith("#/sessions")) tab = "sessions";
  else if (h.startsWith("#/watches")) tab = "watches";
  else if (h.startsWith("#/ensemble")) tab = "ensemble";
  for (const a of document.querySelectorAll(".tabs a")) a.classList.toggle("active", a.dataset.tab === tab);
  for (const s of document.querySelectorAll(".view")) s.hidden = s.id !== "view-" + tab;
  if (tab === "tree") {
    let p = location.hash.startsWith("#/tree") ? location.hash.slice("#/tree".length) : "/";
    p = p.split("/").map(x => decodeURIComponent(x)).join("/") || "/";
    if (p.length > 1 && p.endsWith("/")) p = p.slice(0, -1);
    showNode(p);
    return;
  }
  const render = { sessions: renderSessions, watches: renderWatches, ensemble: renderEnsemble }[tab];
  render();
  state.timer = setInterval(() => { if (!document.hidden) render(); }, 2000);
}

async function refreshAll() {
  await loadInfo();
  initTree();
  route();
}

document.addEventListener("DOMContentLoaded", async () => {
  setupSignIn();
  setupJump();
  setupDialogs();
  window.addEventListener("hashchange", route);
  await loadInfo();
  initTree();
  route();
  setInterval(() => { if (!document.hidden) loadInfo(); }, 5000);
});
