"""``callqa eval``: the pipeline run over labelled calls and measured against the labels.

For each labelled call (pipeline/evaluation/labels.py) the *speech stage* (decoding,
transcription, diarization, roles) comes from the stage cache (pipeline/run/stage_cache.py) or is
computed into it, in worker processes when ``workers`` > 1 (the local executor of
pipeline/run/executors.py: a call that kills its worker fails alone, reported as failed); then the
analysis stage (detectors, scorecard, sentiment, PII) runs in this process on the unredacted words
with the models loaded once, and every figure is measured (pipeline/evaluation/measures.py):

- transcription: WER and CER per call, per role and pooled (word and character edits over all
  the calls' words; normalisation: :data:`NORMALISATION`). The hypothesis is the call's
  utterances in time order (per role: the words callqa gave that role), the reference the
  label file's utterances;
- speakers: DER and JER without a collar and with pyannote's ``collar`` = :data:`COLLAR_S`
  (the total width around each reference boundary), reference from ``labels/<id>.rttm`` or
  else the label utterances, hypothesis the utterances' speakers; role accuracy by speech time
  (``pipeline.evaluation.agreement.role_accuracy``);
- scorecard: per item accuracy, macro precision / recall / F1 and Cohen's kappa against the
  gold answers, confusion counts, all answers pooled; the total score (0-1, as in call.json)
  against the score the gold answers give (MAE, bias, Pearson, Spearman, auto-fail agreement;
  calls whose labels answer every item); every disagreement with the detector's evidence.
- contact (labels with ``contact_reason`` / ``outcome``): the contact block's reason against the
  labelled sentence (token F1, agreement at F1 >= 0.5, mean F1) and its outcome (accuracy,
  Cohen's kappa, confusion), per call and pooled (pipeline/evaluation/contact_eval.py); also
  written as ``contact.csv`` beside the report.

The report has no times or machine paths in it beyond the data path as given, so the same data,
config and models give the same ``report.json``; how long the stages took goes to
``timing.json``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline import __version__
from pipeline.config import Config
from pipeline.errors import CallError
from pipeline.evaluation.labels import Dataset, load_dataset
from pipeline.ingest.discover import CallInput
from pipeline.run.executors import LocalExecutor, WorkerSite
from pipeline.run.stage_cache import SpeechResult, StageCache, speech_key

log = logging.getLogger("callqa")

REPORT_FORMAT = "callqa-eval-report/1"
REPORT_JSON, REPORT_HTML, TIMING_JSON = "report.json", "report.html", "timing.json"
COLLAR_S = 0.25
ROLES = ("agent", "customer")
NORMALISATION = (
    "Whisper's English text normaliser on reference and hypothesis (pipeline/text/normalize.wer_text): "
    "lowercase, punctuation and fillers removed, spelled-out numbers as digits, contractions expanded, "
    "British spellings as American, digit strings one digit per word on both sides (\"8-2-1-9\", \"8219\" and "
    "\"eight two one nine\" all \"8 2 1 9\"); CER counts the characters of the normalised text, single spaces included."
)
DIGITS = 4
EMBEDDING_MEMO = 500_000
"""Sentence embeddings an evaluation keeps in memory (1.5 kB each) and in the cache folder."""


def default_cache_dir() -> Path:
    """Where ``callqa eval`` keeps stage results unless told (``CALLQA_CACHE_DIR``/stages, else
    ``~/.cache/callqa/stages``)."""
    from models.registry import cache_dir

    return cache_dir() / "stages"


def clean(obj: Any) -> Any:
    """JSON-ready copy: floats rounded to :data:`DIGITS` places, NaN and infinities as None."""
    if isinstance(obj, float):
        return round(obj, DIGITS) if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return clean(obj.item())
    return obj


# -- the speech stage in worker processes --------------------------------------------------------


@dataclass(frozen=True)
class SpeechTask:
    """What the evaluation's workers do (a pipeline.run.executors.Task): each builds one
    CallProcessor (its models loaded once) and computes labelled calls' speech stage, given as
    (call, recording sha256), into the stage cache; the result is (call id, its error text or None)."""

    config: Config
    work_dir: Path
    """Where the processors decode calls (``CACHE/work``) unless the worker has its own folder."""

    def start(self, site: WorkerSite) -> Callable[[tuple[CallInput, str]], tuple[str, str | None]]:
        from pipeline.run.call import CallProcessor

        config = self.config
        if site.threads:
            config = dataclasses.replace(config, asr=dataclasses.replace(config.asr, threads=site.threads))
        processor = CallProcessor(config, self.work_dir, work_dir=site.scratch)
        return lambda item: (item[0].call_id, self.compute(processor, *item))

    def compute(self, processor: Any, call: CallInput, sha256: str) -> str | None:
        """Compute one call's speech stage into the cache; its error text, or None."""
        try:
            processor.speech(call, sha256)
            return None
        except CallError as e:
            return f"{type(e).__name__}: {e}"
        except Exception as e:  # noqa: BLE001 - one bad call must not end the evaluation
            return f"{type(e).__name__}: {call.path}: unexpected error: {e}"

    def failed(self, item: tuple[CallInput, str], error_type: str, message: str) -> tuple[str, str | None]:
        call = item[0]
        return call.call_id, f"{error_type}: {call.path}: {message}"


