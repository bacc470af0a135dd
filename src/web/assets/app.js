// pulse-web's page: draws /api/stats, redrawn on every `update` of /events.
"use strict";
const SHOWN = 20;
const COLORS = ["#2563eb", "#16a34a", "#d97706", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d"];
let open = null; // the detail view's {stat, key}

function fmt(v) {
  if (v === null || v === undefined) return "–";
  const a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toFixed(2) + "G";
  if (a >= 1e6) return (v / 1e6).toFixed(2) + "M";
  if (a >= 1e4) return (v / 1e3).toFixed(1) + "k";
  if (Number.isInteger(v)) return String(v);
  return v.toPrecision(4).replace(/\.?0+$/, "");
}
function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}
const SVG = "http://www.w3.org/2000/svg";
function sv(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  return e;
}
// points: [[start, secs, value, final]...]; a window missing between two is a gap. The lines
// of a series are one path per kind (final, provisional), so that a page of 500 sparklines
// stays light; `titles` gives each point a tooltip (the detail view).
function chart(svg, series, w, h, titles) {
  const all = series.flatMap(s => s.points);
  if (!all.length) return;
  let t0 = Infinity, t1 = -Infinity, lo = 0, hi = -Infinity;
  for (const p of all) {
    t0 = Math.min(t0, p[0]); t1 = Math.max(t1, p[0] + p[1]);
    lo = Math.min(lo, p[2]); hi = Math.max(hi, p[2]);
  }
  if (hi === lo) hi = lo + 1;
  const x = p => 3 + (w - 6) * ((p[0] + p[1] / 2 - t0) / Math.max(1, t1 - t0));
  const y = v => h - 3 - (h - 6) * ((v - lo) / (hi - lo));
  series.forEach(s => {
    const color = s.color;
    const d = {final: "", prov: ""}, end = {final: -1, prov: -1};
    for (let j = 1; j < s.points.length; j++) {
      const a = s.points[j - 1], b = s.points[j];
      if (a[0] + a[1] !== b[0]) continue; // a gap, never interpolated
      const kind = a[3] && b[3] ? "final" : "prov";
      if (end[kind] !== j - 1) d[kind] += `M${x(a).toFixed(1)},${y(a[2]).toFixed(1)}`;
      d[kind] += `L${x(b).toFixed(1)},${y(b[2]).toFixed(1)}`;
      end[kind] = j;
    }
    for (const kind of ["final", "prov"]) {
      if (!d[kind]) continue;
      const p = sv("path", {d: d[kind], class: kind});
      if (color) p.style.stroke = color;
      svg.appendChild(p);
    }
    const r = s.points.length > 40 ? 1.5 : 2.2;
    for (const p of s.points) {
      const c = sv("circle", {cx: x(p).toFixed(1), cy: y(p[2]).toFixed(1), r,
        class: "point " + (p[3] ? "final" : "prov"), "data-start": p[0], "data-value": p[2]});
      if (color) c.style.fill = color;
      if (titles) {
        const t = sv("title", {});
        t.textContent = `${new Date(p[0] * 1000).toISOString().slice(0, 16).replace("T", " ")}  ${fmt(p[2])}${p[3] ? "" : " (provisional)"}`;
        c.appendChild(t);
      }
      svg.appendChild(c);
    }
  });
}

function cell(stat, k) {
  const c = el("div", {class: "cell " + (k.level || ""), "data-stat": stat.stat, "data-key": k.key === null ? "" : k.key});
  c.appendChild(el("div", {class: "key"}, k.key === null ? (k.value || "") : k.key + (k.value ? " · " + k.value : "")));
  if (k.top && k.top.length) {
    const ol = el("ol", {class: "top"});
    for (const [name, v] of k.top) { const li = el("li", {}, name); li.appendChild(el("span", {}, fmt(v))); ol.appendChild(li); }
    c.appendChild(ol);
  } else {
    const lat = el("div", {class: "latest", "data-value": k.latest ? k.latest.value : ""}, fmt(k.latest && k.latest.value));
    if (stat.unit) lat.appendChild(el("span", {class: "unit"}, stat.unit));
    c.appendChild(lat);
    const svg = sv("svg", {class: "spark", viewBox: "0 0 200 40", preserveAspectRatio: "none"});
    chart(svg, [{points: k.points}], 200, 40);
    const vals = k.points.map(p => p[2]);
    if (vals.length) c.title = `range ${fmt(Math.min(...vals))} – ${fmt(Math.max(...vals))} over ${vals.length} windows`;
    if (k.alerts && k.alerts.length) c.title += "\n" + k.alerts.map(a => `${a.rule}: ${a.state} (${a.severity})`).join("\n");
    c.appendChild(svg);
  }
  c.onclick = () => { open = {stat: stat.stat, key: k.key}; detail(); };
  return c;
}

