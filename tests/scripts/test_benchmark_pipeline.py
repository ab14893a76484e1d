"""The pipeline benchmark's mixed archive: half stereo, half mono, of the lengths asked, each
call's reference the references of the labelled calls it is made of."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import soundfile as sf

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from benchmark_pipeline import combined_manifest, mixed_archive  # noqa: E402


def test_the_mixed_archive_has_both_layouts_at_each_length(tmp_path: Path):
    _, refs = combined_manifest([ROOT / "recordings_sample"], tmp_path)
    manifest, mix = mixed_archive(list(refs.values()), [0.5, 1.5], tmp_path)
    with open(manifest, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["call_id"] for r in rows] == ["mix_0.5min_stereo", "mix_0.5min_mono", "mix_1.5min_stereo",
                                           "mix_1.5min_mono"]
    for k, row in enumerate(rows):
        info = sf.info(row["path"])
        minutes = float(row["call_id"].split("_")[1].removesuffix("min"))
        stereo = row["call_id"].endswith("stereo")
        assert info.channels == (2 if stereo else 1) and info.samplerate == 8000
        # whole labelled calls are joined until the length is reached: at most one call more
        assert minutes * 60 <= info.duration < minutes * 60 + 120
        call_refs = mix[row["call_id"]]["refs"]
        assert len(call_refs) == info.channels and all(len(r.split()) > 20 for r in call_refs)
        pool = [r for r in refs.values() if len(r["refs"]) == info.channels]
        first = pool[(k // 2) % len(pool)]  # each length starts from another labelled call
        assert all(joined.startswith(own) for joined, own in zip(call_refs, first["refs"]))


def test_results_sum_every_stage_a_call_reports(tmp_path: Path):
    """Every stage the records report is summed, also one the benchmark does not name."""
    from benchmark_pipeline import read_results

    from pipeline.interaction.record import Interaction, SourceInfo
    from pipeline.interaction.utterances import Utterance, Word

    refs = {}
    for cid, asr_s in (("a", 2.0), ("b", 3.0)):
        record = Interaction(cid, "ok", SourceInfo("recording", f"/x/{cid}.wav", "0", 10.0, 8000, 1),
                             processing={"stages": {"asr": asr_s, "mask_audio": 0.5, "later_stage": 1.0}})
        record.utterances = [Utterance("u0001", 0, 0.0, 1.0, "hello there", [Word("hello", 0, 0.5, 1), Word("there", 0.5, 1, 1)])]
        record.save(tmp_path / "calls" / cid)
        refs[cid] = {"refs": ["hello there"]}
    result = read_results(tmp_path, refs)
    assert result["stage_seconds"]["asr"] == 5.0
    assert result["stage_seconds"]["mask_audio"] == 1.0
    assert result["stage_seconds"]["later_stage"] == 2.0
    assert result["stage_rtf"]["asr"] == 4.0
    assert result["wer"] == 0.0 and result["audio_s"] == 20.0