class Evaluator:
    """A labelled data folder, its stage cache, and the models, kept across evaluations (a
    sweep evaluates many configs with one of these)."""

    def __init__(self, data: str | Path, cache_dir: str | Path | None = None, workers: int = 1):
        from pipeline.run.call import sha256_file

        self.data = Path(data)
        self.dataset: Dataset = load_dataset(self.data)
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.cache = StageCache(self.cache_dir)
        self.workers = max(1, workers)
        self.calls = [c for c in self.dataset.calls if c.call_id in self.dataset.labels]
        self.hashes: dict[str, str] = {}
        for call in list(self.calls):
            try:
                self.hashes[call.call_id] = sha256_file(call.path)
            except OSError as e:
                self.dataset.problems[call.call_id] = f"AudioError: {call.path}: cannot read file: {e.strerror or e}"
                self.calls.remove(call)
        self.timing: dict[str, Any] = {}
        from models import text_embedding

        self._memo_path = self.cache_dir / "embeddings.npz"
        text_embedding.grow_memo(EMBEDDING_MEMO)
        self._memo_saved = text_embedding.load_memo(self._memo_path)

    def _save_embeddings(self) -> None:
        """Keep the sentence embeddings computed while scoring for the next evaluation."""
        from models import text_embedding

        if len(text_embedding._MEMO) != self._memo_saved:
            text_embedding.save_memo(self._memo_path)
            self._memo_saved = len(text_embedding._MEMO)

    def _stage_config(self, config: Config) -> Config:
        cfg = copy.deepcopy(config)
        cfg.run.stage_cache = str(self.cache_dir)
        cfg.run.workers = self.workers
        return cfg

    def speech(self, config: Config) -> tuple[dict[str, SpeechResult], dict[str, str]]:
        """Every labelled call's speech stage (cached, or computed now), and the calls that failed."""
        t0 = time.perf_counter()
        results: dict[str, SpeechResult] = {}
        todo = []
        for call in self.calls:
            hit = self.cache.get(speech_key(config, self.hashes[call.call_id], call.metadata))
            if hit is not None:
                results[call.call_id] = hit
            else:
                todo.append(call)
        failed: dict[str, str] = {}
        if todo:
            log.warning("speech stage: %d of %d calls not in the cache %s; transcribing them", len(todo),
                        len(self.calls), self.cache_dir)
            failed = self._compute(config, todo)
            for call in todo:
                if call.call_id in failed:
                    continue
                hit = self.cache.get(speech_key(config, self.hashes[call.call_id], call.metadata))
                if hit is None:
                    failed[call.call_id] = f"StageCacheError: {call.path}: computed but not found in {self.cache_dir}"
                else:
                    results[call.call_id] = hit
        self.timing["speech"] = {"cached": len(self.calls) - len(todo), "computed": len(todo) - len(failed),
                                 "failed": len(failed), "seconds": round(time.perf_counter() - t0, 3)}
        return results, failed

    def _compute(self, config: Config, todo: list[CallInput]) -> dict[str, str]:
        """Compute the speech stage of ``todo`` into the cache, in ``workers`` worker processes (in
        this process with one worker or one call); the calls that failed, with their error text.
        A call that kills its worker process fails alone (pipeline/run/executors.py)."""
        task = SpeechTask(self._stage_config(config), self.cache_dir / "work")
        items = [(call, self.hashes[call.call_id]) for call in todo]
        return {cid: error for cid, error in LocalExecutor(self.workers).run(task, items) if error}

    def evaluate(self, config: Config, data_label: str | None = None) -> dict[str, Any]:
        """The report of ``config`` on the data (see the module docstring)."""
        from models.asr import default_threads
        from pipeline.analysis.stage import AnalysisStage

        speech, failed = self.speech(config)
        t0 = time.perf_counter()
        failed = {**self.dataset.problems, **failed}
        stage = AnalysisStage(config, config.asr.threads or default_threads(1))
        card = stage.card
        measured = _Measured(card)
        models: dict[str, Any] = {}
        evaluated = []
        for call in self.calls:
            result = speech.get(call.call_id)
            if result is None:
                continue
            try:
                measured.add(call, result, self.dataset.labels[call.call_id], stage, config)
            except CallError as e:
                failed[call.call_id] = f"{type(e).__name__}: {e}"
                continue
            evaluated.append(call.call_id)
            for name, desc in result.models.items():
                if name == "asr" and "noisy_floor" in desc:  # the call used asr.noisy_model
                    noisy = {k: v for k, v in desc.items() if k != "noisy_floor"}
                    models.setdefault("asr_noisy_floor", {**noisy, "calls": []})["calls"].append(call.call_id)
                else:
                    models.setdefault(name, desc)
        models.update(stage.describe())
        self._save_embeddings()
        report = {
            "format": REPORT_FORMAT,
            "callqa_version": __version__,
            "data": {
                "path": data_label if data_label is not None else str(self.data),
                "sha256": self.dataset.sha256(self.hashes),
                "calls": len(self.dataset.calls),
                "evaluated": evaluated,
                "failed": dict(sorted(failed.items())),
                "unlabelled": self.dataset.unlabelled,
                "labels_without_recording": self.dataset.orphans,
            },
            "config_hash": config.result_hash(),
            "config": config.result_dict(),
            "scorecard_template": card.describe() if card else None,
            "models": models,
            "normalisation": NORMALISATION,
            **measured.report(),
        }
        self.timing["scoring"] = {"calls": len(evaluated), "seconds": round(time.perf_counter() - t0, 3)}
        return clean(report)


