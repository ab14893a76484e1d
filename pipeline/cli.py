"""The ``callqa`` command line: a thin layer over the library."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline import __version__
from pipeline.errors import (
    EXIT_CALLS_FAILED,
    EXIT_DISK_FULL,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    CallqaError,
    ConfigError,
)

if TYPE_CHECKING:
    from pipeline.config import Config
    from pipeline.insights.store import InsightStore

EXIT_CODES_HELP = f"""exit codes:
  {EXIT_OK}    every call succeeded (or was already done)
  {EXIT_ERROR}    callqa itself failed unexpectedly
  {EXIT_USAGE}    bad command line, config or input; nothing was processed
  {EXIT_CALLS_FAILED}    the batch finished but some calls failed (see OUT/run.json)
  {EXIT_DISK_FULL}    stopped because the disk (or quota) is full; finished calls are kept: free
       space and run the same command again to resume
  {EXIT_INTERRUPTED}  interrupted; run the same command again to resume
"""


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="YAML config (see configs/default.yaml); defaults apply to keys it omits")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one key, e.g. --set asr.beam_size=5 (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callqa",
        description="Automatic QA of recorded customer-service calls: transcripts, speakers, scorecard suggestions.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"callqa {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="process a folder, manifest or file of recordings, e-mails and chats",
        description=(
            "Process every recording, e-mail thread (.eml, .mbox) and chat (.json, .csv) of INPUT (a folder "
            "searched recursively, a manifest CSV with call_id,path,agent_id,queue,started_at, or one file) into "
            "OUT. Re-running skips interactions already done with the same content and config, and resumes "
            "after a crash."
        ),
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("input", metavar="INPUT", help="folder of recordings, e-mails and chats, manifest .csv, or one file")
    run.add_argument("--out", required=True, metavar="OUT", help="output folder (created if missing)")
    _add_config_args(run)
    run.add_argument("--workers", type=int, metavar="N",
                     help="worker processes, or Ray actors (default: run.workers in the config; 0 = automatic)")
    run.add_argument("--executor", choices=["local", "ray"],
                     help="local: worker processes on this machine (default); ray: actors on a Ray cluster")
    run.add_argument("--address", metavar="ADDR",
                     help="with --executor ray: the cluster (auto, HOST:6379 or ray://HOST:10001); "
                          "default: a Ray instance started on this machine for the run")
    run.add_argument("--force", action="store_true", help="redo every call, even those already done")
    level = run.add_mutually_exclusive_group()
    level.add_argument("-q", "--quiet", action="store_true", help="no progress bar; only errors")
    level.add_argument("-v", "--verbose", action="store_true", help="log every call")

    cfg = sub.add_parser("config", help="print the effective config as YAML (after --config and --set)")
    _add_config_args(cfg)
    cfg.add_argument("--check", action="store_true",
                     help="also find the backends, models and paths it names, as run and eval do before the first call")

    models = sub.add_parser("models", help="packaged models and checkpoint conversion")
    msub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    msub.add_parser("list", help="the packaged models and where they are")
    build = msub.add_parser(
        "build-openai",
        help="rebuild an openai-whisper checkpoint from packaged CTranslate2 weights",
        description="Rebuild an openai-whisper .pt checkpoint from a CTranslate2 Whisper model (packaged name or directory).",
    )
    build.add_argument("--model", default="tiny.en", help="packaged name (tiny.en, base) or CTranslate2 model directory")
    build.add_argument("--out", required=True, metavar="FILE", help="where to write the .pt checkpoint")

    card = sub.add_parser("scorecard", help="check scorecard templates; list the detectors items can use")
    csub = card.add_subparsers(dest="scorecard_command", metavar="ACTION", required=True)
    check = csub.add_parser("check", help="validate a template and print its items")
    check.add_argument("template", nargs="?", metavar="FILE", help="template YAML (default: the packaged inbound_support)")
    csub.add_parser("detectors", help="the registered detectors with their parameters, and the na_when conditions")

    db = sub.add_parser("db", help="the review database: create or upgrade it, load a run's results")
    dsub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    up = dsub.add_parser("upgrade", help="create the database or bring its schema up to date")
    _add_db_arg(up)
    load = dsub.add_parser("load", help="load (or update) a run's calls and suggestions; human answers are kept")
    load.add_argument("out", metavar="OUT", help="output folder of a callqa run")
    _add_db_arg(load)
    users = sub.add_parser("users", help="users of the review app")
    usub = users.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    add = usub.add_parser("add", help="add a user (the password is asked for, or read from stdin; 12 or more "
                                      "characters of two kinds or more, not containing the name)")
    add.add_argument("username", metavar="NAME")
    add.add_argument("--role", required=True, choices=["reviewer", "lead", "admin", "agent", "supervisor"],
                     help="reviewer: the calls assigned to them; lead, admin: every call (and, on a live server, "
                          "the calls in progress); agent: their own reviewed calls (read, listen, dispute an "
                          "answer), with --agent-id; supervisor: the calls in progress on a live server (the live "
                          "wall, listen-in, flagging moments), no recorded call")
    add.add_argument("--agent-id", metavar="ID", default=None,
                     help="for --role agent (required there, refused otherwise): the agent id as in the call "
                          "metadata (agent_id), e.g. A12")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    _add_db_arg(add)
    lst = usub.add_parser("list", help="the users, their roles (and an agent's agent id)")
    _add_db_arg(lst)
    deact = usub.add_parser("deactivate", help="stop a user logging in and end their sessions (reviews are kept)")
    react = usub.add_parser("activate", help="let a deactivated user log in again")
    reset = usub.add_parser("reset-password", help="give a user a new password (asked for, or read from stdin); "
                                                   "their sessions end")
    reset.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    for p in (deact, react, reset):
        p.add_argument("username", metavar="NAME")
        _add_db_arg(p)
    smp = sub.add_parser("sample", help="pick calls to review: N per agent and period, plus every auto-fail and "
                                        "low-confidence call, round-robin to reviewers (a dry run unless --apply)")
    smp.add_argument("--per-agent", type=int, default=2, metavar="N", help="random calls per agent (default 2)")
    smp.add_argument("--from", dest="start", metavar="DATE", help="calls started on or after (ISO, e.g. 2026-11-01)")
    smp.add_argument("--to", dest="end", metavar="DATE", help="calls started before (ISO)")
    smp.add_argument("--reviewers", required=True, metavar="A,B,...", help="user names to assign to, in turn")
    smp.add_argument("--seed", type=int, default=0, help="random seed (the same seed gives the same sample)")
    smp.add_argument("--low-confidence-min", type=int, default=1, metavar="K",
                     help="a call with at least K low-confidence answers is always picked (default 1)")
    smp.add_argument("--apply", action="store_true", help="write the assignments (default: print the plan only)")
    _add_db_arg(smp)
    smp.add_argument("--uncertain-share", type=float, default=0.2, metavar="S",
                     help="share of the sample given to the calls the machine is least sure of (lowest item "
                          "confidence, items reviewers recently disagreed with); review.uncertain_share, default 0.2")
    from pipeline.learning.cli import add_parser as add_tune_parser

    add_tune_parser(sub)  # callqa tune --from-reviews (pipeline/learning/cli.py)
    srv = sub.add_parser("serve", help="the reviewers' web app (log in with a user from 'callqa users add')")
    _add_db_arg(srv)
    srv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    srv.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    srv.add_argument("--secure-cookies", action="store_true", help="mark cookies Secure (behind HTTPS)")
    srv.add_argument("--config", metavar="FILE",
                     help="YAML config whose 'review' section applies (review.allow_original_audio; default: "
                          "only masked audio is played), and with --live its 'live' section and the batch "
                          "pipeline's settings for the calls that end")
    srv.add_argument("--live", action="store_true",
                     help="also receive calls in progress: Twilio Media Streams on the WebSocket /live/twilio "
                          "(a token from 'callqa live token add'), GET /api/live/calls")
    srv.add_argument("--audiosocket-port", type=int, default=0, metavar="PORT",
                     help="with --live, also receive Asterisk AudioSocket legs over TCP on --host: customer legs "
                          "on PORT, agent legs on PORT+1, the two legs of a call sharing the dial plan's UUID "
                          "(default 0: off)")
    srv.add_argument("--audiosocket-allow", action="append", metavar="CIDR",
                     help="an address or network AudioSocket connections may come from (repeatable; default "
                          "127.0.0.1/32); others are refused before any audio is read")
    lv = sub.add_parser("live", help="live monitoring: the tokens telephony platforms stream calls with")
    lv_sub = lv.add_subparsers(dest="live_command", required=True)
    tok = lv_sub.add_parser("token", help="add, list or revoke stream tokens")
    tok_sub = tok.add_subparsers(dest="token_command", required=True)
    tok_add = tok_sub.add_parser("add", help="make a token NAME and print it (once: only its hash is kept)")
    tok_add.add_argument("name", metavar="NAME")
    _add_db_arg(tok_add)
    tok_list = tok_sub.add_parser("list", help="the tokens' names, when made, whether revoked")
    _add_db_arg(tok_list)
    tok_rev = tok_sub.add_parser("revoke", help="revoke token NAME: its streams are refused from now on")
    tok_rev.add_argument("name", metavar="NAME")
    _add_db_arg(tok_rev)

    imp = sub.add_parser("import", help="import surveys or ACD/CDR records into a results folder's insight store, "
                                        "joined to its interactions")
    isub = imp.add_subparsers(dest="import_kind", metavar="KIND", required=True)
    for kind, what in (("surveys", "customer surveys: call_id, customer, time, csat (1-5), nps (0-10), comment, "
                                   "channel (phone/mail/online)"),
                       ("acd", "ACD/CDR records: call_id, customer, time, queue, queue_s, talk_s, hold_s, wrap_s, "
                               "transfers, abandoned (0/1), agent_id")):
        p = isub.add_parser(kind, help=f"import a CSV of {what}",
                            description=f"Import a CSV of {what} into OUT's insight store. Rows are joined by "
                                        "call_id, else by customer (hashed) and time within "
                                        "insights.match_tolerance_s; unmatched rows are kept and reported, bad rows "
                                        "reported and skipped; re-importing a file adds nothing twice. Exit code 0, "
                                        f"or {EXIT_CALLS_FAILED} when some rows were bad (the others are imported).")
        p.add_argument("out", metavar="OUT", help="results folder of a callqa run")
        p.add_argument("file", metavar="FILE", help="the CSV file")
        _add_config_args(p)
    rep = sub.add_parser("report", help="manager report of a period: KPIs against goals and a baseline, trends, "
                                        "satisfaction, per-agent coaching reports")
    rep.add_argument("out", metavar="OUT", help="results folder of a callqa run")
    rep.add_argument("--period", choices=["day", "week", "month"], default="week",
                     help="the day, ISO week or month holding --end (default week)")
    rep.add_argument("--end", metavar="DATE", help="a day of the period (default: the newest interaction's day)")
    rep.add_argument("--from", dest="start", metavar="DATE", help="with --to: the period's first day instead")
    rep.add_argument("--to", dest="to", metavar="DATE", help="with --from: the period's last day (included)")
    rep.add_argument("--baseline", metavar="FROM:TO",
                     help="the baseline's first and last day (default: insights.baseline_days before the period)")
    rep.add_argument("--team", metavar="T", help="only this team")
    rep.add_argument("--out", dest="report_dir", required=True, metavar="DIR",
                     help="where report.html, report.json, the CSVs and coaching/ go")
    _add_config_args(rep)

    ins = sub.add_parser("insights", help="voice of the customer: contact-reason topics and trends, complaint "
                                          "drivers, repeat contacts and first-contact resolution",
                         description="Topics of the contact reasons of OUT's interactions (clustered by meaning, "
                                     "labelled by their words), their weekly trend and growth against a baseline, "
                                     "complaint drivers, repeat contacts and first-contact resolution, survey "
                                     "comments per topic. Writes insights.json, topics.csv, topic_trends.csv, "
                                     "drivers.csv, repeat_contacts.csv and insights.html into DIR. The insight store "
                                     "is brought up to date first (new calls only).")
    ins.add_argument("out", metavar="OUT", help="results folder of a callqa run")
    ins.add_argument("--out", dest="insights_dir", required=True, metavar="DIR", help="where the files go")
    ins.add_argument("--from", dest="start", metavar="DATE",
                     help="the period's first day (default: 28 days before --to)")
    ins.add_argument("--to", dest="to", metavar="DATE",
                     help="the period's last day, included (default: the newest interaction's day)")
    ins.add_argument("--baseline", metavar="FROM:TO",
                     help="the baseline's first and last day (default: insights.baseline_days before the period)")
    ins.add_argument("--store", metavar="PATH", help="the insight store (default OUT/.callqa-insights.sqlite)")
    _add_config_args(ins)

    ev = sub.add_parser(
        "eval",
        help="measure callqa against labelled calls (also: eval compare, eval sweep)",
        description=(
            "Run the pipeline over the labelled calls of DATA (recordings + labels/<call_id>.json, see the README) "
            "and measure it: WER/CER per call and role, DER/JER and role accuracy, per-item agreement of the "
            "scorecard (accuracy, precision, recall, F1, Cohen's kappa, confusions), total-score error, and every "
            "disagreement with its evidence. Writes OUT/report.json and OUT/report.html. Transcripts and speakers "
            "are cached by their inputs (--cache), so a change to detectors or the scorecard re-scores in seconds. "
            "'callqa eval compare A B' compares two reports; 'callqa eval sweep DATA --grid KEY=V1,V2' evaluates a grid."
        ),
    )
    ev.add_argument("data", metavar="DATA", help="folder of labelled calls")
    ev.add_argument("--out", required=True, metavar="REPORT_DIR", help="where report.json and report.html go")
    _add_eval_args(ev)
    return parser


def _add_db_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", default=None, metavar="URL",
                   help="a SQLite file or postgresql://USER@HOST/DB (default: $CALLQA_DB, else callqa.db here)")


def _engine(args: argparse.Namespace):  # noqa: ANN202 - sqlalchemy Engine
    import os

    from pipeline.review.db import make_engine
    from pipeline.review.migrate import upgrade

    engine = make_engine(args.db or os.environ.get("CALLQA_DB") or "callqa.db")
    upgrade(engine)
    return engine


def _cmd_db(args: argparse.Namespace) -> int:
    from pipeline.review.db import sessions
    from pipeline.review.migrate import current_revision
    from pipeline.review.loader import load_results

    engine = _engine(args)
    if args.db_command == "upgrade":
        print(f"schema at revision {current_revision(engine)}")
        return EXIT_OK
    with sessions(engine).begin() as session:
        counts = load_results(session, args.out)
    print(", ".join(f"{v} {k}" for k, v in counts.to_dict().items()))
    return EXIT_OK


def _cmd_users(args: argparse.Namespace) -> int:
    import getpass

    from sqlalchemy import select

    from pipeline.review.db import Call, User, sessions
    from pipeline.review.users import add_user, check_agent_id, check_password, reset_password, set_active

    engine = _engine(args)
    with sessions(engine).begin() as session:
        if args.users_command == "list":
            for user in session.scalars(select(User).order_by(User.username)):
                agent = f" agent_id={user.agent_id}" if user.agent_id is not None else ""
                print(f"{user.username:30} {user.role:9} {'active' if user.active else 'disabled':8}{agent}".rstrip())
            return EXIT_OK
        if args.users_command in ("deactivate", "activate"):
            user = set_active(session, args.username, args.users_command == "activate")
            print(f"{user.username} {'can log in again' if user.active else 'deactivated; their sessions ended'}")
            return EXIT_OK
        if args.users_command == "add":  # said before any password prompt
            check_agent_id(args.username, args.role, args.agent_id)
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = getpass.getpass(f"password for {args.username}: ")
            check_password(args.username, password)  # said before the second prompt
            if getpass.getpass("again: ") != password:
                raise ConfigError(f"users {args.users_command}: the two passwords differ")
        if args.users_command == "reset-password":
            user = reset_password(session, args.username, password)
            print(f"new password set for {user.username}; their sessions ended")
            return EXIT_OK
        user = add_user(session, args.username, password, args.role, agent_id=args.agent_id)
        if user.agent_id is None:
            print(f"added {user.username} ({user.role})")
            return EXIT_OK
        print(f"added {user.username} (agent, agent id {user.agent_id}): they see their own calls once reviewed")
        if session.scalar(select(Call.call_id).where(Call.agent_id == user.agent_id).limit(1)) is None:
            print(f"note: no loaded call has agent id {user.agent_id} yet; check that it is written as in the "
                  "call metadata", file=sys.stderr)
    return EXIT_OK


def _cmd_sample(args: argparse.Namespace) -> int:
    from pipeline.review.db import sessions
    from pipeline.review.sampling import assignment_rows, plan_sample

    engine = _engine(args)
    with sessions(engine).begin() as session:
        made = plan_sample(session, args.per_agent, args.start, args.end,
                           [r.strip() for r in args.reviewers.split(",") if r.strip()], args.seed,
                           args.low_confidence_min, apply=args.apply, uncertain_share=args.uncertain_share)
        for row in assignment_rows(session, made):
            print(f"{row['call_id']:20} {row['agent_id'] or '-':10} {row['kind']:15} -> {row['reviewer']:12} {row['reason']}")
        print(f"{len(made)} call(s) {'assigned' if args.apply else 'would be assigned (dry run; --apply writes them)'}")
        if not args.apply:
            session.rollback()
    return EXIT_OK


def _cmd_tune(args: argparse.Namespace) -> int:
    from pipeline.learning.cli import cmd

    return cmd(args)


def _cmd_serve(args: argparse.Namespace) -> int:
    import os

    from pipeline.config import load_config
    from pipeline.review.app import serve

    config = load_config(args.config) if args.config else None
    audiosocket = None
    if args.audiosocket_port or args.audiosocket_allow:
        if not args.live or not args.audiosocket_port:
            raise ConfigError("--audiosocket-port PORT is for --live; --audiosocket-allow needs it")
        from pipeline.live.audiosocket import AudioSocketSettings

        audiosocket = AudioSocketSettings.from_port(args.audiosocket_port, args.host, args.audiosocket_allow)
    live = None
    if args.live:
        from pipeline.live.calls import LiveCalls
        from pipeline.live.recognizer import LiveRecognizer

        effective = config or load_config(None)
        options = effective.live
        recognizer = LiveRecognizer(args.config, options.transcribe_calls) if options.transcribe_calls else None
        live = LiveCalls(options, args.config, recognizer, effective.sentiment.negative_threshold)
    serve(args.db or os.environ.get("CALLQA_DB") or "callqa.db", args.host, args.port, args.secure_cookies,
          config.review if config else None, live, audiosocket, args.config)
    return EXIT_OK


def _cmd_live(args: argparse.Namespace) -> int:
    from pipeline.live.tokens import add_token, list_tokens, revoke_token
    from pipeline.review.db import sessions

    with sessions(_engine(args)).begin() as session:
        if args.token_command == "add":
            print(add_token(session, args.name))
            print(f"(token {args.name}: shown this once; give it to the platform as 'Authorization: Bearer TOKEN' "
                  "or ?token=TOKEN)", file=sys.stderr)
        elif args.token_command == "revoke":
            revoke_token(session, args.name)
            print(f"token {args.name} revoked")
        else:
            for t in list_tokens(session):
                state = f"revoked {t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "valid"
                print(f"{t.name:30} made {t.created_at:%Y-%m-%d %H:%M}  {state}")
    return EXIT_OK


def _add_eval_args(p: argparse.ArgumentParser) -> None:
    _add_config_args(p)
    p.add_argument("--scorecard", metavar="FILE", help="scorecard template (same as --set scorecard.template=FILE)")
    p.add_argument("--cache", metavar="DIR", help="stage cache folder (default: $CALLQA_CACHE_DIR/stages or ~/.cache/callqa/stages)")
    p.add_argument("--workers", type=int, default=1, metavar="N", help="processes transcribing calls not yet cached (default 1)")
    p.add_argument("-q", "--quiet", action="store_true", help="only errors")


def build_eval_compare_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="callqa eval compare",
        description="What improved and what regressed from report A to report B, per metric and per scorecard item, "
                    "and which answers were fixed or broken; the config keys that differ and each report's times. A "
                    "change not borne out across the calls or answers (sign test, p < 0.05) is a tie.",
    )
    p.add_argument("a", metavar="REPORT_A", help="report folder or report.json (the baseline)")
    p.add_argument("b", metavar="REPORT_B", help="report folder or report.json (the change)")
    p.add_argument("--json", metavar="FILE", help="also write the comparison as JSON")
    p.add_argument("--tolerance", type=float, default=1e-9, help="differences up to this count as the same")
    return p


def build_eval_sweep_parser() -> argparse.ArgumentParser:
    from pipeline.evaluation.sweep import DEFAULT_METRIC

    p = argparse.ArgumentParser(
        prog="callqa eval sweep",
        description="Evaluate every combination of the --grid axes on DATA (re-scoring the cached transcripts and "
                    "speakers) and print the metrics per setting, best first: the keys each changes from the "
                    "default, whether it ties with the best, and its speech-stage seconds.",
        epilog="KEY is a config key (section.key) or a scorecard item's detector parameter, item:ITEM_ID:PARAM, "
               "e.g. --grid sentiment.negative_threshold=-0.2,-0.3 --grid item:opening.verification:semantic_threshold=0.5,0.6",
    )
    p.add_argument("data", metavar="DATA", help="folder of labelled calls")
    p.add_argument("--grid", action="append", default=[], required=True, metavar="KEY=V1,V2,...", help="one axis (repeatable)")
    p.add_argument("--metric", default=DEFAULT_METRIC, help=f"rank by this report metric (default {DEFAULT_METRIC})")
    p.add_argument("--out", metavar="DIR", help="also write sweep.json and sweep.csv here")
    _add_eval_args(p)
    return p


def _cmd_run(args: argparse.Namespace) -> int:
    from pipeline.config import load_config
    from pipeline.run.runner import BatchRunner

    overrides = list(args.overrides)
    if args.workers is not None:
        overrides.append(f"run.workers={args.workers}")
    if args.executor is not None:
        overrides.append(f"run.executor={args.executor}")
    config = load_config(args.config, overrides)
    if args.address is not None:
        if config.run.executor != "ray":
            raise ConfigError("--address is for --executor ray")
        config.run.ray_address = args.address
    runner = BatchRunner(config, args.input, args.out, force=args.force, progress=not (args.quiet or args.verbose))
    return runner.run()


def _cmd_config(args: argparse.Namespace) -> int:
    import yaml

    from pipeline.config import load_config

    config = load_config(args.config, args.overrides)
    if args.check:
        from pipeline.run.preflight import preflight

        preflight(config)
    sys.stdout.write(yaml.safe_dump(config.to_dict(), sort_keys=False))
    return EXIT_OK


def _cmd_models(args: argparse.Namespace) -> int:
    from models.registry import PACKAGED_CT2, ct2_model_dir, packaged_location

    if args.models_command == "list":
        for name, what in PACKAGED_CT2.items():
            print(f"{name:8} {what}\n         {packaged_location(name)}")
        return EXIT_OK
    from models.ct2_convert import convert_ct2_to_openai

    out = convert_ct2_to_openai(ct2_model_dir(args.model), Path(args.out))
    print(out)
    return EXIT_OK


def _cmd_scorecard(args: argparse.Namespace) -> int:
    import dataclasses

    from pipeline.analysis.detectors import CONDITIONS, DETECTORS, load_plugins
    from pipeline.analysis.scorecard import load_scorecard

    plugins = load_plugins()

    def origin(group: str, name: str) -> str:
        plugin = plugins.get((group, name))
        return f" [plugin {plugin.label()}]" if plugin else ""

    if args.scorecard_command == "check":
        card = load_scorecard(args.template)
        print(f"{card.name} (version {card.version}): {len(card.items)} items in {len(card.sections)} sections, valid")
        for item in card.items:
            flags = " auto-fail" if item.auto_fail else ""
            na = f" na when {', '.join(item.na_when)}" if item.na_when else ""
            print(f"  {item.id:36} {item.points:g} pt{flags}  [{item.detector}]{na}")
        for plugin in card.plugins:
            print(f"  uses plugin {plugin['distribution']} {plugin['version']}: "
                  f"{plugin['name']} = {plugin['entry_point']}")
        return EXIT_OK
    for name, cls in sorted(DETECTORS.items()):
        print(f"{name}{origin('callqa.detectors', name)}: "
              f"{(cls.__doc__ or '').strip().splitlines()[0] if cls.__doc__ else ''}")
        if dataclasses.is_dataclass(cls.Params):
            for f in dataclasses.fields(cls.Params):
                default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
                print(f"    {f.name} = {default!r}")
    print("na_when conditions: " + ", ".join(n + origin("callqa.na_conditions", n) for n in sorted(CONDITIONS)))
    return EXIT_OK


def _eval_overrides(args: argparse.Namespace) -> list[str]:
    overrides = list(args.overrides)
    if args.scorecard:
        overrides.append(f"scorecard.template={args.scorecard}")
    return overrides


def _eval_preflight(args: argparse.Namespace, config: Config) -> None:
    """What ``callqa eval`` needs before the first call: the config's models and paths, and the
    stage cache folder."""
    from pipeline.run.preflight import preflight, writable_folder

    preflight(config, getattr(args, "out", None))
    if args.cache:
        writable_folder(Path(args.cache), "--cache")


def _cmd_eval(args: argparse.Namespace) -> int:
    from pipeline.config import load_config
    from pipeline.evaluation.harness import Evaluator, summary_lines, write_report

    config = load_config(args.config, _eval_overrides(args))
    _eval_preflight(args, config)
    from pipeline.evaluation import written_eval

    if written_eval.written_labels(Path(args.data)):  # labelled e-mail and chat conversations
        written = written_eval.evaluate_written(args.data, config)
        path = written_eval.write_written_report(written, args.out)
        if not args.quiet:
            print("\n".join(written_eval.summary_lines(written)))
            print(f"report: {path}")
        if not (Path(args.data) / "manifest.csv").is_file():  # no labelled calls beside them
            return EXIT_CALLS_FAILED if written["data"]["failed"] else EXIT_OK
    evaluator = Evaluator(args.data, args.cache, args.workers)
    report = evaluator.evaluate(config, data_label=args.data)
    html = write_report(report, args.out, evaluator.timing)
    if not args.quiet:
        print("\n".join(summary_lines(report)))
        t = evaluator.timing
        print(f"speech stage: {t['speech']['cached']} calls from the cache, {t['speech']['computed']} computed "
              f"({t['speech']['seconds']:.1f} s); scoring {t['scoring']['seconds']:.1f} s")
        print(f"report: {html}")
    return EXIT_CALLS_FAILED if report["data"]["failed"] else EXIT_OK


def _cmd_eval_compare(args: argparse.Namespace) -> int:
    import json

    from pipeline.evaluation.compare import compare_reports, format_comparison, load_report

    cmp = compare_reports(load_report(args.a), load_report(args.b), tolerance=args.tolerance)
    sys.stdout.write(format_comparison(cmp))
    if args.json:
        Path(args.json).write_text(json.dumps(cmp, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return EXIT_OK


def _cmd_eval_sweep(args: argparse.Namespace) -> int:
    from pipeline.config import load_config
    from pipeline.evaluation.compare import better
    from pipeline.evaluation.harness import Evaluator
    from pipeline.evaluation.sweep import config_for, format_table, parse_grid, run_sweep, settings, write_sweep

    try:
        better(args.metric)
    except KeyError:
        raise ConfigError(f"--metric {args.metric}: not a report metric (e.g. scorecard.overall.kappa, "
                          f"scorecard.items.ITEM.f1, transcription.overall.wer)") from None
    axes = parse_grid(args.grid)
    _eval_preflight(args, load_config(args.config, _eval_overrides(args)))
    evaluator = Evaluator(args.data, args.cache, args.workers)
    for setting in settings(axes):  # every setting's values and models, before the first evaluation
        _eval_preflight(args, config_for(setting, args.config, _eval_overrides(args), evaluator.cache_dir))
    say = None if args.quiet else (lambda line: print(line, file=sys.stderr))
    rows = run_sweep(evaluator, axes, args.config, _eval_overrides(args), args.metric, say)
    sys.stdout.write(format_table(rows, args.metric))
    if args.out:
        write_sweep(rows, Path(args.out), args.metric)
    return EXIT_OK


def _insight_store(out: str) -> "InsightStore":
    """The insight store of results folder ``out``, up to date (ConfigError when ``out`` is no
    results folder: a bad command line)."""
    from pipeline.insights.store import InsightStore, InsightStoreError

    if not Path(out).is_dir():
        raise ConfigError(f"{out}: no such results folder")
    try:
        return InsightStore.updated(out)
    except InsightStoreError as e:
        raise ConfigError(str(e)) from None


def _cmd_import(args: argparse.Namespace) -> int:
    from pipeline.config import load_config
    from pipeline.insights.external import import_file

    config = load_config(args.config, args.overrides)
    with _insight_store(args.out) as store:
        report = import_file(store, args.out, args.import_kind, args.file, config.insights)
    print(report.summary())
    return EXIT_CALLS_FAILED if report.bad else EXIT_OK


def _cmd_report(args: argparse.Namespace) -> int:
    from pipeline.config import load_config
    from pipeline.insights.report import build_report, write_report

    config = load_config(args.config, args.overrides)
    with _insight_store(args.out) as store:
        data = build_report(store, config, args.period, end=args.end, start=args.start, to=args.to, team=args.team,
                            baseline=args.baseline, out_dir=args.out)
    written = write_report(data, args.report_dir)
    c = data["counts"]
    print(f"{data['title']}: {c['interactions']} interactions, {c['surveys']} surveys, {c['acd']} ACD records; "
          f"{len(data['coaching'])} coaching reports")
    if c["unmatched_surveys"] or c["unmatched_acd"]:
        print(f"not joined to any interaction: {c['unmatched_surveys']} survey rows, {c['unmatched_acd']} ACD rows")
    print(f"wrote {len(written)} files to {args.report_dir} (report.html)")
    return EXIT_OK


def _cmd_insights(args: argparse.Namespace) -> int:
    from pipeline.config import load_config
    from pipeline.insights.voc import run_insights

    effective = load_config(args.config, args.overrides)
    print(run_insights(args.out, args.insights_dir, effective, start=args.start, last_day=args.to,
                       baseline=args.baseline, store_path=args.store))
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    special = {"compare": (build_eval_compare_parser, _cmd_eval_compare),
               "sweep": (build_eval_sweep_parser, _cmd_eval_sweep)}
    if len(argv) >= 2 and argv[0] == "eval" and argv[1] in special:
        build, handler = special[argv[1]]
        args = build().parse_args(argv[2:])
        args.command = f"eval {argv[1]}"
        return _dispatch(handler, args)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    handlers = {"run": _cmd_run, "config": _cmd_config, "models": _cmd_models, "scorecard": _cmd_scorecard,
                "eval": _cmd_eval, "db": _cmd_db, "users": _cmd_users, "serve": _cmd_serve, "live": _cmd_live, "sample": _cmd_sample, "tune": _cmd_tune, "insights": _cmd_insights,
                "import": _cmd_import, "report": _cmd_report}
    return _dispatch(handlers[args.command], args)


def _dispatch(handler, args: argparse.Namespace) -> int:  # noqa: ANN001 - a _cmd_* function
    verbose = getattr(args, "verbose", False)
    quiet = getattr(args, "quiet", False)
    logging.basicConfig(
        level=logging.INFO if verbose else (logging.ERROR if quiet else logging.WARNING),
        format="%(asctime)s %(levelname)s %(message)s" if verbose else "callqa: %(message)s",
        stream=sys.stderr,
    )
    try:
        return handler(args)
    except CallqaError as e:
        print(f"callqa: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("callqa: interrupted; run the same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
