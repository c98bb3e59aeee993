// The agent widget: the current nudge with its evidence and feedback buttons, earlier
// nudges, the live transcript, a hold timer. Fed by /v1/agents/{agent_id}/events.
"use strict";

const agentId = params.get("agent_id");
document.getElementById("who").textContent = agentId ? `agent ${agentId}` : "no agent_id in the URL";
const current = document.getElementById("current");
const history = document.getElementById("history");
const transcript = document.getElementById("transcript");
const hold = document.getElementById("hold");
const lines = new Map(); // "call/channel/utterance" -> its <li> (partial, final or corrected)
const finals = []; // final transcripts of this page's calls, for the nudges' "what was said"
let holdStarted = null;

// The words said during a nudge's evidence span, filled in as transcripts arrive (they
// come about a second after the audio-only cues).
function quoteFor(nudge) {
  const quote = el("blockquote", { class: "said", "aria-label": "What was said then" });
  quote.dataset.callId = nudge.call_id;
  quote.dataset.start = nudge.evidence.span_start_s;
  quote.dataset.end = nudge.evidence.span_end_s;
  for (const t of finals) addToQuote(quote, t);
  return quote;
}

// A transcript already quoted (the same utterance, corrected) replaces its quote.
function addToQuote(quote, t) {
  const overlaps = t.call_id === quote.dataset.callId &&
    t.start_s < Number(quote.dataset.end) + 0.25 && t.end_s > Number(quote.dataset.start) - 0.25;
  if (!overlaps) return;
  const key = `${t.channel}/${t.utterance_id}`;
  const said = el("p", { "data-key": key },
    el("span", { class: "who" }, t.channel === "agent" ? "You" : "Customer"), ` “${t.text}”`);
  const shown = quote.querySelector(`[data-key="${key}"]`);
  if (shown) shown.replaceWith(said);
  else quote.append(said);
}

function nudgeElement(nudge, withActions) {
  const ev = nudge.evidence;
  const why = `${ev.explanation} (rule ${ev.rule}, ${ev.span_start_s.toFixed(1)}–${ev.span_end_s.toFixed(1)} s of the call)`;
  const node = el("div", { class: `nudge ${nudge.severity}`, "data-nudge-kind": nudge.kind, "data-nudge-id": nudge.id },
    el("div", { class: "kind" }, KIND_NAMES[nudge.kind] || nudge.kind),
    el("div", { class: "message" }, nudge.message),
    nudge.suggestion ? el("div", { class: "suggestion" }, nudge.suggestion) : "",
    el("div", { class: "why" }, `Why: ${why}`),
    quoteFor(nudge));
  if (withActions) {
    const actions = el("div", { class: "actions", role: "group", "aria-label": "Feedback on this nudge" });
    for (const [action, label] of [["got_it", "Got it"], ["snooze", "Snooze 5 min"], ["not_right", "Not right"]]) {
      const button = el("button", { type: "button", "aria-pressed": "false", "data-action": action }, label);
      button.onclick = () => {
        stream.send({ type: "feedback", nudge_id: nudge.id, call_id: nudge.call_id, kind: nudge.kind, action });
        actions.querySelectorAll("button").forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
      };
      actions.append(button);
    }
    node.append(actions);
  }
  return node;
}

function showNudge(nudge) {
  // The same nudge again (its quote corrected by redaction): replaced where it is shown.
  const shown = document.querySelector(`.nudge[data-nudge-id="${CSS.escape(nudge.id)}"]`);
  if (shown) {
    const fresh = nudgeElement(nudge, false);
    const actions = shown.querySelector(".actions");
    if (actions) fresh.append(actions);
    shown.replaceWith(fresh);
    return;
  }
  const previous = current.querySelector(".nudge");
  if (previous) history.prepend(el("li", {}, previous));
  current.className = `current ${nudge.severity}`;
  current.replaceChildren(nudgeElement(nudge, true));
}

// A transcript with an utterance id already shown replaces that line: the final its
// partial, a correction (more of it redacted) the final.
function showTranscript(t) {
  const key = `${t.call_id}/${t.channel}/${t.utterance_id}`;
  const line = el("li", { class: `${t.channel}${t.final ? "" : " partial"}`, "data-start": t.start_s,
    "data-key": key }, el("span", { class: "who" }, t.channel === "agent" ? "You" : "Customer"), t.text);
  const old = lines.get(key);
  if (old) old.replaceWith(line);
  else {
    // Agent speech is transcribed first: keep the conversation in the order it was said.
    const later = [...transcript.children].find((li) => Number(li.dataset.start) > t.start_s);
    transcript.insertBefore(line, later || null);
  }
  lines.set(key, line);
  if (t.final) {
    const i = finals.findIndex((f) => `${f.call_id}/${f.channel}/${f.utterance_id}` === key);
    if (i >= 0) finals[i] = t;
    else finals.push(t);
    document.querySelectorAll("blockquote.said").forEach((quote) => addToQuote(quote, t));
  }
  if (!t.corrected) transcript.scrollTop = transcript.scrollHeight;
}

function showCall(call) {
  if (call.state === "on_hold" && call.hold_s !== null) {
    holdStarted = Date.now() / 1000 - call.hold_s;
    tickHold();
    hold.hidden = false;
  } else {
    holdStarted = null;
    hold.hidden = true;
  }
}

function tickHold() {
  if (holdStarted !== null) hold.textContent = `On hold ${clock(Date.now() / 1000 - holdStarted)}`;
}
setInterval(tickHold, 250);

const stream = liveStream(`/v1/agents/${encodeURIComponent(agentId || "")}/events`, (event) => {
  if (event.type === "nudge") showNudge(event);
  else if (event.type === "transcript") showTranscript(event);
  else if (event.type === "call_update") showCall(event.call);
  else if (event.type === "call_ended") { holdStarted = null; hold.hidden = true; }
});
