// antiphon's Play page and auditions: on-screen controls, motion, and a Web Audio voice.
// Plain JavaScript, no files to fetch: it works offline on an instrument.
"use strict";

// ---- the sound ------------------------------------------------------------------

// The page's sound: the voice worklet (voice-worklet.js) through a master gain, created
// on the first click or touch (browsers allow sound only then). Its state comes back
// from the audio thread every 50 ms: what each voice was told and where it is now.
class Sound {
  constructor() {
    this.ctx = null;
    this.node = null;
    this.muted = false;
    this.volume = 0.6;
    this.voices = {};   // name -> {targets, now, sounding}, as last reported
    this.heard = [];    // [engine time played, wall ms it reached the audio thread]
  }

  async start() {
    if (!this.ctx) {
      this.ctx = new AudioContext({ latencyHint: "interactive" });
      await this.ctx.audioWorklet.addModule("/static/voice-worklet.js");
      this.node = new AudioWorkletNode(this.ctx, "antiphon-voice", { numberOfInputs: 0, outputChannelCount: [2] });
      this.master = new GainNode(this.ctx, { gain: this.volume });
      this.node.connect(this.master).connect(this.ctx.destination);
      this.node.port.onmessage = (message) => {
        const report = message.data;
        this.voices = report.voices;
        this.heard.push(...report.heard);
        if (this.heard.length > 5000) this.heard.splice(0, this.heard.length - 4000);
      };
    }
    await this.ctx.resume();
  }

  get running() { return this.ctx !== null && this.node !== null && this.ctx.state === "running"; }

  // A port the socket worker can hand outputs to the voice through, without the page.
  port() {
    const channel = new MessageChannel();
    this.node.port.postMessage({ type: "port", port: channel.port1 }, [channel.port1]);
    return channel.port2;
  }

  set(voice, values, at) {
    if (this.running) this.node.port.postMessage({ type: "set", voice, values, ...(at === undefined ? {} : { at }) });
  }

  silence(voice) { if (this.running) this.node.port.postMessage({ type: "silence", voice }); }

  sounding(voice) { return Boolean(this.voices[voice] && this.voices[voice].sounding); }

  setVolume(volume) {
    this.volume = volume;
    if (this.master) this.master.gain.setTargetAtTime(this.muted ? 0 : volume, this.ctx.currentTime, 0.02);
  }

  setMuted(muted) {
    this.muted = muted;
    this.setVolume(this.volume);
  }
}

