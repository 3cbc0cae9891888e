// omnigate supervisor dashboard: reads GET /api/reports with the admin token
// and draws the weak spots, live queues, today against last week, hourly
// charts (uPlot) and a breakdown table with CSV export. No inline script or
// style: it runs under a strict Content-Security-Policy.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const KEY = "omnigate.dashboard.token";
  let token = "";

  // KPIs: the report's figure, its label and whether higher is better, for
  // the comparison with last week. Units come with the report.
  const KPIS = [
    ["conversations_opened", "Conversations opened", null],
    ["messages_in", "Customer messages", null],
    ["first_response_p50", "First response (median)", false],
    ["first_response_p90", "First response (p90)", false],
    ["resolution_p50", "Resolution (median)", false],
    ["sla_first_response_breach_rate", "SLA first-response breaches", false],
    ["abandonment_rate", "Abandoned", false],
    ["first_contact_resolution", "First-contact resolution", true],
    ["reopen_rate", "Reopened", false],
    ["csat_avg", "CSAT (1-5)", true],
    ["escalation_rate", "Escalated", null],
    ["channel_switch_rate", "Switched channel", null],
    ["agent_occupancy", "Agent occupancy", null],
    ["queue_length", "Waiting now", false],
  ];
  const TABLE = ["conversations_opened", "messages_in", "messages_out", "first_response_p50", "first_response_p90",
    "resolution_p50", "sla_first_response_breach_rate", "abandonment_rate", "first_contact_resolution", "csat_avg",
    "queue_length", "channel_switch_rate", "delivery_failure_rate"];

  // show formats a figure for people: seconds as 1h 02m or 4m 30s, rates as 12.5%.
  function show(v, unit) {
    if (v === undefined || v === null) return "–";
    if (unit === "%") return (100 * v).toFixed(1) + "%";
    if (unit === "s") {
      const s = Math.round(v);
      if (s < 60) return s + "s";
      const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
      return h > 0 ? h + "h " + String(m).padStart(2, "0") + "m" : m + "m " + String(r).padStart(2, "0") + "s";
    }
    return Number.isInteger(v) ? String(v) : v.toFixed(2);
  }

  async function api(params, raw) {
    const r = await fetch("/api/reports?" + new URLSearchParams(params), { headers: { Authorization: "Bearer " + token } });
    if (r.status === 401) { throw Object.assign(new Error("The token was refused."), { auth: true }); }
    if (!r.ok) { throw new Error("GET /api/reports answered " + r.status); }
    return raw ? r.blob() : r.json();
  }

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else e.setAttribute(k, v);
    }
    for (const k of kids) e.append(k);
    return e;
  }

  function total(rep) { return (rep.rows && rep.rows[0] && rep.rows[0].figures) || {}; }

  function renderWeak(rep) {
    const ul = $("weak-list");
    ul.replaceChildren();
    if (!rep.weak_spots || rep.weak_spots.length === 0) {
      ul.append(el("li", { class: "none" }, "Nothing stands out today: every queue-hour, agent and channel is within its peers' range."));
      return;
    }
    for (const w of rep.weak_spots) {
      const u = w.unit;
      ul.append(el("li", { "data-cell": w.cell, "data-metric": w.metric },
        el("span", { class: "cell" }, w.cell), ": " + w.metric.replaceAll("_", " ") + " " + show(w.value, u) +
        " against " + show(w.baseline, u) + " for its peers (z " + w.score.toFixed(1) + ", " + w.n + " conversations)"));
    }
  }

  function renderKPIs(today, week) {
    const t = total(today), w = total(week), box = $("kpis");
    box.replaceChildren();
    for (const [name, label, higherBetter] of KPIS) {
      const v = t[name], p = w[name], none = !w.conversations_opened, unit = today.units[name];
      let cls = "delta", txt = none ? "no conversations last week" : "last week " + show(p, unit);
      if (!none && higherBetter !== null && p !== undefined && v !== p) {
        cls += (v > p) === higherBetter ? " better" : " worse";
      }
      box.append(el("div", { class: "kpi", "data-metric": name, "data-value": String(v) },
        el("div", { class: "name" }, label), el("div", { class: "value" }, name === "csat_avg" && !v ? "–" : show(v, unit)), el("div", { class: cls }, txt)));
    }
  }

  function renderLive(byQueue) {
    const tb = $("live").tBodies[0];
    tb.replaceChildren();
    for (const r of byQueue.rows || []) {
      const f = r.figures;
      tb.append(el("tr", { "data-queue": r.key },
        el("td", {}, r.key), el("td", { "data-metric": "queue_length" }, show(f.queue_length, byQueue.units.queue_length)),
        el("td", {}, show(f.conversations_opened, byQueue.units.conversations_opened)), el("td", {}, show(f.first_response_p50, byQueue.units.first_response_p50)),
        el("td", {}, show(f.sla_first_response_breach_rate, byQueue.units.sla_first_response_breach_rate))));
    }
  }

  const charts = {};
  // hourSeries aligns two by-hour reports on the hours of the day.
  function hourSeries(today, week, name) {
    const hours = [...Array(24).keys()], a = hours.map(() => null), b = hours.map(() => null);
    for (const r of today.rows || []) a[Number(r.key.slice(11, 13))] = r.figures[name];
    for (const r of week.rows || []) b[Number(r.key.slice(11, 13))] = r.figures[name];
    return [hours, a, b];
  }
  function renderChart(id, title, data, unit) {
    const box = $(id);
    const width = Math.max(300, box.clientWidth || 500);
    const opts = {
      title, width, height: 220,
      scales: { x: { time: false } },
      axes: [{ label: "hour", incrs: [1, 2, 3, 6], values: (u, v) => v.map((h) => Number.isInteger(h) ? String(h).padStart(2, "0") : "") },
        { values: (u, v) => v.map((x) => show(x, unit)), size: 70 }],
      series: [{ label: "hour" }, { label: "today", stroke: "#2b62d9", width: 2, points: { show: true } },
        { label: "last week", stroke: "#9aa3b5", dash: [6, 4], width: 2 }],
    };
    if (charts[id]) charts[id].destroy();
    box.replaceChildren();
    charts[id] = new uPlot(opts, data, box);
  }

  function renderBreakdown(rep) {
    const t = $("breakdown");
    t.tHead.replaceChildren(el("tr", {}, el("th", {}, rep.by), ...TABLE.map((n) => el("th", {}, n.replaceAll("_", " ")))));
    const tb = t.tBodies[0];
    tb.replaceChildren();
    const weak = new Set((rep.weak_spots || []).map((w) => w.cell));
    for (const r of rep.rows || []) {
      tb.append(el("tr", { "data-key": r.key }, el("td", { class: weak.has(rep.by + " " + r.key) ? "flag" : "" }, r.key),
        ...TABLE.map((n) => el("td", { "data-metric": n }, show(r.figures[n], rep.units[n])))));
    }
  }

  let busy = false;
  async function load() {
    if (busy) return;
    busy = true;
    try {
      const now = { from: "today", to: "now" }, week = { from: "today-168h", to: "now-168h" };
      const [today, lastWeek, hours, weekHours, queues] = await Promise.all([
        api(now), api(week), api({ ...now, by: "hour" }), api({ ...week, by: "hour" }), api({ ...now, by: "queue" })]);
      $("asof").textContent = "as of " + new Date(today.to).toISOString().replace("T", " ").slice(0, 16) + " UTC";
      renderWeak(today);
      renderLive(queues);
      renderKPIs(today, lastWeek);
      renderChart("chart-opened", "Conversations opened", hourSeries(hours, weekHours, "conversations_opened"), "");
      renderChart("chart-frt", "First response (median)", hourSeries(hours, weekHours, "first_response_p50"), "s");
      await loadBreakdown();
      document.body.dataset.loaded = "true";
    } catch (e) {
      if (e.auth) { signOut(e.message); } else { $("asof").textContent = e.message; }
    } finally {
      busy = false;
    }
  }
  async function loadBreakdown() {
    renderBreakdown(await api({ from: $("range").value, to: "now", by: $("by").value }));
  }

  async function exportCSV() {
    const blob = await api({ from: $("range").value, to: "now", by: $("by").value, format: "csv" }, true);
    const a = el("a", { href: URL.createObjectURL(blob), download: "omnigate-" + $("by").value + ".csv" });
    document.body.append(a);
    a.click();
    a.remove();
  }

  function signOut(msg) {
    sessionStorage.removeItem(KEY);
    token = "";
    $("board").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = msg || "";
  }
  function signIn(t) {
    token = t;
    sessionStorage.setItem(KEY, t);
    $("login").hidden = true;
    $("board").hidden = false;
    load();
  }

  document.addEventListener("DOMContentLoaded", () => {
    // A token in the fragment (#token=...) never reaches the server's logs.
    const fromHash = () => {
      const m = location.hash.match(/token=([^&]+)/);
      if (!m) return false;
      history.replaceState(null, "", location.pathname);
      sessionStorage.setItem(KEY, decodeURIComponent(m[1]));
      return true;
    };
    fromHash();
    window.addEventListener("hashchange", () => { if (fromHash()) signIn(sessionStorage.getItem(KEY)); });
    $("login").addEventListener("submit", (e) => { e.preventDefault(); signIn($("token").value.trim()); });
    $("by").addEventListener("change", loadBreakdown);
    $("range").addEventListener("change", loadBreakdown);
    $("csv").addEventListener("click", exportCSV);
    const t = sessionStorage.getItem(KEY);
    if (t) signIn(t); else signOut("");
    setInterval(() => { if (token) load(); }, 30000);
  });
})();
