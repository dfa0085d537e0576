// antiphon's Play page and auditions: on-screen controls, motion, and a Web Audio voice.
// Plain JavaScript, no files to fetch: it works offline on an instrument.
"use strict";

// ---- the voice ------------------------------------------------------------------

// What each control shapes, in order; more controls than these play but are not heard.
const ROLES = ["pitch", "filter", "loudness", "vibrato depth", "vibrato speed", "resonance",
  "second voice's interval", "second voice's level"];
const GLIDE = 0.015;  // seconds: the time constant every parameter follows a change with
const LINGER = 1.2;   // seconds a voice keeps sounding after its last event, then fades

// One simple synthesiser voice driven by continuous controls in [0, 1]: two oscillators
// through a low-pass filter and a gain, a vibrato LFO; it sounds while events arrive.
class Voice {
  constructor(ctx, destination, wave) {
    this.ctx = ctx;
    this.osc = new OscillatorNode(ctx, { type: wave, frequency: 220 });
    this.osc2 = new OscillatorNode(ctx, { type: "square", frequency: 220 });
    this.level2 = new GainNode(ctx, { gain: 0 });
    this.filter = new BiquadFilterNode(ctx, { type: "lowpass", frequency: 1200, Q: 1 });
    this.amp = new GainNode(ctx, { gain: 0 });            // loudness, set by a control
    this.envelope = new GainNode(ctx, { gain: 0 });       // sounding or not
    this.lfo = new OscillatorNode(ctx, { type: "sine", frequency: 5 });
    this.depth = new GainNode(ctx, { gain: 0 });          // vibrato depth, in cents
    this.lfo.connect(this.depth);
    this.depth.connect(this.osc.detune);
    this.depth.connect(this.osc2.detune);
    this.osc.connect(this.filter);
    this.osc2.connect(this.level2).connect(this.filter);
    this.filter.connect(this.amp).connect(this.envelope).connect(destination);
    [this.osc, this.osc2, this.lfo].forEach((o) => o.start());
    this.params = {
      pitch: this.osc.frequency, filter: this.filter.frequency, loudness: this.amp.gain,
      "vibrato depth": this.depth.gain, "vibrato speed": this.lfo.frequency,
      resonance: this.filter.Q, "second voice's interval": this.osc2.detune,
      "second voice's level": this.level2.gain,
    };
    this.targets = {};  // what each parameter was last told, by role
    this.last = 0;      // ctx time of the last event
  }

  // Values of the controls -> parameter targets, from ``when`` (ctx time) on.
  set(values, when = this.ctx.currentTime) {
    const v = (i, fallback) => (i < values.length ? values[i] : fallback);
    const pitch = 110 * Math.pow(2, 3 * v(0, 0.5));  // 110 to 880 Hz
    const targets = {
      pitch,
      filter: 150 * Math.pow(2, 6.5 * v(1, 0.6)),  // 150 Hz to 14 kHz
      loudness: 0.05 + 0.45 * Math.pow(v(2, 0.6), 2),
      "vibrato depth": 60 * v(3, 0),               // cents
      "vibrato speed": 1 + 9 * v(4, 0.4),          // Hz
      resonance: 0.5 + 14 * v(5, 0.05),
      "second voice's interval": 1200 * v(6, 0.58),  // cents above the first: 0.58 = a fifth
      "second voice's level": 0.4 * v(7, values.length > 7 ? 0 : 0.15),
    };
    this.osc2.frequency.setTargetAtTime(pitch, when, GLIDE);
    for (const [role, target] of Object.entries(targets)) {
      this.params[role].setTargetAtTime(target, when, GLIDE);
    }
    this.targets = targets;
    this.envelope.gain.cancelScheduledValues(when);
    this.envelope.gain.setTargetAtTime(1, when, 0.01);
    this.envelope.gain.setTargetAtTime(0, when + LINGER, 0.4);
    this.last = when;
  }

  silence() {
    this.envelope.gain.cancelScheduledValues(this.ctx.currentTime);
    this.envelope.gain.setTargetAtTime(0, this.ctx.currentTime, 0.05);
  }

