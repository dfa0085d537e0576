// antiphon web UI: plots, live updates and controls, in plain JavaScript.
"use strict";

const COLORS = ["#3a6ea5", "#ef8354", "#2d8a5f", "#8e5ea2", "#c0392b", "#d4a017",
  "#17becf", "#7f7f7f", "#bcbd22", "#1f77b4", "#e377c2", "#8c564b"];

function csrfToken() {
  return document.querySelector('meta[name="csrf-token"]').content;
}

// Draw lines of values in [0, 1] against time on a canvas, crisp on any screen;
// returns the time-to-pixel mapping.
function drawPlot(canvas, t, series, opts = {}) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  ctx.clearRect(0, 0, width, height);
  const left = opts.yLabels ? 44 : 34, right = 10, top = 10, bottom = 24;
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
  [0, 0.5, 1].forEach((v, i) => {
    ctx.beginPath(); ctx.moveTo(left, y(v)); ctx.lineTo(left + w, y(v)); ctx.stroke();
    ctx.fillText(opts.yLabels ? opts.yLabels[i] : v.toFixed(1), 2, y(v) + 4);
  });
  ctx.strokeStyle = "#b8bccb";
  for (const mark of opts.marks || []) {
    ctx.beginPath(); ctx.moveTo(x(mark), top); ctx.lineTo(x(mark), top + h); ctx.stroke();
  }
  // x ticks at round steps, counted from "now" on a scrolling plot, labels kept inside
  const step = niceStep(span / Math.max(2, Math.floor(w / 70)), opts.integer);
  const origin = opts.relative ? t1 : 0;
  ctx.textAlign = "center";
  for (let tv = origin + Math.ceil((t0 - origin) / step - 1e-9) * step; tv <= t1 + 1e-9; tv += step) {
    const label = opts.xLabel ? opts.xLabel(tv) : opts.relative ? (Math.abs(tv - t1) < 1e-9 ? "now" : formatSeconds(tv - t1)) : formatSeconds(tv);
    const half = ctx.measureText(label).width / 2;
    ctx.fillText(label, Math.min(Math.max(x(tv), half + 2), width - half - 2), height - 6);
  }
  ctx.textAlign = "start";
  series.forEach((values, k) => {
    ctx.strokeStyle = (opts.colors || COLORS)[k % (opts.colors || COLORS).length];
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
  return { x };  // where a time is drawn, in CSS pixels (the Play page's cursor)
}

// A tick step of 1, 2 or 5 times a power of ten, at least ``raw``.
function niceStep(raw, integer = false) {
  const power = Math.pow(10, Math.floor(Math.log10(Math.max(raw, 1e-9))));
  const step = [1, 2, 5, 10].map((m) => m * power).find((v) => v >= raw);
  return integer ? Math.max(1, Math.round(step)) : step;
}

function formatSeconds(s) {
  const sign = s < 0 ? "-" : "";
  s = Math.abs(s);
  if (s >= 60) return `${sign}${Math.floor(s / 60)}:${String(Math.round(s % 60)).padStart(2, "0")}`;
  const tenths = Math.round(s * 10) / 10;
  return `${sign}${Number.isInteger(tenths) || s >= 10 ? Math.round(s) : tenths.toFixed(1)}s`;
}

// How long something has run, as the server writes it (app.py's duration filter).
function formatDuration(seconds) {
  let whole = Math.floor(seconds);
  if (whole < 60) return `${whole} s`;
  let minutes = Math.floor(whole / 60);
  whole %= 60;
  if (minutes < 60) return `${minutes} min ${String(whole).padStart(2, "0")} s`;
  const hours = Math.floor(minutes / 60);
  minutes %= 60;
  return `${hours} h ${String(minutes).padStart(2, "0")} min`;
}

async function loadPlots() {
  for (const canvas of document.querySelectorAll("canvas[data-plot-url]")) {
    const response = await fetch(canvas.dataset.plotUrl);
    if (!response.ok) { canvas.replaceWith(document.createTextNode(await response.text())); continue; }
    const data = await response.json();
    const dots = data.sources ? data.sources.map((s) => s === "rnn") : null;
    const draw = () => drawPlot(canvas, data.t, data.values, { dots, marks: data.boundaries });
    if (data.values.length > 1) canvas.after(legendOf(data.values.map((_, k) => `x${k + 1}`)));
    draw();
    window.addEventListener("resize", draw);
  }
}

// Which colour is which control, in drawPlot's colours.
function legendOf(labels) {
  const legend = document.createElement("div");
  legend.className = "legend";
  labels.forEach((label, k) => {
    const item = document.createElement("span");
    item.style.setProperty("--swatch", COLORS[k % COLORS.length]);
    item.textContent = label;
    legend.append(item);
  });
  return legend;
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
      const format = el.dataset.format;
      if (Array.isArray(value)) el.textContent = value.map((v) => v.toFixed(3)).join(", ");
      else if (format === "duration") el.textContent = formatDuration(value);
      else if (format === "int") el.textContent = Math.round(value);
      else if (format === "decimal") el.textContent = value.toFixed(1);
      else el.textContent = value;
    }
  }, 2000);
}