// What tests and curious players can read of a page's sound.
function expose(sound, extra = {}) {
  window.antiphonVoice = {
    sound,
    targets: () => Object.fromEntries(Object.entries(sound.voices).map(([k, v]) => [k, v.targets])),
    now: () => Object.fromEntries(Object.entries(sound.voices).map(([k, v]) => [k, v.now])),
    state: () => (sound.running ? "running" : sound.ctx ? sound.ctx.state : "not started"),
    latencies: sound.heard,
    ...extra,
  };
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
  const socket = new Worker("/static/play-socket.js");
  let localUntil = 0;    // ignore the echo of our own playing until then (ms)
  let hearMe = false;

  document.querySelectorAll("[data-series]").forEach((el) => el.style.setProperty("--swatch", COLORS[el.dataset.series % COLORS.length]));
  let handing = null;
  expose(sound, {
    lastOutput: null,
    // [engine time played, ms when the socket worker handed it to the voice]
    handed: () => new Promise((resolve) => { handing = resolve; socket.postMessage({ type: "handed" }); }),
  });

  // -- showing values
  const sliders = [...root.querySelectorAll(".ptrack")];
  const outputs = [...root.querySelectorAll(".pvalue")];
  const pads = [...root.querySelectorAll(".pad")];
  // Marks move by transforms (see antiphon.css's .lane): no layout, no repaint.
  const place = (mark, x, y = 0) => { mark.style.transform = `translate(${x * 100}%, ${y * 100}%)`; };
  const show = () => {
    sliders.forEach((track, i) => {
      place(track.querySelector(".you"), vector[i]);
      track.setAttribute("aria-valuenow", vector[i].toFixed(2));
      const out = answer[i];
      const mark = track.querySelector(".answer");
      mark.hidden = out === null;
      if (out !== null) place(mark, out);
      outputs[i].textContent = vector[i].toFixed(2) + (out === null ? "" : ` → ${out.toFixed(2)}`);
    });
    pads.forEach((pad) => {
      const x = Number(pad.dataset.x), y = Number(pad.dataset.y);
      place(pad.querySelector(".you"), vector[x], 1 - vector[y]);
      const mark = pad.querySelector(".answer");
      mark.hidden = answer[x] === null;
      if (answer[x] !== null) place(mark, answer[x], 1 - answer[y]);
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
    socket.postMessage({ type: "send", text: JSON.stringify({ type: "play", values: vector }) });
    if (hearMe) sound.set("performer", vector);
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
    const box = el.querySelector(".lane").getBoundingClientRect();
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
    if (event.kind === "output") {  // the worker has already given it to the voice
      window.antiphonVoice.lastOutput = event.values;
      event.values.forEach((v, i) => { if (i < controls) answer[i] = v; });
      redraw();
    } else if (event.kind === "input") {
      if (event.source === "browser" && performance.now() < localUntil) return;  // our own echo
      event.values.forEach((v, i) => { if (i < controls) vector[i] = v; });
      redraw();
      if (hearMe) sound.set("performer", event.values);
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
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${root.dataset.playSocket}`;
    socket.postMessage({ type: "connect", url });
    socket.onmessage = (message) => {
      const data = message.data;
      if (data.type === "hello") {
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
      } else if (data.type === "handed" && handing) {
        handing(data.handed);
      } else if (data.type === "closed") {
        $("connection").textContent = "reconnecting…";
      }
    };
  };

  // -- sound controls; the page says what is sounding
  const sounding = () => {
    const el = $("sounding");
    if (!sound.running) { el.textContent = "Silent: press Start sound (browsers play sound only after a click or a touch)."; return; }
    if (sound.muted) { el.textContent = "Muted."; return; }
    const model = sound.sounding("model"), me = hearMe && sound.sounding("performer");
    const who = model && me ? "antiphon's answers and your playing" : model ? "antiphon's answers" : me ? "your playing" : null;
    el.textContent = who ? `Sounding: ${who}.` : `Listening: ${hearMe ? "you and antiphon are" : "antiphon is"} silent.`;
  };
  setInterval(sounding, 250);
  const startSound = async () => {
    if (sound.running) return;
    await sound.start();
    const port = sound.port();
    socket.postMessage({ type: "voice", port }, [port]);
  };
  $("start").addEventListener("click", async () => {
    await startSound();
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
    if (!hearMe) sound.silence("performer");
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
    socket.postMessage({ type: "send", text: JSON.stringify({ type: "take", action: recording ? "stop" : "start" }) });
  });

  // -- motion: the phone as a controller
  wireMotion($, play, controls);

  // -- audition
  const form = $("audition");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const state = $("audition-state");
    state.textContent = "generating…";
    await startSound();
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
  sound.node.port.postMessage({ type: "stop" });  // what an earlier audition left queued
  if (!t.length) { say("nothing to play"); return; }
  const ctx = sound.ctx;
  const start = ctx.currentTime + 0.1 - t[0];
  const end = t[t.length - 1];
  let next = 0, frame = 0;
  const rows = t.map((_, i) => values.map((series) => series[i]));
  const step = () => {
    const now = ctx.currentTime - start;
    while (next < t.length && t[next] <= now + LOOKAHEAD) {
      sound.set(performer[next] ? "performer" : "model", rows[next], start + t[next]);
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
  expose(sound);
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
