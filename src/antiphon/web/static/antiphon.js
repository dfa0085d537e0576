// antiphon web UI: plots, live updates and controls, in plain JavaScript.
"use strict";

const COLORS = ["#3a6ea5", "#ef8354", "#2d8a5f", "#8e5ea2", "#c0392b", "#d4a017",
  "#17becf", "#7f7f7f", "#bcbd22", "#1f77b4", "#e377c2", "#8c564b"];

function csrfToken() {
  return document.querySelector('meta[name="csrf-token"]').content;
}

// Draw lines of values in [0, 1] against time on a canvas, crisp on any screen.
function drawPlot(canvas, t, series, opts = {}) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  ctx.clearRect(0, 0, width, height);
  const left = 34, right = 10, top = 10, bottom = 24;
  const w = width - left - right, h = height - top - bottom;
  const t0 = opts.t0 ?? (t.length ? t[0] : 0);
  const t1 = opts.t1 ?? (t.length ? t[t.length - 1] : 1);
  const span = Math.max(t1 - t0, 1e-9);
  const x = (v) => left + ((v - t0) / span) * w;
  const y = (v) => top + (1 - Math.min(Math.max(v, 0), 1)) * h;
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = "#6b6f85";
  ctx.strokeStyle = "#e1e3ec";
  ctx.lineWidth = 1;
  for (const v of [0, 0.5, 1]) {
    ctx.beginPath(); ctx.moveTo(left, y(v)); ctx.lineTo(left + w, y(v)); ctx.stroke();
    ctx.fillText(v.toFixed(1), 6, y(v) + 4);
  }
  const ticks = 6;
  for (let i = 0; i <= ticks; i++) {
    const tv = t0 + (span * i) / ticks;
    ctx.fillText(formatSeconds(opts.relative ? tv - t1 : tv), x(tv) - 12, height - 6);
  }
  series.forEach((values, k) => {
    ctx.strokeStyle = COLORS[k % COLORS.length];
    ctx.fillStyle = ctx.strokeStyle;
    ctx.lineWidth = 1.6;
    ctx.beginPath();
    values.forEach((v, i) => (i ? ctx.lineTo(x(t[i]), y(v)) : ctx.moveTo(x(t[i]), y(v))));
    ctx.stroke();
    if (opts.dots) {
      opts.dots.forEach((isDot, i) => {
        if (isDot) { ctx.beginPath(); ctx.arc(x(t[i]), y(values[i]), 2.2, 0, 7); ctx.fill(); }
      });
    }
  });
}

function formatSeconds(s) {
  const sign = s < 0 ? "-" : "";
  s = Math.abs(s);
  if (s >= 60) return `${sign}${Math.floor(s / 60)}:${String(Math.round(s % 60)).padStart(2, "0")}`;
  return `${sign}${s < 10 ? s.toFixed(1) : Math.round(s)}s`;
}

async function loadPlots() {
  for (const canvas of document.querySelectorAll("canvas[data-plot-url]")) {
    const response = await fetch(canvas.dataset.plotUrl);
    if (!response.ok) { canvas.replaceWith(document.createTextNode(await response.text())); continue; }
    const data = await response.json();
    const dots = data.sources ? data.sources.map((s) => s === "rnn") : null;
    const draw = () => drawPlot(canvas, data.t, data.values, { dots });
    draw();
    window.addEventListener("resize", draw);
  }
}

// "Select all" checkboxes in file tables.
function wireSelectAll() {
  for (const box of document.querySelectorAll("[data-select-all]")) {
    box.addEventListener("change", () => {
      box.closest("form").querySelectorAll('input[name="name"]').forEach((b) => (b.checked = box.checked));
    });
  }
}

// Cards that show [data-field] values refreshed from a JSON endpoint.
function wireRefresh() {
  const root = document.querySelector("[data-refresh]");
  if (!root) return;
  const get = (obj, path) => path.split(".").reduce((o, k) => (o == null ? o : o[k]), obj);
  setInterval(async () => {
    if (document.hidden) return;
    const response = await fetch(root.dataset.refresh);
    if (!response.ok) return;
    const data = await response.json();
    for (const el of root.querySelectorAll("[data-field]")) {
      const value = get(data, el.dataset.field);
      if (value == null) continue;
      if (Array.isArray(value)) el.textContent = value.map((v) => v.toFixed(3)).join(", ");
      else if (el.dataset.format === "duration") el.textContent = formatSeconds(value);
      else if (typeof value === "number") el.textContent = Number.isInteger(value) ? value : value.toFixed(1);
      else el.textContent = value;
    }
  }, 2000);
}

document.addEventListener("DOMContentLoaded", () => {
  wireSelectAll();
  wireRefresh();
  loadPlots();
});
