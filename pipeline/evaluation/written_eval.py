"""``callqa eval`` on labelled written conversations (e-mail threads and chats).

A folder of e-mail files, mbox archives and chat files with ``labels/<id>.json`` beside them
(the format in interactions_sample/README.md: the channel, each message's role, the gold
scorecard answers). Every conversation is read by its source and analysed by the one analysis
stage with its channel's scorecard, in this process; measured per channel: role accuracy per
message, and the scorecard as the calls' is measured (pipeline/evaluation/harness.py): per
item accuracy, macro F1 and Cohen's kappa against the gold answers, all answers pooled, and
the total score against the score the gold answers give; every disagreement comes with the
detector's evidence. With ``contact_reason`` / ``outcome`` labels, the contact block's reason
and outcome are measured too (pipeline/evaluation/contact_eval.py: ``contact`` in the report,
pooled and per channel, and ``written_contact.csv``).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from pipeline.config import Config
from pipeline.errors import CallError, InputError

REPORT_FORMAT = "callqa-eval-written/1"
WRITTEN_CHANNELS = ("email", "chat")


def written_labels(data: Path) -> dict[str, dict[str, Any]]:
    """The labels of written conversations in ``data/labels`` by id (empty when none)."""
    out = {}
    folder = data / "labels"
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.json")):
        try:
            label = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise InputError(f"{path}: cannot read the label file: {e}") from e
        if isinstance(label, dict) and label.get("channel") in WRITTEN_CHANNELS:
            out[str(label.get("conversation_id") or path.stem)] = label
    return out


def evaluate_written(data: str | Path, config: Config) -> dict[str, Any]:
    """The report (see the module docstring) of ``config`` on the written conversations of ``data``."""
    from pipeline.analysis.detectors.context import CallFacts
    from pipeline.analysis.stage import AnalysisStage
    from pipeline.evaluation.harness import _Measured
    from pipeline.evaluation.measures import pooled_agreement
    from pipeline.ingest.discover import discover
    from pipeline.ingest.sources import SOURCES
    from pipeline.run.call import scratch_folder

    data = Path(data)
    labels = written_labels(data)
    if not labels:
        raise InputError(f"{data}: no labelled e-mail or chat conversation (labels/<id>.json with channel email or chat)")
    from pipeline.evaluation.contact_eval import ContactMeasured, check_outcome

    stage = AnalysisStage(config, 1)
    contact = ContactMeasured()
    found = {c.call_id: c for c in discover(data) if c.kind in WRITTEN_CHANNELS}
    per_channel: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="callqa-eval-") as tmp:
        sources = {kind: SOURCES.get(kind)(config, Path(tmp), 1) for kind in WRITTEN_CHANNELS}
        for cid, label in labels.items():
            call = found.get(cid)
            if call is None:
                failed[cid] = "no conversation with this id was found in the data"
                continue
            if call.problem is not None:
                failed[cid] = f"{type(call.problem).__name__}: {call.problem}"
                continue
            try:
                with scratch_folder(Path(tmp) / cid) as scratch, \
                        sources[call.kind].open(call, call.content_sha256 or "", scratch) as conversation:
                    facts = CallFacts(conversation.duration_s, stereo=False, metadata=call.metadata,
                                      company=label.get("company") or call.metadata.get("company") or config.roles.company,
                                      source=call.kind, messages=conversation.messages)
                    blocks, _, _ = stage.run(conversation.utterances, facts)
                    card, _ = stage.card_for(facts)
                    roles = [m.role for m in conversation.messages or []]
            except CallError as e:
                failed[cid] = f"{type(e).__name__}: {e}"
                continue
            # the channel's answers are measured as the calls' are (pipeline/evaluation/harness.py)
            channel = per_channel.setdefault(label["channel"], {"measured": _Measured(card), "roles": []})
            channel["roles"].append((label.get("roles") or [], roles))
            channel["measured"]._scorecard(cid, blocks["scorecard"], label.get("scorecard") or {})
            try:
                gold_outcome = check_outcome(label.get("outcome"))
            except ValueError as e:
                failed[cid] = f"LabelError: {data / 'labels' / (cid + '.json')}: {e}"
                continue
            reason = label.get("contact_reason") if isinstance(label.get("contact_reason"), str) else None
            contact.add(cid, blocks.get("contact"), reason, gold_outcome, label["channel"])
    report: dict[str, Any] = {"format": REPORT_FORMAT, "data": {"path": str(data), "labelled": len(labels),
                                                                 "evaluated": len(labels) - len(failed), "failed": failed},
                              "channels": {}}
    all_pairs: list[tuple[str, str]] = []
    for name, ch in sorted(per_channel.items()):
        measured = ch["measured"]
        all_pairs += [(p["gold"], p["auto"]) for a in measured.answers.values() for p in a.values()]
        judged = [(g, a) for gold, auto in ch["roles"] for g, a in zip(gold, auto) if g in ("agent", "customer")]
        report["channels"][name] = {
            "conversations": len(measured.answers),
            "role_accuracy": round(sum(g == a for g, a in judged) / len(judged), 4) if judged else None,
            "role_messages": len(judged),
            "scorecard": measured._scorecard_report(),
        }
    report["overall"] = pooled_agreement(all_pairs)
    if contact:
        report["contact"] = contact.report()
        for name in report["channels"]:  # the same figures per channel
            part = ContactMeasured()
            part.rows = {k: v for k, v in contact.rows.items() if v["channel"] == name}
            if part:
                summary = part.report()
                outcome = {k: summary["outcome"][k] for k in ("n", "accuracy", "kappa", "correct")}
                report["channels"][name]["contact"] = {"reason": summary["reason"], "outcome": outcome}
    return report


def write_written_report(report: dict[str, Any], out_dir: str | Path) -> Path:
    """``written_report.json`` in ``out_dir``."""
    from pipeline.interaction.writers import write_atomic

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "written_report.json"
    write_atomic(path, json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n")
    if report.get("contact"):
        from pipeline.evaluation.contact_eval import contact_csv

        write_atomic(out / "written_contact.csv", contact_csv(report["contact"]))
    return path


def summary_lines(report: dict[str, Any]) -> list[str]:
    """A few lines for the terminal."""
    lines = [f"{report['data']['evaluated']} of {report['data']['labelled']} labelled written conversations evaluated"]
    for name, ch in report["channels"].items():
        sc = ch["scorecard"]["overall"]
        kappa = sc.get("mean_kappa")
        lines.append(f"{name}: {ch['conversations']} conversations, scorecard agreement {sc['accuracy']:.3f} "
                     f"({sc['answers']} answers), mean kappa {kappa:.3f}" if kappa is not None else
                     f"{name}: {ch['conversations']} conversations, scorecard agreement {sc['accuracy']:.3f} ({sc['answers']} answers)")
        if ch["role_accuracy"] is not None:
            lines.append(f"  role accuracy {ch['role_accuracy']:.3f} over {ch['role_messages']} messages")
        worst = sorted(ch["scorecard"]["items"].items(), key=lambda kv: kv[1]["accuracy"] or 0)[:3]
        lines.append("  weakest items: " + ", ".join(f"{k} {v['accuracy']:.2f}" for k, v in worst))
    if report["data"]["failed"]:
        lines.append("failed: " + "; ".join(f"{k}: {v}" for k, v in report["data"]["failed"].items()))
    if report["overall"]["accuracy"] is not None:
        lines.append(f"all written answers: agreement {report['overall']['accuracy']:.3f} ({report['overall']['answers']} answers)")
    from pipeline.evaluation.contact_eval import summary_line

    line = summary_line(report.get("contact"))
    if line:
        lines.append(line)
    return lines