class _Measured:
    """The figures of an evaluation, call by call, then pooled."""

    def __init__(self, card: Any):
        from pipeline.evaluation.measures import DiarizationTotals

        self.card = card
        self.text: dict[str, Any] = {}
        self.pairs: list[tuple[str, str]] = []
        self.role_pairs: dict[str, list[tuple[str, str]]] = {r: [] for r in ROLES}
        self.speakers: dict[str, Any] = {}
        self.der = DiarizationTotals(0.0)
        self.der_collar = DiarizationTotals(COLLAR_S)
        self.role_judged: list[tuple[float, float]] = []  # (accuracy, seconds)
        self.answers: dict[str, dict[str, dict[str, str]]] = {}
        self.scores: dict[str, Any] = {}
        self.disagreements: list[dict[str, Any]] = []
        self.items_seen: dict[str, str] = {}
        from pipeline.evaluation.contact_eval import ContactMeasured

        self.contact = ContactMeasured()

    def add(self, call: Any, speech: SpeechResult, labels: Any, stage: Any, config: Config) -> None:
        from pipeline.analysis.detectors.context import CallFacts

        utterances = copy.deepcopy(speech.utterances)
        if labels.utterances is not None:
            self._transcription(call.call_id, utterances, labels.utterances)
        self._speakers(call.call_id, speech, labels)
        scored = stage.card is not None and bool(labels.scorecard)
        contact = config.contact.enabled and (labels.contact_reason is not None or labels.outcome is not None)
        if not scored and not contact:
            return
        facts = CallFacts(speech.info.duration_s, stereo=speech.channels == 2, metadata=call.metadata,
                          company=call.metadata.get("company") or config.roles.company)
        blocks, _written, _spans = stage.run(utterances, facts)
        if scored:
            self._scorecard(call.call_id, blocks["scorecard"], labels.scorecard)
        if contact:
            self.contact.add(call.call_id, blocks.get("contact"), labels.contact_reason, labels.outcome)

    def _transcription(self, cid: str, utterances: list[Any], gold: list[dict[str, Any]]) -> None:
        from pipeline.evaluation.measures import text_errors

        hyp = sorted(utterances, key=lambda u: (u.start, u.end))
        ref_text = " ".join(u["text"] for u in gold)
        hyp_text = " ".join(u.text for u in hyp)
        row = text_errors([ref_text], [hyp_text])
        self.pairs.append((ref_text, hyp_text))
        row["roles"] = {}
        for role in ROLES:
            r = " ".join(u["text"] for u in gold if u["role"] == role)
            h = " ".join(u.text for u in hyp if u.role == role)
            self.role_pairs[role].append((r, h))
            row["roles"][role] = text_errors([r], [h])
        self.text[cid] = row

    def _speakers(self, cid: str, speech: SpeechResult, labels: Any) -> None:
        from pipeline.evaluation.agreement import role_accuracy

        ref = labels.reference_turns()
        duration = speech.info.duration_s
        if ref is None or duration <= 0:
            return
        turns, source = ref
        hyp = [(u.start, u.end, u.speaker or "S0") for u in speech.utterances]
        row = self.der.add(turns, hyp, duration)
        collar = self.der_collar.add(turns, hyp, duration)
        row["der_collar"], row["jer_collar"] = collar["der"], collar["jer"]
        if labels.utterances is not None:
            acc = role_accuracy([u.to_dict() for u in speech.utterances], labels.utterances)
            row["role_accuracy"] = acc["accuracy"]
            if math.isfinite(acc["accuracy"]):
                self.role_judged.append((acc["accuracy"], acc["seconds"]))
        else:
            row["role_accuracy"] = None
        self.speakers[cid] = {**row, "reference": source, "method": speech.speakers.get("method")}

    def _scorecard(self, cid: str, block: dict[str, Any], gold: dict[str, str]) -> None:
        from pipeline.analysis.card import score_answers

        answers = {}
        for item in block["items"]:
            self.items_seen.setdefault(item["id"], item["question"])
            if item["id"] not in gold:
                continue
            answers[item["id"]] = {"auto": item["answer"], "gold": gold[item["id"]], "confidence": item["confidence"]}
            if item["answer"] != gold[item["id"]]:
                self.disagreements.append({
                    "call_id": cid, "item": item["id"], "question": item["question"], "auto": item["answer"],
                    "gold": gold[item["id"]], "confidence": item["confidence"], "looked_for": item.get("looked_for"),
                    "evidence": item["evidence"], **({"details": item["details"]} if item.get("details") else {}),
                })
        self.answers[cid] = answers
        if all(i.id in gold for i in self.card.items):
            truth = score_answers(self.card, gold)
            self.scores[cid] = {"auto": block["score"]["normalized"], "gold": truth["normalized"],
                                "auto_fail": block["score"]["auto_fail"], "gold_auto_fail": truth["auto_fail"]}

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.text:
            from pipeline.evaluation.measures import text_errors

            out["transcription"] = {
                "overall": text_errors([r for r, _ in self.pairs], [h for _, h in self.pairs]),
                "roles": {role: text_errors([r for r, _ in p], [h for _, h in p]) for role, p in self.role_pairs.items()},
                "calls": self.text,
            }
        if self.speakers:
            overall = self.der.overall()
            collar = self.der_collar.overall()
            seconds = sum(s for _, s in self.role_judged)
            overall["der_collar"], overall["jer_collar"] = collar["der"], collar["jer"]
            overall["role_accuracy"] = sum(a * s for a, s in self.role_judged) / seconds if seconds else None
            out["speakers"] = {"collar_s": COLLAR_S, "overall": overall, "calls": self.speakers}
        out["scorecard"] = self._scorecard_report() if self.card is not None else None
        if self.contact:
            out["contact"] = self.contact.report()
        return out

    def _scorecard_report(self) -> dict[str, Any]:
        from pipeline.evaluation.measures import item_agreement, pooled_agreement, score_agreement

        items = {}
        for item in self.card.items:
            pairs = [a[item.id] for a in self.answers.values() if item.id in a]
            if pairs:
                items[item.id] = item_agreement([p["gold"] for p in pairs], [p["auto"] for p in pairs])
        pooled = pooled_agreement([(p["gold"], p["auto"]) for a in self.answers.values() for p in a.values()])
        f1s = [v["f1"] for v in items.values() if v["f1"] is not None]
        kappas = [v["kappa"] for v in items.values() if v["kappa"] is not None]
        scored = list(self.scores.values())
        scores = score_agreement([s["gold"] or 0.0 for s in scored], [s["auto"] or 0.0 for s in scored])
        scores["auto_fail_agreement"] = (sum(s["auto_fail"] == s["gold_auto_fail"] for s in scored) / len(scored)
                                         if scored else None)
        scores["calls"] = self.scores
        order = {item.id: k for k, item in enumerate(self.card.items)}
        return {
            "overall": {**pooled, "mean_f1": sum(f1s) / len(f1s) if f1s else None,
                        "mean_kappa": sum(kappas) / len(kappas) if kappas else None},
            "items": items,
            "scores": scores,
            "answers": self.answers,
            "disagreements": sorted(self.disagreements, key=lambda d: order.get(d["item"], len(order))),
        }


