// ragnode console: plain JS, no library, nothing fetched but this node's API.
"use strict";
const $ = (s) => document.querySelector(s);
const KEY = "ragnode-token";
let names = {}, lastEvent = 0, offset = 0, limit = 25, detailID = "", seriesAt = 0;
// The caller's role (GET /v1/console/whoami): actions it may not take are
// not drawn (the API refuses them anyway: drain needs admin, cancel and
// retry need index).
let role = "";
const canIndex = () => role === "index" || role === "admin";
const canAdmin = () => role === "admin";
const FINAL = ["completed", "failed", "cancelled"];
const COLORS = { loading: "#2f6fdf", chunking: "#d98b1a", embedding: "#2a9d4b", inserting: "#8e44ad" };

function esc(s) { return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c])); }
function ts(ns) { return ns ? new Date(ns / 1e6).toLocaleTimeString() : ""; }
function bytes(b) { const u = ["B", "KiB", "MiB", "GiB", "TiB"]; let i = 0; while (b >= 1024 && i < 4) { b /= 1024; i++; } return b.toFixed(i ? 1 : 0) + " " + u[i]; }
function nodeName(id) { return names[id] || (id ? id.slice(0, 8) : ""); }

async function api(method, path, body) {
  const r = await fetch(path, { method, headers: { Authorization: "Bearer " + (sessionStorage.getItem(KEY) || ""), "Content-Type": "application/json" }, body: body ? JSON.stringify(body) : undefined });
  // A token is asked for only when the API wants one: a cluster without
  // --token (the default) answers without it.
  if (r.status === 401) { showLogin(sessionStorage.getItem(KEY) ? "token refused" : "this cluster needs an API token"); throw new Error("unauthorized"); }
  const j = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(j.error || r.statusText);
  return j;
}

function showLogin(msg) {
  $("#login").hidden = false; $("#app").hidden = true; $("#logout").hidden = true;
  $("#login-error").textContent = msg || "";
}
function showApp() { $("#login").hidden = true; $("#app").hidden = false; $("#logout").hidden = !sessionStorage.getItem(KEY); }

function renderMembers(ms) {
  names = {};
  ms.forEach((m) => { names[m.id] = m.name; });
  $("#members tbody").innerHTML = ms.map((m) => `<tr data-name="${esc(m.name)}"><td>${esc(m.name)}${m.leader ? " <b>★ leader</b>" : ""}</td><td>${esc(m.http_addr)}</td>
    <td>${esc(m.raft_suffrage)}${m.healthy === false ? ' <span class="s-failed">unhealthy</span>' : ""}</td><td class="s-${esc(m.serf_status)}">${esc(m.serf_status)}</td>
    <td>${esc(m.last_contact || "")}</td><td>${esc(m.version)}</td><td>${m.running}</td>
    <td>${m.draining ? "draining " : ""}${canAdmin() ? `<button data-drain="${esc(m.name)}" data-cancel="${m.draining}">${m.draining ? "undrain" : "drain"}</button>` : ""}</td></tr>`).join("");
}

function pills(el, obj) {
  const keys = Object.keys(obj).sort();
  el.innerHTML = keys.length ? keys.map((k) => `<span class="s-${esc(k)}">${esc(k)}<b>${obj[k]}</b></span>`).join("") : '<span class="muted">none</span>';
}

function renderCapacity(s) {
  $("#gpus").innerHTML = s.gpus.map((g) => {
    const usable = Math.max(g.mem_total - g.mem_reserve, 0);
    const parts = g.tasks.map((t) => `<div style="width:${t.milli / 10}%;background:#2f6fdf" title="${esc(t.file_id)}: ${t.milli} milli, ${bytes(t.mem)}">${esc(t.file_id)}</div>`).join("");
    // A virtual GPU (--gpus N) without --gpu-mem has no memory to show.
    const mem = g.mem_total > 0 ? `memory ${bytes(g.mem_used)} of ${bytes(usable)} usable (${bytes(g.mem_reserve)} reserved)` : "memory not declared";
    return `<div class="gpu"><div class="lbl">${esc(g.node)} GPU ${g.index} ${esc(g.name)} — ${g.milli_used}/${g.milli_total} milli, ${mem}, free ${g.milli_total - g.milli_used} milli</div>
      <div class="bar">${parts}</div></div>`;
  }).join("");
  $("#cpus").innerHTML = s.cpus.map((c) => `<div class="gpu"><div class="lbl">${esc(c.node)} CPU slots — ${c.used}/${c.slots} used</div>
      <div class="bar"><div style="width:${c.slots ? (100 * c.used) / c.slots : 0}%;background:#2a9d4b"></div></div></div>`).join("");
}

