"""The agent widget and the floor view in a real headless Chromium (Debian's), driven by
Playwright, against the real server with real calls streaming in."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from assist.cli import demo_call_path
from assist.events import Evidence, Nudge, Transcript
from assist.replay import encode_frames, read_stereo_wav, replay_wav
from tests.conftest import make_settings
from tests.e2e.helpers import start_message

playwright_api = pytest.importorskip("playwright.async_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium not installed"),
]
SHOTS = Path(os.environ.get("ASSIST_ARTIFACTS", "artifacts")) / "screenshots"
AGENT_TOKEN, SUPERVISOR_TOKEN = "tok-agent-web", "tok-supervisor"


@pytest.fixture
async def web(server_factory):
    settings = make_settings(
        access={"agent_tokens": {AGENT_TOKEN: "agent-web"}, "supervisor_tokens": [SUPERVISOR_TOKEN]}
    )
    return await server_factory(settings)


@pytest.fixture
async def browser():
    async with playwright_api.async_playwright() as p:
        chromium = await p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        yield chromium
        await chromium.close()


async def shoot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for label, size in (
        ("desktop", {"width": 1280, "height": 860}),
        ("narrow", {"width": 390, "height": 860}),
    ):
        await page.set_viewport_size(size)
        await page.screenshot(path=str(SHOTS / f"{name}-{label}.png"), full_page=True)


async def test_agent_page_shows_nudges_with_evidence_and_takes_feedback(web, browser):
    page = await browser.new_page()
    await page.goto(f"{web.http}/agent?agent_id=agent-web&token={AGENT_TOKEN}")
    await page.wait_for_selector("#status.ok")
    await replay_wav(
        demo_call_path(), web.ws, "agent-web", "web-call-1", 0.0, "mulaw", token=AGENT_TOKEN
    )
    await page.wait_for_selector('[data-nudge-kind="dead_air"]')
    kinds = await page.eval_on_selector_all(
        "[data-nudge-kind]", "els => els.map(e => e.dataset.nudgeKind)"
    )
    assert kinds == ["dead_air", "long_hold", "interruption"]  # current first, then earlier
    current = page.locator("#current .nudge")
    assert "No one has spoken" in await current.locator(".message").inner_text()
    why = await current.locator(".why").inner_text()
    assert "silence 8.00 s >= 8.00 s" in why and "cues.dead_air.min_silence_s" in why
    await current.get_by_role("button", name="Got it").click()
    await page.wait_for_selector('#current button[data-action="got_it"][aria-pressed="true"]')
    for _ in range(100):  # the feedback travels over the socket; wait for it, bounded
        if web.service.metrics.feedback.get(kind="dead_air", action="got_it") == 1:
            break
        await asyncio.sleep(0.02)
    assert web.service.metrics.feedback.get(kind="dead_air", action="got_it") == 1
    assert (await web.service.store.record("web-call-1"))["feedback"][0]["action"] == "got_it"
    await shoot(page, "agent")


async def open_both_pages(web, browser):
    """The agent widget and the floor view, both connected, and the demo call's frames."""
    agent = await browser.new_page()
    await agent.goto(f"{web.http}/agent?agent_id=agent-web&token={AGENT_TOKEN}")
    await agent.wait_for_selector("#status.ok")
    floor = await browser.new_page()
    await floor.goto(f"{web.http}/floor?token={SUPERVISOR_TOKEN}")
    await floor.wait_for_selector("#status.ok")
    audio, rate = read_stereo_wav(demo_call_path())
    return agent, floor, encode_frames(audio, rate, "pcm16")


async def test_floor_shows_the_call_on_hold_with_its_timer_and_opens_it(web, browser):
    agent, floor, frames = await open_both_pages(web, browser)
    async with connect(f"{web.ws}/v1/calls") as call:
        await call.send(json.dumps(start_message("web-call-2", "agent-web")))
        assert json.loads(await call.recv())["type"] == "started"
        for frame in frames[:150]:  # 3 s of the call
            await call.send(frame)
        await call.send(json.dumps({"type": "hold", "on": True}))
        await call.send(frames[150])
        row = floor.locator('tr[data-call-id="web-call-2"]')
        await row.locator("td.state", has_text="on hold").wait_for()
        timer = "document.querySelector('tr[data-call-id=\"web-call-2\"] .hold-timer')"
        await floor.wait_for_function(f"{timer}.textContent.startsWith('0:0')")
        await agent.wait_for_selector("#hold:not([hidden])")
        assert (await agent.locator("#hold").inner_text()).startswith("On hold 0:0")
        await row.click()
        await floor.wait_for_selector("#detail:not([hidden])")
        totals = floor.locator("#totals tr", has_text="agent-web")
        await totals.wait_for()  # today's totals come from the store: this call counts
        assert "web-call-2" in await floor.locator("#detail-title").text_content()
        await shoot(floor, "floor")
        await call.send(json.dumps({"type": "stop"}))
    await floor.locator('tr[data-call-id="web-call-2"]').wait_for(state="detached")