  sounding() { return this.last > 0 && this.ctx.currentTime < this.last + LINGER + 0.5; }

  // The parameters' current values, as the audio graph has them (for tests and the curious).
  now() {
    return Object.fromEntries(Object.entries(this.params).map(([role, p]) => [role, p.value]));
  }
}

// The page's sound: created on the first click or touch (browsers allow sound only then).
class Sound {
  constructor() {
    this.ctx = null;
    this.voices = {};
    this.muted = false;
    this.volume = 0.6;
  }

  start() {
    if (!this.ctx) {
      this.ctx = new AudioContext({ latencyHint: "interactive" });
      this.master = new GainNode(this.ctx, { gain: this.volume });
      this.master.connect(this.ctx.destination);
      this.voices.model = new Voice(this.ctx, this.master, "sawtooth");
      this.voices.performer = new Voice(this.ctx, this.master, "triangle");
    }
    return this.ctx.resume();
  }

  get running() { return this.ctx !== null && this.ctx.state === "running"; }

  setVolume(volume) {
    this.volume = volume;
    if (this.master) this.master.gain.setTargetAtTime(this.muted ? 0 : volume, this.ctx.currentTime, 0.02);
  }

  setMuted(muted) {
    this.muted = muted;
    this.setVolume(this.volume);
  }
}

// ---- the Play page ----------------------------------------------------------------

const SEND_EVERY = 8;  // ms between two messages at most: 125 a second, under the server's 200

