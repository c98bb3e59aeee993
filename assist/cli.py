"""Command line: ``assist serve | replay | demo | synth | export | erase | report | assess |
classify | train-text | fine-tune-text | schemas``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
import uuid
import wave
from dataclasses import asdict
from importlib import resources
from pathlib import Path
from typing import Any

from assist.config import ConfigError, CuesConfig, load_settings
from assist.vocabulary import TextScores

log = logging.getLogger("assist")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _format_event(event: dict[str, Any], elapsed: float) -> str | None:
    if event["type"] == "nudge":
        suggestion = f"\n{'':>14}-> {event['suggestion']}" if event.get("suggestion") else ""
        return (
            f"[{elapsed:7.2f}s] NUDGE {event['kind']:<12} ({event['severity']}) "
            f"{event['message']}  [{event['evidence']['explanation']}, "
            f"at {event['media_time_s']:.2f}s of the call]{suggestion}"
        )
    # An utterance Whisper heard no words in (a short backchannel, a cough) ends in an empty
    # final: it clears the agent page's preview, and there is nothing to print.
    if event["type"] == "transcript" and event["final"] and event["text"].strip():
        return f"[{elapsed:7.2f}s] {event['channel']:>8}: {event['text']}"
    return None


def _print_event(event: dict[str, Any], elapsed: float) -> None:
    line = _format_event(event, elapsed)
    if line:
        print(line, flush=True)


def _print_scorecard(scorecard: dict[str, Any] | None) -> None:
    if not scorecard:
        return
    print("\nScorecard:")
    for skill, entry in scorecard["skills"].items():
        score = "  n/a" if entry["score"] is None else f"{entry['score']:5d}"
        print(f"  {skill:<18}{score}   ({entry['basis']})")
    m = scorecard["metrics"]
    print(
        f"  talk: customer {m['talk_s'].get('customer', 0):.1f}s, agent "
        f"{m['talk_s'].get('agent', 0):.1f}s; overlap {m['overlap_s']:.1f}s; "
        f"holds {m['holds']} (longest {m['longest_hold_s']:.1f}s); "
        f"interruptions {m['interruptions']}; dead air {m['dead_air_moments']}"
    )
    if m.get("audio_lost_s"):
        print(
            f"  audio lost: {m['audio_lost_s']:.1f}s never reached the analysis (shed when the"
            " server fell behind, or paused by the platform): nothing in it was heard or judged"
        )


async def _serve(args: argparse.Namespace) -> int:
    from assist.server.access import check_bind
    from assist.server.app import AssistServer
    from assist.service import AssistService

    overrides: dict[str, Any] = {}
    if args.host is not None:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    settings = load_settings(args.config, server=overrides)
    check_bind(settings, settings.server.host)  # ConfigError (exit 2) before anything opens
    if settings.logging.debug_text:  # the operator asked for text in the log
        logging.getLogger("assist").setLevel(logging.DEBUG)
    service = AssistService(settings)
    server = AssistServer(service)
    await server.start(settings.server.host, settings.server.port)
    await service.load_models()
    print(f"assist serving on ws://{settings.server.host}:{server.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.close()
    return 0


async def _replay(args: argparse.Namespace) -> int:
    from assist.replay import replay_wav

    call_id = args.call_id or f"replay-{uuid.uuid4().hex[:8]}"
    try:
        result = await replay_wav(
            args.wav,
            args.url,
            args.agent_id,
            call_id,
            args.speed,
            args.encoding,
            _print_event,
            args.token,
            args.ingest_token,
        )
    except (OSError, ValueError, wave.Error) as exc:
        print(f"assist replay: {exc}", file=sys.stderr)
        return 2
    if result.error:
        print(f"assist replay: server refused the call: {result.error}", file=sys.stderr)
        return 1
    _print_scorecard(result.scorecard)
    return 0


def demo_call_path() -> Path:
    """The bundled demo call, ``assist/data/demo_call.wav``: 96 s, 8 kHz 16-bit stereo, left
    customer, right agent."""
    return Path(str(resources.files("assist") / "data" / "demo_call.wav"))


async def _demo(args: argparse.Namespace) -> int:
    from assist.replay import replay_wav
    from assist.server.app import AssistServer
    from assist.service import AssistService

    # The demo keeps its record in memory: it never touches a real call database.
    settings = load_settings(args.config, store={"backend": "memory"})
    service = AssistService(settings)
    server = AssistServer(service)
    host = settings.server.host
    try:
        await server.start(host, args.port)
    except OSError as exc:
        print(f"assist demo: cannot listen on {host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    await service.load_models()
    base = f"ws://{host}:{server.port}"
    http = f"http://{host}:{server.port}"
    wav = demo_call_path()
    print(f"Live-call assist demo: server on {base}")
    print(f"  agent page    {http}/agent?agent_id=demo-agent")
    print(f"  floor page    {http}/floor")
    print(f"  agent events  {base}/v1/agents/demo-agent/events")
    print(f"  floor events  {base}/v1/floor/events")
    print(f"  health        {http}/healthz    metrics {http}/metrics")
    print(f"Replaying {wav.name} (left customer, right agent) at {args.speed}x real time...")
    if not args.keep_serving:
        print("(the server stops after the call; --keep-serving keeps these URLs up)")
    print()
    result = await replay_wav(
        wav, base, "demo-agent", "demo-call", args.speed, "mulaw", _print_event
    )
    _print_scorecard(result.scorecard)
    if args.keep_serving:
        print(f"\nScorecard JSON: {http}/v1/calls/demo-call/scorecard")
        print("Still serving; Ctrl-C to stop.", flush=True)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()
    await server.close()
    return 0 if result.scorecard is not None else 1


def _synth(args: argparse.Namespace) -> int:
    from assist.config import Settings
    from assist.synth.render import render, write_stereo_wav
    from assist.synth.script import CallScript
    from assist.synth.truth import expected_cues

    call = render(CallScript.load(args.script))
    write_stereo_wav(args.out, call.audio, call.sample_rate)
    truth = {
        "utterances": [asdict(u) for u in call.utterances],
        "holds": [h.model_dump() for h in call.script.hold],
        "expected_cues": [asdict(c) for c in expected_cues(call, Settings().cues)],
    }
    Path(args.out).with_suffix(".truth.json").write_text(json.dumps(truth, indent=2) + "\n")
    print(f"wrote {args.out} ({call.script.duration_s:.0f}s) and its .truth.json")
    return 0


def _export(args: argparse.Namespace) -> int:
    from assist.service import open_store

    settings = load_settings(args.config)
    store = open_store(settings)
    count = 0
    with contextlib.ExitStack() as stack:
        stack.callback(store.close)
        out = stack.enter_context(open(args.out, "w", encoding="utf-8")) if args.out else sys.stdout
        if args.feedback:
            from assist.text.feedback import feedback_lines, write_feedback_tsv

            count = write_feedback_tsv(feedback_lines(store.export()), out)
            print(f"exported {count} line(s) marked not right", file=sys.stderr)
            return 0
        for record in store.export():
            out.write(json.dumps(record) + "\n")
            count += 1
    print(f"exported {count} call(s)", file=sys.stderr)
    return 0


def _erase(args: argparse.Namespace) -> int:
    """Delete one call's record and everything derived from it (data-subject requests)."""
    from assist.service import open_store

    settings = load_settings(args.config)
    store = open_store(settings)
    try:
        record = store.record(args.call)
        if record is None:
            print(f"assist erase: no record of call {args.call}", file=sys.stderr)
            return 1
        if record["status"] == "live":
            print(
                f"assist erase: call {args.call} is live; erase it once it has ended",
                file=sys.stderr,
            )
            return 1
        store.erase(args.call)
    finally:
        store.close()
    print(f"erased call {args.call}: record, transcripts, nudges, feedback, legs, scorecard")
    return 0