def write_report(report: dict[str, Any], out_dir: str | Path, timing: dict[str, Any] | None = None) -> Path:
    """``report.json`` and ``report.html`` (and ``timing.json``) in ``out_dir``; returns the HTML path."""
    from pipeline.evaluation.report_html import write_html
    from pipeline.interaction.writers import write_atomic, write_json

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / REPORT_JSON, json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    html = write_html(report, out / REPORT_HTML)
    if report.get("contact"):
        from pipeline.evaluation.contact_eval import CSV_NAME, contact_csv

        write_atomic(out / CSV_NAME, contact_csv(report["contact"]))
    if timing is not None:
        write_json(out / TIMING_JSON, timing)
    return Path(html)


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The headline figures of a report, for the terminal."""

    def f(v: Any, digits: int = 3) -> str:
        return "n/a" if v is None else f"{v:.{digits}f}"

    data = report["data"]
    lines = [f"evaluated {len(data['evaluated'])} of {data['calls']} calls"
             f" ({len(data['failed'])} failed, {len(data['unlabelled'])} unlabelled)"]
    for cid, err in data["failed"].items():
        lines.append(f"  failed {cid}: {err}")
    t = report.get("transcription")
    if t:
        roles = t["roles"]
        lines.append(f"transcription: WER {f(t['overall']['wer'])} (agent {f(roles['agent']['wer'])}, "
                     f"customer {f(roles['customer']['wer'])}), CER {f(t['overall']['cer'])}")
    s = report.get("speakers")
    if s:
        o = s["overall"]
        lines.append(f"speakers: DER {f(o['der'])} (collar {s['collar_s']}: {f(o['der_collar'])}), "
                     f"JER {f(o['jer'])} ({f(o['jer_collar'])}), role accuracy {f(o['role_accuracy'])}")
    c = report.get("scorecard")
    if c:
        o, sc = c["overall"], c["scores"]
        lines.append(f"scorecard: item accuracy {f(o['accuracy'])} ({o['answers']} answers), kappa {f(o['kappa'])}, "
                     f"mean F1 {f(o['mean_f1'])}; total score MAE {f(sc['mae'])}, Pearson {f(sc['pearson'])}; "
                     f"{len(c['disagreements'])} disagreements")
    from pipeline.evaluation.contact_eval import summary_line

    line = summary_line(report.get("contact"))
    if line:
        lines.append(line)
    return lines