function wirePlay() {
  const root = document.querySelector("[data-play-socket]");
  if (!root) return;
  const $ = (name) => root.querySelector(`[data-play="${name}"]`) || document.querySelector(`[data-play="${name}"]`);
  const controls = Number(root.dataset.controls);
  const vector = new Array(controls).fill(0.5);
  const answer = new Array(controls).fill(null);
  const sound = new Sound();
  const latencies = [];  // [engine time played, page epoch ms when the voice was set]
  let clock = null;      // {now, wall} from hello: engine and wall clock together
  let socket = null;
  let retry = 500;
  let localUntil = 0;    // ignore the echo of our own playing until then (ms)
  let hearMe = false;

  document.querySelectorAll("[data-series]").forEach((el) => el.style.setProperty("--swatch", COLORS[el.dataset.series % COLORS.length]));

  // The state tests and curious players can read: what each voice was told and has now.
  window.antiphonVoice = {
    sound, latencies,
    targets: () => Object.fromEntries(Object.entries(sound.voices).map(([k, v]) => [k, v.targets])),
    now: () => Object.fromEntries(Object.entries(sound.voices).map(([k, v]) => [k, v.now()])),
    state: () => (sound.ctx ? sound.ctx.state : "not started"),
    clock: () => clock,
  };

  // -- showing values
  const sliders = [...root.querySelectorAll(".ptrack")];
  const outputs = [...root.querySelectorAll(".pvalue")];
  const pads = [...root.querySelectorAll(".pad")];
  const show = () => {
    sliders.forEach((track, i) => {
      track.querySelector(".you").style.left = `${vector[i] * 100}%`;
      track.setAttribute("aria-valuenow", vector[i].toFixed(2));
      const out = answer[i];
      track.querySelector(".answer").style.left = out === null ? "-100px" : `${out * 100}%`;
      outputs[i].textContent = vector[i].toFixed(2) + (out === null ? "" : ` → ${out.toFixed(2)}`);
    });
    pads.forEach((pad) => {
      const x = Number(pad.dataset.x), y = Number(pad.dataset.y);
      const you = pad.querySelector(".you"), ans = pad.querySelector(".answer");
      you.style.left = `${vector[x] * 100}%`;
      you.style.top = `${(1 - vector[y]) * 100}%`;
      ans.hidden = answer[x] === null;
      if (answer[x] !== null) {
        ans.style.left = `${answer[x] * 100}%`;
        ans.style.top = `${(1 - answer[y]) * 100}%`;
      }
    });
  };
  let drawing = false;
  const redraw = () => {
    if (drawing) return;
    drawing = true;
    requestAnimationFrame(() => { drawing = false; show(); });
  };

  // -- playing: every change is an event, sent at most every SEND_EVERY ms
  let lastSent = 0, pending = null;
  const send = () => {
    pending = null;
    lastSent = performance.now();
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "play", values: vector }));
    if (hearMe && sound.running) sound.voices.performer.set(vector);
  };
  const play = (changes) => {
    for (const [i, v] of changes) vector[i] = Math.min(1, Math.max(0, v));
    localUntil = performance.now() + 400;
    redraw();
    const wait = SEND_EVERY - (performance.now() - lastSent);
    if (wait <= 0) send();
    else if (pending === null) pending = setTimeout(send, wait);
  };

  // -- sliders: pointers (mouse, pen, each finger on its own) and keys
  const fraction = (el, event, axis) => {
    const box = el.getBoundingClientRect();
    return axis === "x" ? (event.clientX - box.left) / box.width : 1 - (event.clientY - box.top) / box.height;
  };
  const drag = (el, move) => {
    el.addEventListener("pointerdown", (event) => {
      el.setPointerCapture(event.pointerId);
      move(event);
      event.preventDefault();
    });
    el.addEventListener("pointermove", (event) => { if (el.hasPointerCapture(event.pointerId)) move(event); });
  };
  sliders.forEach((track, i) => {
    drag(track, (event) => play([[i, fraction(track, event, "x")]]));
    track.addEventListener("keydown", (event) => {
      const steps = { ArrowRight: 0.01, ArrowUp: 0.01, ArrowLeft: -0.01, ArrowDown: -0.01, PageUp: 0.1, PageDown: -0.1 };
      if (event.key in steps) play([[i, vector[i] + steps[event.key]]]);
      else if (event.key === "Home") play([[i, 0]]);
      else if (event.key === "End") play([[i, 1]]);
      else return;
      event.preventDefault();
    });
  });
  pads.forEach((pad) => {
    const x = Number(pad.dataset.x), y = Number(pad.dataset.y);
    drag(pad, (event) => play([[x, fraction(pad, event, "x")], [y, fraction(pad, event, "y")]]));
  });

  // -- the engine's events
  const apply = (event) => {
    if (event.kind === "output") {
      window.antiphonVoice.lastOutput = event.values;
      event.values.forEach((v, i) => { if (i < controls) answer[i] = v; });
      redraw();
      if (sound.running) {
        sound.voices.model.set(event.values);
        if (clock) latencies.push([event.played, performance.timeOrigin + performance.now()]);
        if (latencies.length > 5000) latencies.splice(0, 1000);
      }
    } else if (event.kind === "input") {
      if (event.source === "browser" && performance.now() < localUntil) return;  // our own echo
      event.values.forEach((v, i) => { if (i < controls) vector[i] = v; });
      redraw();
      if (hearMe && sound.running) sound.voices.performer.set(event.values);
    } else if (event.kind === "mode") {
      $("mode").textContent = event.mode;
    } else if (event.kind === "pause") {
      $("paused").textContent = event.paused ? " (paused)" : "";
    }
  };

  const problem = (text) => {
    $("connection").textContent = text;
    $("connection").classList.add("bad-text");
  };

  const connect = () => {
    socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${root.dataset.playSocket}`);
    socket.onmessage = (message) => {
      const data = JSON.parse(message.data);
      if (data.type === "hello") {
        retry = 500;
        clock = { now: data.now, wall: data.wall };
        if (data.last_input) data.last_input.forEach((v, i) => { if (i < controls) vector[i] = v; });
        showTake(data);
        $("connection").textContent = "connected";
        $("connection").classList.remove("bad-text");
        redraw();
      } else if (data.type === "events") {
        data.events.forEach(apply);
      } else if (data.type === "take") {
        showTake(data);
      } else if (data.type === "problem") {
        problem(data.message);
      } else if (data.type === "idle") {
        problem("nothing is playing");
      }
    };
    socket.onclose = () => {
      $("connection").textContent = "reconnecting…";
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 8000);
    };
  };

  // -- sound controls; the page says what is sounding
  const sounding = () => {
    const el = $("sounding");
    if (!sound.running) { el.textContent = "Silent: press Start sound (browsers play sound only after a click or a touch)."; return; }
    if (sound.muted) { el.textContent = "Muted."; return; }
    const model = sound.voices.model.sounding(), me = hearMe && sound.voices.performer.sounding();
    const who = model && me ? "antiphon's answers and your playing" : model ? "antiphon's answers" : me ? "your playing" : null;
    el.textContent = who ? `Sounding: ${who}.` : `Listening: ${hearMe ? "you and antiphon are" : "antiphon is"} silent.`;
  };
  setInterval(sounding, 250);
  $("start").addEventListener("click", async () => {
    await sound.start();
    $("start").textContent = "Sound on";
    $("start").disabled = true;
    $("mute").disabled = false;
    sounding();
  });
  $("mute").addEventListener("click", () => {
    sound.setMuted(!sound.muted);
    $("mute").setAttribute("aria-pressed", String(sound.muted));
    $("mute").textContent = sound.muted ? "Unmute" : "Mute";
    sounding();
  });
  $("volume").addEventListener("input", () => sound.setVolume(Number($("volume").value)));
  $("hear-me").addEventListener("change", () => {
    hearMe = $("hear-me").checked;
    if (!hearMe && sound.running) sound.voices.performer.silence();
  });

  // -- takes
  let takeTimer = null;
  const showTake = (data) => {
    const button = $("take");
    button.setAttribute("aria-pressed", String(data.recording));
    button.textContent = data.recording ? "■ Stop the take" : "● Record a take";
    button.classList.toggle("recording", data.recording);
    clearInterval(takeTimer);
    const state = $("take-state");
    if (data.recording) {
      const started = performance.now() - 1000 * (data.take_seconds || 0);
      const tick = () => { state.textContent = `recording ${formatDuration((performance.now() - started) / 1000)} → ${data.log}`; };
      tick();
      takeTimer = setInterval(tick, 500);
    } else {
      state.textContent = data.said || "";
    }
  };
  $("take").addEventListener("click", () => {
    const recording = $("take").getAttribute("aria-pressed") === "true";
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "take", action: recording ? "stop" : "start" }));
  });

  // -- motion: the phone as a controller
  wireMotion($, play, controls);

  // -- audition
  const form = $("audition");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const state = $("audition-state");
    state.textContent = "generating…";
    await sound.start();
    const response = await fetch(`/play/audition?seconds=${encodeURIComponent(form.seconds.value)}`, {
      method: "POST", headers: { "x-csrf-token": csrfToken() },
    });
    if (!response.ok) { state.textContent = await response.text(); return; }
    const data = await response.json();
    const box = root.querySelector(".audition");
    box.hidden = false;
    const t = data.t, performer = t.map(() => false);
    audition(sound, box, t, data.values, performer, (text) => { state.textContent = text; },
      `${data.model} at sigmatemp ${data.sigmatemp}, pitemp ${data.pitemp}, timescale ${data.timescale}`);
  });

  connect();
  show();
}

function wireMotion($, play, controls) {
  const button = $("motion");
  const state = $("motion-state");
  if (!window.isSecureContext) {
    $("insecure").hidden = false;
    button.disabled = true;
    return;
  }
  if (!("DeviceOrientationEvent" in window)) {
    state.textContent = "this browser has no motion sensors";
    button.disabled = true;
    return;
  }
  let on = false;
  const clamp = (v) => Math.min(1, Math.max(0, v));
  const orientation = (event) => {
    if (event.gamma === null || event.beta === null) return;
    const changes = [[0, clamp((event.gamma + 90) / 180)]];       // left-right tilt
    if (controls > 1) changes.push([1, clamp((event.beta + 90) / 180)]);  // front-back
    if (controls > 2 && event.alpha !== null) changes.push([2, clamp(event.alpha / 360)]);  // turning
    play(changes);
    state.textContent = "playing with motion";
  };
  const motion = (event) => {
    const a = event.acceleration;
    if (controls < 4 || !a || a.x === null) return;
    const shake = Math.sqrt(a.x * a.x + a.y * a.y + a.z * a.z);  // m/s², gravity left out
    play([[3, clamp(shake / 20)]]);
  };
  button.addEventListener("click", async () => {
    if (!on) {
      // iOS asks the player first, and only from a click or a touch
      for (const Kind of [window.DeviceOrientationEvent, window.DeviceMotionEvent]) {
        if (Kind && typeof Kind.requestPermission === "function") {
          try {
            if ((await Kind.requestPermission()) !== "granted") { state.textContent = "motion was not allowed"; return; }
          } catch (error) { state.textContent = `motion: ${error.message}`; return; }
        }
      }
      window.addEventListener("deviceorientation", orientation);
      window.addEventListener("devicemotion", motion);
      state.textContent = "tilt the device";
    } else {
      window.removeEventListener("deviceorientation", orientation);
      window.removeEventListener("devicemotion", motion);
      state.textContent = "";
    }
    on = !on;
    button.setAttribute("aria-pressed", String(on));
    button.textContent = on ? "Stop motion" : "Play with motion";
  });
}

// ---- auditions: a performance played back with sound and a moving cursor -------------

const LOOKAHEAD = 0.15;  // seconds of events handed to the audio clock ahead of time

// Play ``values`` (one array per control) at times ``t`` (seconds from the start) on
// ``sound``'s voices: rows where ``performer[i]`` on the performer's voice, others on
// the model's. Draws the plot in ``box`` and moves its cursor; ``say`` hears progress.
function audition(sound, box, t, values, performer, say, title = "") {
  const canvas = box.querySelector("canvas");
  const cursor = box.querySelector(".cursor");
  const dots = performer.map((p) => !p);
  const plot = drawPlot(canvas, t, values, { dots: t.length < 400 ? dots : null });
  cursor.style.height = `${canvas.clientHeight}px`;
  if (box.audition) box.audition.stop();
  if (!t.length) { say("nothing to play"); return; }
  const ctx = sound.ctx;
  const start = ctx.currentTime + 0.1 - t[0];
  const end = t[t.length - 1];
  let next = 0, frame = 0;
  const rows = t.map((_, i) => values.map((series) => series[i]));
  const step = () => {
    const now = ctx.currentTime - start;
    while (next < t.length && t[next] <= now + LOOKAHEAD) {
      const voice = performer[next] ? sound.voices.performer : sound.voices.model;
      voice.set(rows[next], Math.max(ctx.currentTime, start + t[next]));
      next += 1;
    }
    cursor.hidden = false;
    cursor.style.left = `${plot.x(Math.min(Math.max(now, t[0]), end))}px`;
    say(`${title ? title + ": " : ""}${formatSeconds(Math.max(0, now))} of ${formatSeconds(end)}`);
    if (now <= end) frame = requestAnimationFrame(step);
    else { cursor.hidden = true; say(`${title ? title + ": " : ""}played ${formatSeconds(end)}`); }
  };
  box.audition = { stop: () => { cancelAnimationFrame(frame); cursor.hidden = true; } };
  frame = requestAnimationFrame(step);
}

// The log page's "Play this log" button.
function wireLogAudition() {
  const button = document.querySelector("[data-audition-log]");
  if (!button) return;
  const sound = new Sound();
  window.antiphonVoice = {
    sound,
    targets: () => Object.fromEntries(Object.entries(sound.voices).map(([k, v]) => [k, v.targets])),
    state: () => (sound.ctx ? sound.ctx.state : "not started"),
  };
  const box = button.closest(".card");
  const say = (text) => { box.querySelector("[data-audition-state]").textContent = text; };
  button.addEventListener("click", async () => {
    await sound.start();
    const response = await fetch(button.dataset.auditionLog);
    if (!response.ok) { say(await response.text()); return; }
    const data = await response.json();
    audition(sound, box, data.t, data.values, data.sources.map((s) => s !== "rnn"), say);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  wirePlay();
  wireLogAudition();
});
