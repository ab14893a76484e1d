"""The transcription stage: VAD, then the ASR backend, per channel, into utterances."""

from __future__ import annotations

import numpy as np

from models.base import SAMPLE_RATE, AsrBackend
from models.vad import VAD_BLOCK_S, SpeechOnlyAudio, SpeechRegion, VadOptions, speech_regions
from pipeline.interaction.utterances import Segment, Utterance, Word

MAX_GAP_IN_UTTERANCE_S = 1.5
"""A recognised segment is cut where two consecutive words are further apart than this: VAD
joins speech separated by long silences, and one utterance must not straddle them."""


CHUNK_S = VAD_BLOCK_S
"""The recogniser is given at most this many seconds of speech at a time (and VAD runs over
blocks this long, models/vad.py), so memory does not grow with the length of the call
(faster-whisper computes the spectrogram of its whole input at once)."""


def recognition_batches(regions: list[SpeechRegion]) -> list[list[SpeechRegion]]:
    """Group regions into batches of at most CHUNK_S seconds of speech, in order. A region
    longer than that (only with VAD off) is cut into CHUNK_S pieces."""
    limit = max(1, int(CHUNK_S * SAMPLE_RATE))
    pieces = [
        SpeechRegion(s, min(s + limit, r.end)) for r in regions for s in range(r.start, r.end, limit)
    ]
    batches: list[list[SpeechRegion]] = []
    total = 0
    for r in pieces:
        if batches and total + (r.end - r.start) <= limit:
            batches[-1].append(r)
            total += r.end - r.start
        else:
            batches.append([r])
            total = r.end - r.start
    return batches


def _restore_times(segments: list[Segment], speech: SpeechOnlyAudio) -> list[Segment]:
    """Map segment and word times from the speech-only audio back to the recording."""
    out: list[Segment] = []
    for seg in segments:
        if seg.words:
            words = []
            for w in seg.words:
                region = speech.region_index((w.start + w.end) / 2)
                words.append(
                    Word(w.word, speech.to_original(w.start, region), speech.to_original(w.end, region), w.probability)
                )
            out.append(Segment(words[0].start, words[-1].end, seg.text, words, seg.avg_logprob, seg.no_speech_prob))
        else:
            out.append(
                Segment(speech.to_original(seg.start), speech.to_original(seg.end), seg.text, [], seg.avg_logprob, seg.no_speech_prob)
            )
    return out


def _split_at_gaps(seg: Segment) -> list[Segment]:
    """Cut a segment where its words are separated by more than MAX_GAP_IN_UTTERANCE_S."""
    if len(seg.words) < 2:
        return [seg]
    groups: list[list[Word]] = [[seg.words[0]]]
    for prev, w in zip(seg.words, seg.words[1:]):
        if w.start - prev.end > MAX_GAP_IN_UTTERANCE_S:
            groups.append([])
        groups[-1].append(w)
    if len(groups) == 1:
        return [seg]
    return [
        Segment(g[0].start, g[-1].end, " ".join(w.word for w in g), g, seg.avg_logprob, seg.no_speech_prob)
        for g in groups
    ]


def uncovered_speech(regions: list[SpeechRegion], segments: list[Segment], min_gap_s: float) -> list[SpeechRegion]:
    """Stretches of at least ``min_gap_s`` inside the speech regions where none of the words of
    ``segments`` lies: speech the recogniser skipped (Whisper sometimes closes a segment with a
    late timestamp and so jumps over part of its 30 s window)."""
    words = sorted((w.start, w.end) for seg in segments for w in seg.words)
    gaps: list[SpeechRegion] = []
    i = 0
    for r in regions:
        start, end = r.start / SAMPLE_RATE, r.end / SAMPLE_RATE
        while i < len(words) and words[i][1] <= start:
            i += 1
        cursor, j = start, i
        while j < len(words) and words[j][0] < end:
            if words[j][0] - cursor >= min_gap_s:
                gaps.append(SpeechRegion(int(cursor * SAMPLE_RATE), int(words[j][0] * SAMPLE_RATE)))
            cursor = max(cursor, words[j][1])
            j += 1
        if end - cursor >= min_gap_s:
            gaps.append(SpeechRegion(int(cursor * SAMPLE_RATE), r.end))
    return gaps


def _recognise(audio: np.ndarray, backend: AsrBackend, regions: list[SpeechRegion]) -> list[Segment]:
    """Recognise the given regions of a channel, joined into batches; times in the recording."""
    segments: list[Segment] = []
    for batch in recognition_batches(regions):
        speech = SpeechOnlyAudio(audio, batch)
        segments.extend(_restore_times(backend.transcribe(speech.audio), speech))
        del speech
    return segments


def redecode_gaps(audio: np.ndarray, backend: AsrBackend, regions: list[SpeechRegion],
                  segments: list[Segment]) -> list[Segment]:
    """``segments`` with the speech they skipped recognised again, each stretch on its own
    (``asr.redecode_gap_s``; 0 = off). Only confident text is kept from a second pass: a
    stretch that was skipped because it holds no speech must not gain any."""
    o = backend.options
    if not o.redecode_gap_s:
        return segments
    found: list[Segment] = []
    for gap in uncovered_speech(regions, segments, o.redecode_gap_s):
        for seg in _recognise(audio, backend, [gap]):
            if seg.words and seg.avg_logprob >= o.log_prob_threshold and seg.no_speech_prob < o.no_speech_threshold:
                found.append(seg)
    return sorted(segments + found, key=lambda s: s.start) if found else segments


def transcribe_channel(
    audio: np.ndarray, backend: AsrBackend, vad: VadOptions, regions: list[SpeechRegion] | None = None
) -> list[Segment]:
    """Recognise one channel (float32 mono 16 kHz); times are seconds in the recording.
    ``regions``: its speech regions when already found (else VAD runs here)."""
    regions = speech_regions(audio, vad) if regions is None else regions
    segments = redecode_gaps(audio, backend, regions, _recognise(audio, backend, regions))
    out: list[Segment] = []
    for seg in segments:
        for piece in _split_at_gaps(seg):
            if piece.words or piece.text:
                out.append(piece)
    return out


def transcribe_call(
    audio: np.ndarray, backend: AsrBackend, vad: VadOptions, regions: dict[int, list[SpeechRegion]] | None = None
) -> list[Utterance]:
    """Transcribe every channel of a call (array of shape (channels, n), 16 kHz) on its own.

    Stereo recordings put each party on a channel, so each channel is recognised separately
    and every utterance keeps its channel. Utterances are ordered by start time and numbered.
    ``regions``, when given, supplies the speech regions of the channels it holds (found
    already) and receives those of the others (for the speaker stage).
    """
    pieces: list[tuple[int, Segment]] = []
    for ch in range(audio.shape[0]):
        found = regions[ch] if regions is not None and ch in regions else speech_regions(audio[ch], vad)
        if regions is not None:
            regions[ch] = found
        pieces.extend((ch, seg) for seg in transcribe_channel(audio[ch], backend, vad, found))
    pieces.sort(key=lambda p: (p[1].start, p[0]))
    return [
        Utterance(id=f"u{i:04d}", channel=ch, start=seg.start, end=seg.end, text=seg.text, words=seg.words)
        for i, (ch, seg) in enumerate(pieces, 1)
    ]
