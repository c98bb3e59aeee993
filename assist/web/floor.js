// The supervisors' floor: one row per live call, most urgent first, alerts on top, a
// click opens the call's nudges. Fed by /v1/floor/events.
"use strict";

const rows = new Map(); // call_id -> latest call state
const received = new Map(); // call_id -> wall time its state arrived (for the timers)
const totals = new Map(); // agent_id -> {calls, nudges}
const body = document.getElementById("calls");
const alerts = document.getElementById("alerts");
let selected = null;

// The JSON API takes the page's token in a header, so it never sits in a URL.
function authorized() {
  const token = params.get("token");
  return token ? { headers: { Authorization: `Bearer ${token}` } } : {};
}

async function loadTotals() {
  const response = await fetch("/v1/floor/today", authorized());
  if (!response.ok) return;
  const today = await response.json();
  totals.clear();
  for (const [agent, t] of Object.entries(today.agents)) totals.set(agent, t);
  render();
}

function render() {
  const now = Date.now() / 1000;
  const calls = [...rows.values()].sort((a, b) => b.attention - a.attention || (b.hold_s || 0) - (a.hold_s || 0));
  const lines = calls.map((call) => {
    const age = now - (received.get(call.call_id) || now);
    const hold = call.hold_s === null ? "" : clock(call.hold_s + age);
    const cues = Object.entries(call.cue_counts).map(([k, n]) => `${KIND_NAMES[k] || k} ${n}`).join(", ");
    const tr = el("tr", { "data-call-id": call.call_id, tabIndex: 0, class: call.attention >= 50 ? "alerting" : "" },
      el("td", {}, call.agent_id), el("td", {}, call.call_id), el("td", {}, clock(call.media_time_s + age)),
      el("td", { class: `state ${call.state}` }, call.state.replace("_", " ")),
      el("td", { class: "hold-timer" }, hold), el("td", {}, cues || "–"), el("td", {}, call.last_alert || ""));
    if (call.call_id === selected) tr.classList.add("selected");
    tr.onclick = tr.onkeydown = (e) => { if (!e.key || e.key === "Enter") openCall(call); };
    return tr;
  });
  body.replaceChildren(...(lines.length ? lines : [el("tr", { class: "none" }, el("td", { colSpan: 7 }, "No live calls."))]));
  document.getElementById("summary").textContent = `${calls.length} live call(s)`;
  document.getElementById("totals").replaceChildren(...[...totals.entries()].map(([agent, t]) =>
    el("tr", {}, el("td", {}, agent), el("td", {}, String(t.calls)), el("td", {}, String(t.nudges)))));
}

function openCall(call) {
  selected = call.call_id;
  const detail = document.getElementById("detail");
  detail.hidden = false;
  document.getElementById("detail-title").textContent = `Call ${call.call_id} (agent ${call.agent_id})`;
  const nudges = document.getElementById("detail-nudges");
  const lines = document.getElementById("detail-transcript");
  nudges.replaceChildren(); lines.replaceChildren();
  // A nudge or a transcript already shown (corrected by redaction) replaces its line.
  const showNudge = (e) => {
    const li = el("li", { "data-nudge-kind": e.kind, "data-nudge-id": e.id }, `${KIND_NAMES[e.kind] || e.kind}: ${e.message} (${e.evidence.explanation})`);
    const shown = nudges.querySelector(`[data-nudge-id="${CSS.escape(e.id)}"]`);
    if (shown) shown.replaceWith(li); else nudges.prepend(li);
  };
  const showLine = (e) => {
    const key = `${e.channel}/${e.utterance_id}`;
    const li = el("li", { class: e.channel, "data-key": key }, el("span", { class: "who" }, e.channel), e.text);
    const shown = lines.querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (shown) shown.replaceWith(li); else lines.append(li);
  };
  fetch(`/v1/calls/${encodeURIComponent(call.call_id)}`, authorized())
    .then((r) => (r.ok ? r.json() : null))
    .then((record) => {
      if (!record || selected !== call.call_id) return;
      record.nudges.forEach(showNudge);
      record.transcripts.forEach(showLine);
    });
  if (window.detailStream) window.detailStream.close();
  const socket = new WebSocket(streamUrl(`/v1/agents/${encodeURIComponent(call.agent_id)}/events`));
  socket.onmessage = (message) => {
    const e = JSON.parse(message.data);
    if (e.call_id !== call.call_id) return;
    if (e.type === "nudge") showNudge(e);
    if (e.type === "transcript" && e.final) showLine(e);
  };
  window.detailStream = socket;
  render();
}

liveStream("/v1/floor/events", (event) => {
  if (event.type === "floor_snapshot") {
    rows.clear();
    for (const call of event.calls) { rows.set(call.call_id, call); received.set(call.call_id, Date.now() / 1000); }
    loadTotals();
  } else if (event.type === "call_update") {
    const isNew = !rows.has(event.call.call_id);
    rows.set(event.call.call_id, event.call);
    received.set(event.call.call_id, Date.now() / 1000);
    if (isNew) loadTotals();
  } else if (event.type === "call_ended") {
    rows.delete(event.call_id);
    loadTotals();
  } else if (event.type === "alert") {
    alerts.prepend(el("div", { class: `alert ${event.severity}`, role: "alert" }, `${event.agent_id} · ${event.call_id}: ${event.message}`));
    while (alerts.children.length > 5) alerts.lastChild.remove();
  }
  render();
});
setInterval(render, 1000);