function draw(data) {
  const main = document.getElementById("stats");
  const frag = document.createDocumentFragment();
  for (const s of data.stats) {
    const sec = el("section", {class: "stat", "data-stat": s.stat});
    sec.appendChild(el("h2", {}, s.title || s.stat));
    const grid = el("div", {class: "cells"});
    s.keys.slice(0, SHOWN).forEach(k => grid.appendChild(cell(s, k)));
    sec.appendChild(grid);
    if (s.keys.length > SHOWN) sec.appendChild(el("div", {class: "more"}, `${s.keys.length - SHOWN} more`));
    frag.appendChild(sec);
  }
  main.replaceChildren(frag);
  let sum = `${data.series} series`;
  if (data.overflow) sum += ` · ${data.overflow} snapshots over --max-series`;
  document.getElementById("summary").textContent = sum;
  document.body.dataset.version = data.version;
  if (open) detail();
}

async function detail() {
  const q = `stat=${encodeURIComponent(open.stat)}` + (open.key === null ? "" : `&key=${encodeURIComponent(open.key)}`);
  const r = await fetch("/api/series?" + q);
  const box = document.getElementById("detail");
  if (!r.ok) { box.hidden = true; return; }
  const d = await r.json();
  box.replaceChildren();
  const close = el("a", {href: "#"}, "close ✕");
  close.onclick = e => { e.preventDefault(); open = null; box.hidden = true; };
  box.appendChild(close);
  box.appendChild(el("h2", {}, open.stat + (open.key === null ? "" : " · " + open.key)));
  box.appendChild(el("a", {href: "/api/series?" + q + "&format=csv"}, "CSV"));
  box.appendChild(el("a", {href: "/api/series?" + q}, "JSON"));
  const series = d.values.map((n, i) => ({name: n, color: COLORS[i % COLORS.length],
    points: d.points.filter(p => n in p.values).map(p => [p.start, p.secs, p.values[n], p.final])}));
  const quant = series.filter(s => /^p\d+$/.test(s.name));
  const drawn = quant.length ? quant : series.filter(s => s.name !== "rate" || series.length === 1);
  const leg = el("div", {class: "legend"});
  drawn.forEach(s => { const x = el("span", {}, "● " + s.name); x.style.color = s.color; leg.appendChild(x); });
  box.appendChild(leg);
  const svg = sv("svg", {viewBox: "0 0 800 200", preserveAspectRatio: "none"});
  chart(svg, drawn, 800, 200, true);
  box.appendChild(svg);
  const t = el("table");
  const hr = el("tr"); ["start", "final", ...d.values].forEach(h => hr.appendChild(el("th", {}, h))); t.appendChild(hr);
  for (const p of d.points.slice().reverse()) {
    const tr = el("tr");
    tr.appendChild(el("td", {}, new Date(p.start * 1000).toISOString().slice(0, 16).replace("T", " ")));
    tr.appendChild(el("td", {}, p.final ? "yes" : "no"));
    d.values.forEach(n => tr.appendChild(el("td", {}, fmt(p.values[n]))));
    t.appendChild(tr);
  }
  box.appendChild(t);
  box.hidden = false;
}

let busy = false, again = false;
async function refresh() {
  if (busy) { again = true; return; }
  busy = true;
  try {
    const r = await fetch("/api/stats");
    if (r.ok) draw(await r.json());
  } catch (e) { /* the stream's reconnect brings the next try */ }
  busy = false;
  if (again) { again = false; refresh(); }
}

function connect() {
  const status = document.getElementById("status");
  const es = new EventSource("/events");
  es.addEventListener("update", refresh);
  es.onopen = () => { status.textContent = "live"; status.className = "status live"; document.body.dataset.connected = "1"; refresh(); };
  es.onerror = () => { status.textContent = "reconnecting…"; status.className = "status"; document.body.dataset.connected = "0"; };
}
connect();
