// Shared by the pages: the event-stream connection with backoff, and small helpers.
"use strict";

const params = new URLSearchParams(location.search);

function streamUrl(path) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const token = params.get("token");
  return `${scheme}//${location.host}${path}${token ? "?token=" + encodeURIComponent(token) : ""}`;
}

// Connects, reconnects with exponential backoff (0.5 s .. 15 s), and says so honestly.
function liveStream(path, onEvent) {
  const status = document.getElementById("status");
  let delay = 500;
  let socket = null;
  function connect() {
    socket = new WebSocket(streamUrl(path));
    socket.onopen = () => { delay = 500; status.textContent = "live"; status.className = "status ok"; };
    socket.onmessage = (message) => onEvent(JSON.parse(message.data));
    socket.onclose = (closed) => {
      status.className = "status lost";
      if (closed.code === 1008) { status.textContent = "access refused"; return; }
      status.textContent = `connection lost, retrying in ${Math.round(delay / 1000)} s`;
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 15000);
    };
  }
  connect();
  return { send: (data) => socket && socket.readyState === 1 && socket.send(JSON.stringify(data)) };
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("data-") || key.startsWith("aria-") || key === "role") node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) node.append(child);
  return node;
}

function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

const KIND_NAMES = {
  interruption: "Talking over", long_hold: "Long hold", dead_air: "Dead air",
  monologue: "Monologue", pace: "Pace", negative_phrasing: "Phrasing", customer_frustration: "Frustration",
};