@pytest.mark.parametrize(
    ("path", "token"),
    [
        ("/agent?agent_id=agent-web", "wrong"),
        ("/agent?agent_id=agent-web", None),
        ("/agent?agent_id=someone-else", AGENT_TOKEN),  # an agent sees only themself
        ("/floor", AGENT_TOKEN),  # agents don't see the floor
        ("/floor", "wrong"),
    ],
)
async def test_wrong_tokens_are_refused(web, browser, path, token):
    page = await browser.new_page()
    url = f"{web.http}{path}" + (
        f"&token={token}" if "?" in path and token else f"?token={token}" if token else ""
    )
    response = await page.goto(url)
    assert response.status == 401
    assert "Access refused" in await page.content()


async def test_streams_refuse_wrong_tokens(web):
    for path in (
        "/v1/floor/events?token=" + AGENT_TOKEN,
        "/v1/agents/other/events?token=" + AGENT_TOKEN,
    ):
        async with connect(f"{web.ws}{path}") as ws:
            await ws.wait_closed()
            assert ws.close_code == 1008 and ws.close_reason == "unauthorized"


async def test_json_api_uses_the_same_tokens(web):
    from tests.e2e.helpers import http_get_json

    await replay_wav(
        demo_call_path(), web.ws, "agent-web", "api-call", 0.0, "mulaw", token=AGENT_TOKEN
    )
    base = web.http
    status, record = await http_get_json(f"{base}/v1/calls/api-call?token={AGENT_TOKEN}")
    assert status == 200 and [n["kind"] for n in record["nudges"]] == [
        "interruption",
        "long_hold",
        "dead_air",
    ]
    status, _ = await http_get_json(f"{base}/v1/calls/api-call/scorecard?token={SUPERVISOR_TOKEN}")
    assert status == 200
    status, _ = await http_get_json(f"{base}/v1/calls/api-call")  # no token
    assert status == 401
    status, _ = await http_get_json(f"{base}/v1/agents/other/report?token={AGENT_TOKEN}")
    assert status == 401
    status, today = await http_get_json(f"{base}/v1/floor/today?token={SUPERVISOR_TOKEN}")
    assert status == 200 and today["agents"]["agent-web"] == {"calls": 1, "nudges": 3}
    status, _ = await http_get_json(f"{base}/v1/floor/today?token={AGENT_TOKEN}")
    assert status == 401


async def test_a_nudge_shows_what_was_said_during_its_span(server_factory, browser):
    """With transcription on, the interruption's quote fills in with both sides' words."""
    running = await server_factory(
        make_settings(asr={"enabled": True, "stale_after_s": 600, "max_queue": 512})
    )
    page = await browser.new_page()
    await page.goto(f"{running.http}/agent?agent_id=agent-asr")
    await page.wait_for_selector("#status.ok")
    await replay_wav(demo_call_path(), running.ws, "agent-asr", "quote-call", 0.0, "mulaw")
    quote = page.locator('[data-nudge-kind="interruption"] blockquote.said')
    await quote.locator("p").first.wait_for()
    said = await quote.inner_text()
    assert "Customer" in said and "You" in said  # both sides were talking
    assert "router" in said.lower()  # "Okay, have you tried restarting the router?"
    await shoot(page, "agent-with-transcript")


# WCAG 2.1: every visible text's contrast against its effective background (AA: 4.5:1,
# 3:1 for large text), every control's accessible name, the page language, a main landmark.
AUDIT_JS = """() => {
  const rgb = c => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = el => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const problems = [];
  for (const el of document.querySelectorAll("body *")) {
    const style = getComputedStyle(el);
    const rect = el.getBoundingClientRect();
    if (style.visibility === "hidden" || style.display === "none" || !rect.width) continue;
    const own = [...el.childNodes].filter(n => n.nodeType === 3);
    const text = own.map(n => n.textContent).join("").trim();
    if (text) {
      const [a, b] = [lum(rgb(style.color)), lum(background(el))];
      const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
      const size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
      const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
      if (ratio < need)
        problems.push(`contrast ${ratio.toFixed(2)} < ${need}: ${text.slice(0, 40)}`);
    }
    if (el.matches("button, a[href], input, select, textarea, [role=button], [tabindex]")) {
      const name = (el.getAttribute("aria-label") || el.innerText || el.title || "").trim();
      if (!name) problems.push(`no accessible name: ${el.outerHTML.slice(0, 80)}`);
    }
  }
  if (!document.documentElement.lang) problems.push("no lang on <html>");
  if (!document.querySelector("main, [role=main]")) problems.push("no main landmark");
  return problems;
}"""


