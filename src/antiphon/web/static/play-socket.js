// The Play page's socket, in a worker: the model's outputs go from here straight to the
// voice on the audio thread (voice-worklet.js says why), and to the page for drawing.
"use strict";

let socket = null;
let url = null;
let voice = null;  // a MessagePort to the voice worklet, once sound has started
let retry = 500;
const handed = [];  // [engine time played, ms when handed to the voice] (benchmarks read it)

function connect() {
  socket = new WebSocket(url);
  socket.onopen = () => { retry = 500; };
  socket.onmessage = (message) => {
    const data = JSON.parse(message.data);
    if (voice && data.type === "events") {
      for (const event of data.events) {
        if (event.kind !== "output") continue;
        voice.postMessage({ type: "set", voice: "model", values: event.values, played: event.played });
        if (handed.length < 20000) handed.push([event.played, performance.timeOrigin + performance.now()]);
      }
    }
    postMessage(data);
  };
  socket.onclose = () => {
    postMessage({ type: "closed" });
    setTimeout(connect, retry);
    retry = Math.min(retry * 2, 8000);
  };
}

onmessage = (message) => {
  const data = message.data;
  if (data.type === "connect") {
    url = data.url;
    connect();
  } else if (data.type === "voice") {
    voice = data.port;
  } else if (data.type === "handed") {
    postMessage({ type: "handed", handed: handed.splice(0) });
  } else if (data.type === "send" && socket && socket.readyState === WebSocket.OPEN) {
    socket.send(data.text);
  }
};