// chart draws lines (one per series) into an SVG: a tiny plotter, no library.
function chart(svg, series, colors) {
  const W = 360, H = 120, P = 24;
  let max = 0;
  series.forEach((s) => s.forEach((v) => { if (v > max) max = v; }));
  if (max === 0) max = 1;
  const n = Math.max(...series.map((s) => s.length), 2);
  const x = (i) => P + ((W - P - 4) * i) / (n - 1), y = (v) => H - 14 - ((H - 22) * v) / max;
  let out = `<line x1="${P}" y1="${H - 14}" x2="${W - 4}" y2="${H - 14}" stroke="#ccc"/><text x="2" y="12" font-size="10" fill="#666">${+max.toPrecision(3)}</text><text x="2" y="${H - 16}" font-size="10" fill="#666">0</text><text x="${P}" y="${H - 2}" font-size="10" fill="#666">-60 min</text><text x="${W - 30}" y="${H - 2}" font-size="10" fill="#666">now</text>`;
  series.forEach((s, k) => {
    const pts = s.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    out += `<polyline fill="none" stroke="${colors[k]}" stroke-width="1.5" points="${pts}"/>`;
  });
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.innerHTML = out;
}

async function refreshSeries() {
  const s = await api("GET", "/v1/console/series");
  const pts = s.points;
  chart($("#c-done"), [pts.map((p) => p.completed / s.bucket_seconds), pts.map((p) => p.failed / s.bucket_seconds)], ["#2a9d4b", "#c8332e"]);
  chart($("#c-queue"), [pts.map((p) => p.queue_depth)], ["#2f6fdf"]);
  const stages = Object.keys(COLORS);
  chart($("#c-stage"), stages.map((st) => pts.map((p) => p.stage_mean_ms[st] || 0)), stages.map((st) => COLORS[st]));
  $("#c-stage-legend").innerHTML = stages.map((st) => `<span style="color:${COLORS[st]}">■ ${st}</span>`).join("");
}

// The history is replicated and numbered: ask only for what is newer than
// the newest event held, and keep the last 200 for the table.
let events = [];
async function refreshEvents() {
  const since = events.length ? events[events.length - 1].seq : 0;
  const evs = await api("GET", "/v1/console/events?since=" + since);
  events = events.concat(evs).slice(-200);
  $("#events tbody").innerHTML = events.slice().reverse().map((e) => `<tr><td>${ts(e.time)}</td><td>${esc(e.kind)}</td><td>${esc(nodeName(e.node_id))}</td><td>${esc(e.msg)}</td></tr>`).join("");
}

async function refreshTasks() {
  const q = new URLSearchParams({ state: $("#state").value, q: $("#q").value, offset, limit });
  const p = await api("GET", "/v1/console/tasks?" + q);
  $("#page").textContent = p.total ? ` ${p.offset + 1}–${p.offset + p.tasks.length} of ${p.total} ` : " no tasks ";
  $("#tasks tbody").innerHTML = p.tasks.map((t) => `<tr data-id="${esc(t.id)}"><td>${esc(t.partition)}</td><td>${esc(t.file_id)}</td><td class="s-${esc(t.state)}">${esc(t.state)}</td>
    <td>${FINAL.includes(t.state) ? "" : esc(t.stage || "")}</td><td>${esc(nodeName(t.node_id))}</td><td>${t.attempt}</td><td>${ts(t.submitted)}</td><td>${ts(t.started)}</td><td>${ts(t.finished)}</td><td class="err">${esc(t.error)}</td></tr>`).join("");
}