async def test_pages_pass_an_accessibility_audit(web, browser):
    agent, floor, frames = await open_both_pages(web, browser)
    async with connect(f"{web.ws}/v1/calls") as call:
        await call.send(json.dumps(start_message("a11y-call", "agent-web")))
        for frame in frames[: int(75 / 0.02)]:  # through the interruption and into the hold
            await call.send(frame)
        await agent.wait_for_selector('[data-nudge-kind="long_hold"]')
        row = floor.locator('tr[data-call-id="a11y-call"]')
        await row.wait_for()
        await row.focus()  # rows are reachable by keyboard and open with Enter
        await floor.keyboard.press("Enter")
        await floor.wait_for_function(
            "document.querySelector('#detail-title').textContent.includes('a11y-call')"
        )
        for page in (agent, floor):
            for width in (1280, 390):
                await page.set_viewport_size({"width": width, "height": 860})
                assert await page.evaluate(AUDIT_JS) == [], (page.url, width)
        await call.send(json.dumps({"type": "stop"}))


def _said(utterance_id: int, text: str, start_s: float, **fields) -> Transcript:
    return Transcript(
        call_id="fix-call", channel="customer", utterance_id=utterance_id, text=text,
        start_s=start_s, end_s=start_s + 2.0, final=True, words=[], **fields,
    )  # fmt: skip


def _frustration(quote: str, **fields) -> Nudge:
    evidence = Evidence(
        rule="cues.customer_frustration.min_score", threshold=0.5, measured=0.97, unit="score",
        span_start_s=10.0, span_end_s=12.0, explanation=f'frustration 0.97 >= 0.50 on "{quote}"',
        details={"quote": quote, "utterance_id": 4},
    )  # fmt: skip
    return Nudge(
        id="fix-call-1", call_id="fix-call", agent_id="agent-web", kind="customer_frustration",
        severity="warning", message="The customer sounds frustrated.", suggestion=None,
        media_time_s=12.0, evidence=evidence, **fields,
    )  # fmt: skip


async def test_corrected_transcripts_and_nudges_replace_what_the_pages_show(web, browser):
    """A transcript sent again with the same utterance id (a redaction correction) replaces
    its line and its quote; a nudge sent again with the same id replaces it in place, its
    feedback buttons kept; the floor's call detail does the same."""
    agent, floor, frames = await open_both_pages(web, browser)
    hub = web.service.hub
    async with connect(f"{web.ws}/v1/calls") as call:
        await call.send(json.dumps(start_message("fix-call", "agent-web")))
        assert json.loads(await call.recv())["type"] == "started"
        await call.send(frames[0])
        await floor.locator('tr[data-call-id="fix-call"]').click()
        await floor.wait_for_function(
            "document.querySelector('#detail-title').textContent.includes('fix-call')"
        )
        for _ in range(100):  # the detail view opens its own agent stream: bounded wait
            if web.service.hub.subscriber_counts()["agent"] >= 2:
                break
            await asyncio.sleep(0.02)
        hub.to_agent("agent-web", _frustration("I think mine begins with 411"))
        hub.to_agent("agent-web", _said(4, "I think mine begins with 411", 10.0))
        hub.to_agent("agent-web", _said(5, "[number]", 14.0))
        await agent.wait_for_selector('#transcript li[data-key="fix-call/customer/5"]')
        await agent.wait_for_selector('blockquote.said p[data-key="customer/4"]')
        await floor.wait_for_selector('#detail-transcript li[data-key="customer/5"]')
        await agent.get_by_role("button", name="Got it").click()
        hub.to_agent(
            "agent-web", _said(4, "I think mine begins with [number]", 10.0, corrected=True)
        )
        hub.to_agent("agent-web", _frustration("I think mine begins with [number]", corrected=True))
        for page in (agent, floor):
            await page.wait_for_function("!document.body.innerText.includes('411')")
        said = "els => els.map(e => e.lastChild.textContent)"  # after the "who" label
        assert await agent.eval_on_selector_all("#transcript li", said) == [
            "I think mine begins with [number]",
            "[number]",
        ]  # one line per utterance, in spoken order
        assert await agent.locator(".nudge[data-nudge-id='fix-call-1']").count() == 1
        pressed = agent.locator('.nudge button[data-action="got_it"][aria-pressed="true"]')
        assert await pressed.count() == 1  # the agent's answer stays with the corrected nudge
        quote = await agent.locator("blockquote.said").inner_text()
        assert "[number]" in quote and "411" not in quote
        detail = await floor.eval_on_selector_all("#detail-transcript li", said)
        assert detail == ["I think mine begins with [number]", "[number]"]
        assert await floor.locator('#detail-nudges li[data-nudge-id="fix-call-1"]').count() == 1
        await call.send(json.dumps({"type": "stop"}))
