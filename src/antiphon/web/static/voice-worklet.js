// antiphon's voice, on the audio thread: two simple synthesiser voices (the model's and
// the performer's) shaped by continuous controls in [0, 1].
//
// Why a worklet and not the browser's own oscillator and filter nodes: their parameters
// can only be set from the page's main thread, which is busy drawing while someone
// plays. Measured in headless Chromium on 2 cores (benchmarks/play_latency.py), an
// output reached the main thread 8.8 ms (p50) / 17 ms (p99) after the engine played
// it, against 0.7 / 2.6 ms in a worker. So the page's socket lives in a worker, which
// hands the model's outputs straight to this processor through a MessagePort.
"use strict";

// What each control shapes, in order (play.html names the same roles for the player).
const GLIDE = 0.015;   // seconds: the time constant every parameter follows a change with
const LINGER = 1.2;    // seconds a voice keeps sounding after its last event, then fades
const RELEASE = 0.4;   // seconds: the fade's time constant
const MAX_QUEUE = 4096;  // events waiting for their time (auditions) at most
const REPORT_EVERY = 0.05;  // seconds between reports to the page
const TWO_PI = 2 * Math.PI;

function targetsOf(values) {
  const v = (i, fallback) => (i < values.length && Number.isFinite(values[i]) ? Math.min(1, Math.max(0, values[i])) : fallback);
  return {
    pitch: 110 * Math.pow(2, 3 * v(0, 0.5)),        // 110 to 880 Hz
    filter: 150 * Math.pow(2, 6.5 * v(1, 0.6)),     // 150 Hz to 14 kHz
    loudness: 0.05 + 0.45 * Math.pow(v(2, 0.6), 2),
    "vibrato depth": 60 * v(3, 0),                  // cents
    "vibrato speed": 1 + 9 * v(4, 0.4),             // Hz
    resonance: 0.5 + 14 * v(5, 0.05),               // Q
    "second voice's interval": 1200 * v(6, 0.58),   // cents above the first: 0.58 = a fifth
    "second voice's level": 0.4 * v(7, values.length > 7 ? 0 : 0.15),
  };
}

class Voice {
  constructor(wave) {
    this.wave = wave;  // "saw" or "triangle"
    this.targets = targetsOf([]);
    this.now = { ...this.targets };
    this.phase = 0; this.phase2 = 0; this.lfo = 0;
    this.x1 = 0; this.x2 = 0; this.y1 = 0; this.y2 = 0;
    this.envelope = 0;
    this.last = -Infinity;  // audio time of the last event
    this.told = false;
  }

  set(values, time) {
    this.targets = targetsOf(values);
    this.last = time;
    this.told = true;
  }

  silence() { this.last = -Infinity; }

  // Fill ``out`` (adding to it) for one render quantum starting at ``time``.
  render(out, time, rate) {
    const k = 1 - Math.exp(-out.length / (rate * GLIDE));
    for (const name in this.targets) this.now[name] += (this.targets[name] - this.now[name]) * k;
    const p = this.now;
    const sounding = time < this.last + LINGER;
    const envTarget = sounding ? 1 : 0;
    const envStep = 1 - Math.exp(-1 / (rate * (sounding ? 0.01 : RELEASE)));
    if (!sounding && this.envelope < 1e-4) { this.envelope = 0; return; }
    // an RBJ low-pass biquad, its coefficients once per quantum
    const w = TWO_PI * Math.min(p.filter, rate * 0.45) / rate;
    const alpha = Math.sin(w) / (2 * p.resonance);
    const cos = Math.cos(w), a0 = 1 + alpha;
    const b0 = (1 - cos) / 2 / a0, b1 = (1 - cos) / a0, a1 = -2 * cos / a0, a2 = (1 - alpha) / a0;
    const level2 = p["second voice's level"];
    for (let i = 0; i < out.length; i++) {
      this.lfo += p["vibrato speed"] / rate;
      if (this.lfo >= 1) this.lfo -= 1;
      const vibrato = Math.pow(2, p["vibrato depth"] * Math.sin(TWO_PI * this.lfo) / 1200);
      const f = p.pitch * vibrato;
      this.phase += f / rate;
      if (this.phase >= 1) this.phase -= 1;
      this.phase2 += f * Math.pow(2, p["second voice's interval"] / 1200) / rate;
      if (this.phase2 >= 1) this.phase2 -= 1;
      const one = this.wave === "saw" ? 2 * this.phase - 1 : 1 - 4 * Math.abs(this.phase - 0.5);
      const two = this.phase2 < 0.5 ? 1 : -1;
      const x = one + level2 * two;
      const y = b0 * x + b1 * this.x1 + b0 * this.x2 - a1 * this.y1 - a2 * this.y2;
      this.x2 = this.x1; this.x1 = x; this.y2 = this.y1; this.y1 = y;
      this.envelope += (envTarget - this.envelope) * envStep;
      out[i] += 0.5 * y * p.loudness * this.envelope;
    }
  }

  sounding(time) { return this.told && time < this.last + LINGER + 0.5; }
}

class AntiphonVoice extends AudioWorkletProcessor {
  constructor() {
    super();
    this.voices = { model: new Voice("saw"), performer: new Voice("triangle") };
    this.queue = [];    // events with a time still to come, in time order
    this.heard = [];    // [engine time played, wall ms when it reached this thread]
    this.reported = 0;
    this.port.onmessage = (message) => this.receive(message.data);
  }

  receive(data) {
    if (data.type === "port") {  // the page's socket worker, talking to us directly
      data.port.onmessage = (message) => this.receive(message.data);
    } else if (data.type === "set") {
      const voice = this.voices[data.voice];
      if (!voice || !Array.isArray(data.values)) return;
      if (data.played !== undefined && this.heard.length < 10000) this.heard.push([data.played, Date.now()]);
      if (data.at === undefined || data.at <= currentTime) voice.set(data.values, currentTime);
      else if (this.queue.length < MAX_QUEUE) {
        this.queue.push(data);
        if (this.queue.length > 1 && this.queue[this.queue.length - 2].at > data.at) this.queue.sort((a, b) => a.at - b.at);
      }
    } else if (data.type === "silence") {
      const voice = this.voices[data.voice];
      if (voice) voice.silence();
    } else if (data.type === "stop") {
      this.queue = [];
    }
  }

  process(inputs, outputs) {
    const out = outputs[0][0];
    while (this.queue.length && this.queue[0].at <= currentTime) {
      const data = this.queue.shift();
      this.voices[data.voice].set(data.values, currentTime);
    }
    out.fill(0);
    for (const name in this.voices) this.voices[name].render(out, currentTime, sampleRate);
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    if (currentTime - this.reported >= REPORT_EVERY) {
      this.reported = currentTime;
      const report = { type: "report", heard: this.heard, voices: {} };
      for (const name in this.voices) {
        const v = this.voices[name];
        report.voices[name] = { targets: v.told ? v.targets : {}, now: v.now, sounding: v.sounding(currentTime) };
      }
      this.port.postMessage(report);
      this.heard = [];
    }
    return true;
  }
}

registerProcessor("antiphon-voice", AntiphonVoice);