// ---- commands (the control page) -------------------------------------------

async function sendCommand(address, args = []) {
  const response = await fetch("/api/command", {
    method: "POST",
    headers: { "content-type": "application/json", "x-csrf-token": csrfToken() },
    body: JSON.stringify({ address, args }),
  });
  const body = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function logScale(el) {
  const low = Number(el.dataset.low), high = Number(el.dataset.high);
  return {
    toValue: (x) => low * Math.pow(high / low, x / 1000),
    toSlider: (v) => (1000 * Math.log(Math.min(Math.max(v, low), high) / low)) / Math.log(high / low),
  };
}

function wireControl() {
  const root = document.querySelector("[data-control]");
  if (!root) return;
  const result = root.querySelector("[data-control-result]");
  let hide = null;
  const show = (text, bad = false) => {
    result.textContent = text;
    result.classList.toggle("bad", bad);
    result.hidden = false;
    clearTimeout(hide);
    hide = setTimeout(() => (result.hidden = true), bad ? 6000 : 2500);
  };
  const reflect = (status) => {
    root.querySelectorAll('[data-command="/impsy/mode"]').forEach((b) => b.classList.toggle("active", b.dataset.arg === status.mode));
    const pause = root.querySelector('[data-command="/impsy/pause"]');
    if (pause) {
      pause.dataset.arg = status.paused ? "0" : "1";
      pause.textContent = status.paused ? "Resume" : "Pause";
      pause.classList.toggle("primary", status.paused);
    }
  };
  root.querySelectorAll("[data-command]").forEach((button) => {
    button.addEventListener("click", async (event) => {
      event.preventDefault();
      const args = button.dataset.arg === undefined ? [] : [isNaN(button.dataset.arg) ? button.dataset.arg : Number(button.dataset.arg)];
      try {
        const body = await sendCommand(button.dataset.command, args);
        reflect(body.status);
        show(body.done);
      } catch (error) { show(error.message, true); }
    });
  });
  root.querySelectorAll("[data-slider]").forEach((slider) => {
    const scale = logScale(slider);
    const number = root.querySelector(`[data-slider-number="${slider.dataset.slider}"]`);
    slider.value = scale.toSlider(Number(slider.dataset.value));
    let timer = null;
    const send = (value) => {
      clearTimeout(timer);
      timer = setTimeout(async () => {
        try { show((await sendCommand(slider.dataset.slider, [value])).done); }
        catch (error) { show(error.message, true); }
      }, 120);
    };
    slider.addEventListener("input", () => {
      const value = Number(scale.toValue(slider.value).toPrecision(3));
      number.value = value;
      send(value);
    });
    number.addEventListener("change", () => {
      slider.value = scale.toSlider(Number(number.value));
      send(Number(number.value));
    });
    number.form.addEventListener("submit", (event) => event.preventDefault());
  });
}

// ---- the live page ------------------------------------------------------------

function wireLive() {
  const root = document.querySelector("[data-live-socket]");
  if (!root) return;
  const $ = (name) => root.querySelector(`[data-live="${name}"]`) || document.querySelector(`[data-live="${name}"]`);
  const bars = [...$("bars").querySelectorAll(".bar")];
  document.querySelectorAll("[data-series]").forEach((el) => el.style.setProperty("--swatch", COLORS[el.dataset.series % COLORS.length]));
  const history = { input: [], output: [] };
  const counts = { input: [], output: [] };
  let offset = 0;  // browser seconds minus engine seconds
  let retry = 500;
  const seconds = () => performance.now() / 1000;

  const happen = (text, bad = false) => {
    const log = $("log");
    if (log.firstElementChild && log.firstElementChild.classList.contains("muted")) log.innerHTML = "";
    const item = document.createElement("li");
    item.textContent = `${new Date().toLocaleTimeString()}  ${text}`;
    if (bad) item.className = "bad-text";
    log.prepend(item);
    while (log.children.length > 12) log.lastElementChild.remove();
  };

  const latest = { input: [], output: [] };
  const setBars = (kind, values) => {
    latest[kind] = values;
    values.forEach((v, i) => {
      if (!bars[i]) return;
      bars[i].querySelector(kind === "input" ? ".in" : ".out").style.width = `${(v * 100).toFixed(1)}%`;
      const show = (list) => (list[i] === undefined ? " –  " : list[i].toFixed(2));
      bars[i].querySelector(".value").textContent = `${show(latest.input)} → ${show(latest.output)}`;
    });
  };

  const handle = (event) => {
    const t = event.time + offset;
    if (event.kind === "input" || event.kind === "output") {
      history[event.kind].push([t, event.values]);
      counts[event.kind].push(t);
      setBars(event.kind, event.values);
    } else if (event.kind === "mode") {
      $("mode").textContent = event.mode;
      happen(`mode ${event.mode}`);
    } else if (event.kind === "pause") {
      $("paused").textContent = event.paused ? " (paused)" : "";
      happen(event.paused ? "paused" : "resumed");
    } else if (event.kind === "warning") {
      happen(event.message, true);
    } else if (event.kind === "reload") {
      happen(event.ok ? `reloaded: ${event.model}` : `reload failed: ${event.error}`, !event.ok);
    } else if (event.kind === "stop") {
      happen("antiphon stopped");
    } else {
      happen(`${event.kind} ${Object.entries(event).filter(([k]) => !["kind", "time"].includes(k)).map(([k, v]) => `${k}=${v}`).join(" ")}`);
    }
  };

  const connect = () => {
    const socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${root.dataset.liveSocket}`);
    socket.onmessage = (message) => {
      const data = JSON.parse(message.data);
      if (data.now !== undefined) offset = seconds() - data.now;
      if (data.type === "hello") {
        retry = 500;
        $("rates").textContent = "connected";
      } else if (data.type === "events") {
        data.events.forEach(handle);
      }
    };
    socket.onclose = () => {
      $("rates").textContent = "reconnecting…";
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 8000);
    };
  };

  const draw = () => {
    const now = seconds();
    for (const kind of ["input", "output"]) {
      const list = history[kind];
      while (list.length && list[0][0] < now - 10.5) list.shift();
      while (counts[kind].length && counts[kind][0] < now - 1) counts[kind].shift();
      const canvas = $(kind === "input" ? "plot-in" : "plot-out");
      const t = list.map((e) => e[0]);
      const series = bars.map((_, k) => list.map((e) => e[1][k]));
      drawPlot(canvas, t, series, { t0: now - 10, t1: now, relative: true, dots: kind === "output" ? t.map(() => true) : null });
    }
    if ($("rates").textContent !== "reconnecting…" && $("rates").textContent !== "connecting…") {
      $("rates").textContent = `${counts.input.length} in · ${counts.output.length} out per second`;
    }
    requestAnimationFrame(draw);
  };
  connect();
  requestAnimationFrame(draw);
}

// Loss curves of a training run: training and validation NLL per epoch.
function drawLoss(canvas, epochs) {
  if (!epochs.length) return;
  const train = epochs.map((e) => e.train_nll), val = epochs.map((e) => e.val_nll);
  const all = train.concat(val).filter(Number.isFinite);
  const low = Math.min(...all), high = Math.max(...all);
  const span = Math.max(high - low, 1e-6);
  const scale = (v) => (v - low) / span;
  const t = epochs.map((e) => e.epoch);
  drawPlot(canvas, t, [train.map(scale), val.map(scale)], { colors: ["#3a6ea5", "#ef8354"],
    yLabels: [low, (low + high) / 2, high].map((v) => v.toFixed(2)), integer: true,
    xLabel: (v) => `${Math.round(v)}`, dots: epochs.length <= 40 ? t.map(() => true) : null });
}

// Jobs (dataset builds, training runs) shown with a progress bar, polled while running.
function wireJobs() {
  for (const el of document.querySelectorAll('[data-job][data-state="running"]')) {
    const timer = setInterval(async () => {
      const response = await fetch(`/api/jobs/${el.dataset.job}`);
      if (!response.ok) { clearInterval(timer); return; }
      const job = await response.json();
      el.querySelector("progress").value = job.progress;
      el.querySelector(".job-message").textContent = job.message;
      el.querySelector(".job-state").textContent = job.state;
      el.dataset.state = job.state;
      const loss = el.querySelector("canvas.loss");
      if (loss) drawLoss(loss, job.epochs);
      if (job.state !== "running") {
        clearInterval(timer);
        // show what the job made, without the flash message that started it
        setTimeout(() => location.replace(location.pathname), 800);
      }
    }, 1000);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("canvas.loss").forEach((c) => drawLoss(c, JSON.parse(c.dataset.epochs)));
  wireJobs();
  wireSelectAll();
  wireRefresh();
  wireControl();
  wireLive();
  loadPlots();
});