async function refreshDetail() {
  if (!detailID) return;
  const d = await api("GET", "/v1/console/tasks/" + encodeURIComponent(detailID));
  const t = d.task;
  $("#detail").hidden = false;
  $("#detail-id").textContent = t.id;
  $("#detail-body").textContent = JSON.stringify(t, null, 2);
  $("#detail-note").textContent = "(what this node observed since " + new Date(d.observing_since / 1e6).toLocaleString() + ")";
  const acts = [];
  if (canIndex() && !FINAL.includes(t.state)) acts.push(`<button data-act="cancel">cancel</button>`);
  if (canIndex() && (t.state === "failed" || t.state === "cancelled")) acts.push(`<button data-act="retry">retry (resubmit file)</button>`);
  $("#detail-actions").innerHTML = acts.join(" ");
  $("#history tbody").innerHTML = d.history.map((h) => `<tr><td>${ts(h.time)}</td><td class="s-${esc(h.state)}">${esc(h.state)}</td><td>${FINAL.includes(h.state) ? "" : esc(h.stage || "")}</td><td>${esc(nodeName(h.node_id))}</td><td>${h.attempt}</td><td class="err">${esc(h.error || "")}</td></tr>`).join("");
}

// renderChurn shows a banner while elections churn: the cluster answers,
// but every election stalls scheduling and writes for seconds.
function renderChurn(s) {
  const b = $("#churn");
  b.hidden = !s.election_churn;
  if (s.election_churn) {
    b.textContent = `Leader elections are churning: ${s.leader_changes_10m} leader changes in the last 10 minutes, ` +
      `longest leaderless gap ${(s.longest_leaderless_ms / 1000).toFixed(1)} s. Scheduling and writes stall during each election ` +
      `(status is not healthy meanwhile; see "Timing" in the README).`;
  }
}

async function tick() {
  try {
    const s = await api("GET", "/v1/console/summary");
    if (!role) {
      role = (await api("GET", "/v1/console/whoami")).role;
      $("#role").textContent = role === "read" ? "read-only" : role;
    }
    showApp();
    $("#where").textContent = `answered by ${s.node.name} · leader ${s.leader.name || "none"} · term ${s.term} · commit ${s.commit_index}`;
    $("#events-note").textContent = "(replicated: the same on every node)";
    $("#series-note").textContent = "(kept in memory by " + s.node.name + " since " + new Date(s.observing_since / 1e6).toLocaleString() + ")";
    renderChurn(s);
    renderMembers(s.members);
    pills($("#counts"), s.counts);
    pills($("#stages"), s.stages);
    renderCapacity(s);
    const jobs = [refreshTasks(), refreshDetail()];
    if (s.last_event !== lastEvent) { lastEvent = s.last_event; jobs.push(refreshEvents()); }
    if (Date.now() - seriesAt > 10000) { seriesAt = Date.now(); jobs.push(refreshSeries()); }
    await Promise.all(jobs);
    $("#status").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    $("#status").textContent = "error: " + e.message;
  }
}

async function act(fn) {
  try { await fn(); await tick(); } catch (e) { alert(e.message); }
}

$("#login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(KEY, $("#token").value);
  role = "";
  tick();
});
$("#logout").addEventListener("click", () => { sessionStorage.removeItem(KEY); role = ""; showLogin(); });
$("#members").addEventListener("click", (ev) => {
  const b = ev.target.closest("button[data-drain]");
  if (b) act(() => api("POST", "/v1/drain", { node: b.dataset.drain, cancel: b.dataset.cancel === "true" }));
});
$("#tasks").addEventListener("click", (ev) => {
  const tr = ev.target.closest("tr[data-id]");
  if (tr) { detailID = tr.dataset.id; refreshDetail(); }
});
$("#detail-close").addEventListener("click", () => { detailID = ""; $("#detail").hidden = true; });
$("#detail-actions").addEventListener("click", (ev) => {
  const a = ev.target.dataset.act;
  if (a === "cancel") act(() => api("POST", `/v1/tasks/${encodeURIComponent(detailID)}/cancel`));
  if (a === "retry") act(async () => { const t = await api("POST", `/v1/console/tasks/${encodeURIComponent(detailID)}/retry`); detailID = t.id; });
});
$("#q").addEventListener("input", () => { offset = 0; refreshTasks(); });
$("#state").addEventListener("change", () => { offset = 0; refreshTasks(); });
$("#task-filter").addEventListener("submit", (ev) => ev.preventDefault());
$("#prev").addEventListener("click", () => { offset = Math.max(0, offset - limit); refreshTasks(); });
$("#next").addEventListener("click", () => { offset += limit; refreshTasks(); });

tick();
setInterval(() => { if (!$("#app").hidden) tick(); }, 1500);