def _report(args: argparse.Namespace) -> int:
    from assist.coaching import agent_report, team_report
    from assist.report_html import agent_page, team_page
    from assist.service import open_store

    if not (args.agent or args.team):
        print("assist report: give --agent AGENT_ID or --team", file=sys.stderr)
        return 2
    settings = load_settings(args.config)
    store = open_store(settings)
    try:
        import time

        since = time.time() - args.days * 86400
        records = list(store.export(since=since))
    finally:
        store.close()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.team:
        team = team_report(records)
        path = out / "team.html"
        path.write_text(team_page(team, args.days), encoding="utf-8")
        for row in team["skills"]:
            print(f"{row['skill']:<18} team mean {row['team_mean']:5.1f}  best quartile "
                  f"{row['top_quartile']:5.1f}  gap {row['gap']:+5.1f}")  # fmt: skip
    else:
        report = agent_report(args.agent, records)
        path = out / f"report-{args.agent}.html"
        path.write_text(agent_page(report, args.days), encoding="utf-8")
        print(f"{args.agent}: {report['calls']} call(s); focus: {report['focus_skill']}")
    print(f"wrote {path}")
    return 0


def _assess(args: argparse.Namespace) -> int:
    """Recorded calls through the live pipeline into the store, and the baseline report."""
    from assist.assess.agents import parse_date
    from assist.assess.batch import AssessOptions, assess

    settings = load_settings(args.config)
    try:
        since = parse_date(args.since) if args.since else None
    except ValueError:
        print(f"assist assess: --since {args.since!r} is not an ISO 8601 date", file=sys.stderr)
        return 2
    options = AssessOptions(
        paths=[Path(p) for p in args.paths],
        agent_rule=args.agent_from,
        agents_csv=Path(args.agents) if args.agents else None,
        workers=args.workers or 0,
        since=since,
        out_dir=Path(args.out) if args.out else None,
        ledger=Path(args.ledger) if args.ledger else None,
        device=args.device,
        progress=not args.no_progress,
    )
    try:
        summary = assess(options, settings)
    except (ValueError, OSError) as exc:
        print(f"assist assess: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("assist assess: interrupted; run it again to resume", file=sys.stderr)
        return 130
    speed = f", {summary.speed:.1f}x real time" if summary.speed else ""
    print(
        f"{summary.found} call(s) found: {len(summary.assessed)} assessed "
        f"({summary.audio_s / 3600:.2f} h of audio in {summary.wall_s:.0f} s{speed}), "
        f"{len(summary.already)} assessed before, {len(summary.problems)} skipped"
    )
    for problem in summary.problems:
        print(f"  skipped: {problem}")
    report = summary.report or {}
    for rank, priority in enumerate(report.get("priorities", []), start=1):
        print(f"train first {rank}: {priority['skill']}: {priority['why']}")
    print(f"wrote {summary.report_json} and {summary.report_html}")
    return 0


def verdict_json(
    scores: TextScores, cues: CuesConfig, previous: str | None = None
) -> dict[str, Any]:
    """One utterance's scores and the detectors' decision on it, as ``assist classify``
    prints it: the same decision functions the live cues use, sentence by sentence, with
    the other speaker's ``previous`` turn as context. ``kind`` is the cue that fires (or
    None); ``quote`` and ``span`` (characters of the utterance) point at what fired;
    ``line_problem`` says a sentence is about the connection (never a cue); ``sentences``
    lists each sentence's score."""
    from assist.detectors.customer_frustration import (
        acknowledges,
        frustrated_sentence,
        frustration_threshold,
        quoted_part,
    )
    from assist.detectors.negative_phrasing import decide_utterance, quote_span, threshold_of
    from assist.nudges import ACKNOWLEDGE_FEELINGS
    from assist.text.context import line_problem

    out: dict[str, Any] = {"text": scores.text, "speaker": scores.speaker, "kind": None}
    out["line_problem"] = any(line_problem(part.text) for part in scores.parts)
    if scores.speaker == "customer":
        threshold = frustration_threshold(scores, cues.customer_frustration)
        sentence = frustrated_sentence(scores, threshold, previous)
        part = quoted_part(scores, sentence, previous) if sentence else None
        out.update(
            kind="customer_frustration" if sentence else None,
            score=round((sentence or scores).frustration or 0.0, 4),
            second_opinion=(sentence or scores).second_opinion,
            threshold=threshold,
            quote=part.text if part else None,
            suggestion=ACKNOWLEDGE_FEELINGS if sentence else None,
            span=(list(part.span or (0, len(scores.text))) if part else None),
            sentences=[
                {
                    "text": p.text,
                    "span": list(p.span or (0, len(p.text))),
                    "score": round(p.frustration or 0.0, 4),
                    "second_opinion": p.second_opinion,
                }
                for p in scores.sentences or (scores,)
            ],
        )
        return out
    threshold = threshold_of(scores, cues.negative_phrasing)
    fired = decide_utterance(scores, threshold, previous)
    out.update(
        score=round(scores.phrasing_score, 4),
        second_opinion=scores.second_opinion,
        threshold=threshold,
        category=None,
        quote=None,
        suggestion=None,
        span=None,
        sentences=[
            {
                "text": p.text,
                "span": list(p.span or (0, len(p.text))),
                "score": round(p.phrasing_score, 4),
                "second_opinion": p.second_opinion,
            }
            for p in scores.sentences or (scores,)
        ],
    )
    if fired is not None:
        sentence, decision = fired
        span, suggestion = quote_span(scores.text, sentence, decision.category)
        out.update(
            kind="negative_phrasing",
            category=decision.category,
            score=round(decision.score, 4),
            second_opinion=sentence.second_opinion,
            quote=scores.text[span[0] : span[1]],
            suggestion=suggestion,
            span=list(span),
        )
    out["empathy"] = None if scores.empathy is None else round(scores.empathy, 4)
    out["acknowledges"] = acknowledges(scores)
    return out


def _classify(args: argparse.Namespace) -> int:
    """One utterance per stdin line in, one JSON verdict per line out (blank lines skipped).
    A line ``PREVIOUS<TAB>UTTERANCE`` gives the other speaker's previous turn as context."""
    from assist.text.classify import ModelsMissing, TextClassifier
    from assist.text.encoder import EncoderUnavailable
    from assist.text.heads import HeadMismatch

    cues = load_settings(args.config).cues
    try:
        classifier = TextClassifier(Path(args.models) if args.models else None)
    except (ModelsMissing, HeadMismatch, EncoderUnavailable) as exc:
        print(f"assist classify: {exc}", file=sys.stderr)
        return 2
    for line in sys.stdin:
        previous, _, text = line.rstrip("\n").rpartition("\t")
        text = text.strip()
        if not text:
            continue
        scores = classifier.score_utterance(args.speaker, text)
        verdict = verdict_json(scores, cues, previous.strip() or None)
        print(json.dumps(verdict), flush=True)
    return 0


def _schemas(args: argparse.Namespace) -> int:
    from assist.events import wire_schemas

    print(json.dumps(wire_schemas(), indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``assist`` argument parser with every subcommand; ``train-text`` is listed only
    (``main`` passes its arguments to ``assist.text.train``, which has its own options)."""
    parser = argparse.ArgumentParser(prog="assist", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the live service")
    serve.add_argument("--config", help="TOML settings file (see configs/default.toml)")
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8765)")

    replay = sub.add_parser("replay", help="stream a stereo WAV to a running server")
    replay.add_argument("wav", help="16-bit stereo WAV, left customer, right agent")
    replay.add_argument("--agent-id", required=True)
    replay.add_argument("--call-id")
    replay.add_argument("--url", default="ws://127.0.0.1:8765")
    replay.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="1.0 real time (a live line: audio the server can't keep up with is shed); "
        "0 unpaced, as a recording the server reads no faster than it keeps up",
    )
    replay.add_argument("--encoding", choices=["pcm16", "mulaw"], default="pcm16")
    replay.add_argument("--token", help="access token for the agent's event stream")
    replay.add_argument("--ingest-token", help="ingest token for the call (servers off loopback)")

    demo = sub.add_parser("demo", help="start a server and replay the bundled sample call")
    demo.add_argument("--config")
    demo.add_argument("--port", type=int, default=0, help="0 picks a free port")
    demo.add_argument("--speed", type=float, default=1.0)
    demo.add_argument("--keep-serving", action="store_true")

    synth = sub.add_parser("synth", help="render a call script (TOML) to a stereo WAV")
    synth.add_argument("script")
    synth.add_argument("out")

    export = sub.add_parser("export", help="write every stored call as JSON lines")
    export.add_argument("--config")
    export.add_argument("--out", help="file to write (default: standard output)")
    export.add_argument(
        "--feedback",
        action="store_true",
        help="write the text nudges agents marked 'Not right' as training lines (TSV) instead",
    )

    erase = sub.add_parser(
        "erase", help="delete a call's record and every copy of it (data-subject requests)"
    )
    erase.add_argument("--call", required=True, help="the call id")
    erase.add_argument("--config")

    report = sub.add_parser("report", help="coaching report (HTML) for an agent or the team")
    report.add_argument("--agent")
    report.add_argument("--team", action="store_true")
    report.add_argument("--days", type=float, default=30)
    report.add_argument("--out", default="reports")
    report.add_argument("--config")

    assess = sub.add_parser(
        "assess", help="score recorded calls (files or folders) and write a team baseline report"
    )
    assess.add_argument("paths", nargs="+", help="recordings or folders (searched recursively)")
    who = assess.add_mutually_exclusive_group()
    who.add_argument("--agent-from", metavar="REGEX", help="agent id from file names: group agent")
    who.add_argument("--agents", metavar="CSV", help="CSV: file,agent_id[,call_date]")
    assess.add_argument("--workers", type=int, help="worker processes (default: one per core)")
    assess.add_argument("--since", metavar="DATE", help="report the change since this date")
    assess.add_argument("--out", help="report folder (default [assess] report_dir)")
    assess.add_argument("--ledger", help="resume ledger (default next to the store)")
    assess.add_argument("--device", choices=["auto", "cpu", "cuda"], help="ASR device")
    assess.add_argument("--no-progress", action="store_true", help="no progress bar")
    assess.add_argument("--config")

    classify = sub.add_parser(
        "classify",
        help="judge utterances (one per stdin line, or PREVIOUS<TAB>UTTERANCE with the other"
        " speaker's previous turn) sentence by sentence with the text models",
    )
    classify.add_argument("--speaker", choices=["agent", "customer"], required=True)
    classify.add_argument("--config", help="TOML settings file ([cues.*] min_score)")
    classify.add_argument(
        "--models",
        help="folder of the ONNX heads (default: the ones shipped in the package, assist/models/)",
    )

    sub.add_parser(
        "train-text",
        help="rebuild the text models in assist/models/ from the labelled data (see its --help)",
        add_help=False,
    )

    sub.add_parser(
        "fine-tune-text",
        help="fine-tune MiniLM's top layers for a text cue into models/tops/, for "
        "train-text to use (needs torch: the finetune extra; see its --help)",
        add_help=False,
    )
    sub.add_parser("schemas", help="print the JSON Schemas of the wire messages")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``assist`` command line on ``argv`` (default ``sys.argv[1:]``).

    Returns the exit status: 0 done, 1 failed (a refused replay, a demo without a
    scorecard, an erase of an unknown or live call), 2 bad usage or settings (a
    ``ConfigError`` is printed, not raised: also ``serve`` on a non-loopback address without
    ingest credentials); argparse itself exits with 2 on unknown options. ``serve`` always
    logs at INFO level (DEBUG with ``[logging] debug_text``).
    """
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["train-text"]:  # the trainer has its own options
        from assist.text.train import main as train_main

        return train_main(argv[1:])
    if argv[:1] == ["fine-tune-text"]:  # so has the fine-tuner
        from assist.text.fine_tune import main as fine_tune_main

        return fine_tune_main(argv[1:])
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose or args.command == "serve")
    try:
        return _run(args)
    except ConfigError as exc:
        print(f"assist {args.command}: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.command == "serve":
        return asyncio.run(_serve(args))
    if args.command == "replay":
        return asyncio.run(_replay(args))
    if args.command == "demo":
        return asyncio.run(_demo(args))
    if args.command == "synth":
        return _synth(args)
    if args.command == "export":
        return _export(args)
    if args.command == "erase":
        return _erase(args)
    if args.command == "report":
        return _report(args)
    if args.command == "assess":
        return _assess(args)
    if args.command == "classify":
        return _classify(args)
    return _schemas(args)


if __name__ == "__main__":
    sys.exit(main())
