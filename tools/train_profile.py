"""Train, measure and export the voice profile's heads (emotion, gender, age) from the labelled speech in
``../shared/data``.

    python3 tools/train_profile.py                 # extract (cached), cross-validate every feature set, export
    python3 tools/train_profile.py --no-export     # scores only

Needs the ``train`` extra (scikit-learn); the service never imports it. Features are the product's own: the Whisper
encoder's hidden states pooled over the speech frames (``WhisperEngine.listen``), with or without the prosodic
measurements of ``voxgate.analysis.prosody``; they are cached in ``--cache`` (default ``/tmp/voxgate-profile``).

Every score is speaker-independent: folds are split by speaker (RAVDESS: two actors, one male and one female, held out
per fold; Common Voice: grouped folds over speakers), never by clip. Per fold and overall the script prints unweighted
average recall (UAR), accuracy, the confusion matrix and the expected calibration error (ECE, 10 bins of top
confidence) before and after temperature scaling; the temperature is fitted on the out-of-fold logits. The exported
head is refitted on all speakers with that temperature. Results go to ``--json`` too (``bench/profile.py`` reads them).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from voxgate.analysis.heads import HEADS_DIR, prosody_vector  # noqa: E402
from voxgate.analysis.prosody import extract_features  # noqa: E402
from voxgate.analysis.speaker import SpeakerEncoder  # noqa: E402
from voxgate.audio.decode import decode  # noqa: E402
from voxgate.config import Settings  # noqa: E402
from voxgate.engines.base import VoiceEncoder  # noqa: E402
from voxgate.engines.pool import EnginePool  # noqa: E402
from voxgate.metrics import Metrics  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
ENCODERS = ("whisper/base", "whisper/tiny.en")
EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgusted", "surprised")
GENDERS = ("male", "female")
AGES = ("young", "adult")
AGE_BANDS = {"teens": "young", "twenties": "young", "thirties": "adult", "fourties": "adult", "fifties": "adult",
             "sixties": "old", "seventies": "old", "eighties": "old", "nineties": "old"}  # fmt: skip
"""Common Voice's bands. ``old`` has too few speakers here to train or measure (see the model card)."""

Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Clip:
    path: Path
    corpus: str
    speaker: str
    emotion: str
    gender: str
    age: str


def read_clips(data: Path) -> list[Clip]:
    clips: list[Clip] = []
    for corpus in ("emotion-ravdess", "age-gender-accent", "multilingual-cv"):
        with open(data / corpus / "MANIFEST.tsv", encoding="utf-8") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                emotion = row.get("emotion", "")
                clips.append(
                    Clip(
                        path=data / corpus / row["path"],
                        corpus=corpus,
                        speaker=row["speaker"] or row["path"],
                        emotion="disgusted" if emotion == "disgust" else emotion,
                        gender=row.get("gender", "") if row.get("gender", "") in GENDERS else "",
                        # RAVDESS has no age column (its actors were 21-33: neither band for sure).
                        age=AGE_BANDS.get(row.get("age", ""), ""),
                    )
                )
    return clips


def extract(clips: Sequence[Clip], cache: Path) -> dict[str, Array]:
    """Embeddings per encoder and the prosody matrix, computed once and cached (keyed by clip path)."""
    cache.mkdir(parents=True, exist_ok=True)
    out: dict[str, Array] = {}
    pool = EnginePool(Settings(), Metrics())
    names = [str(c.path) for c in clips]
    speaker_encoder = SpeakerEncoder.load()
    for model in (*ENCODERS, "speaker", "prosody"):
        file = cache / f"{model.replace('/', '_')}.npz"
        if file.exists():
            with np.load(file, allow_pickle=False) as z:
                if list(z["names"]) == names:
                    out[model] = z["x"].astype(np.float64)
                    continue
        started = time.perf_counter()
        rows: list[Array] = []
        engine = pool.get(model) if model in ENCODERS else None
        for i, clip in enumerate(clips):
            audio = decode(clip.path)
            if model == "prosody":
                rows.append(prosody_vector(extract_features(audio)))
            elif model == "speaker":
                rows.append(speaker_encoder.embed([audio])[0].astype(np.float64))
            else:
                assert isinstance(engine, VoiceEncoder)
                rows.append(engine.listen(audio).embedding.astype(np.float64))
            if i % 100 == 0:
                print(f"  {model}: {i}/{len(clips)}", flush=True)
        out[model] = np.stack(rows)
        np.savez(file, names=np.asarray(names), x=out[model])
        print(f"{model}: {len(clips)} clips in {time.perf_counter() - started:.0f} s", flush=True)
    return out


# -- noise -----------------------------------------------------------------------------------------------------------

SNR_LEVELS = (20.0, 10.0, 5.0, 0.0, -5.0, -10.0)
"""Signal-to-noise ratios (dB: active speech over noise) at which the heads are measured on held-out speakers, and
their reliability against the measured SNR is fitted."""
AUGMENT_MIN_SNR = 0.0
"""Multi-condition training adds the training speakers' clips at the levels from this SNR up (below it, speech is
mostly masked: those levels teach the reliability curve where to give up, not the head)."""
BABBLE_TALKERS = 4
MAX_CLEAN_LOSS = 0.02
"""Multi-condition training (clean + noisy clips) is kept when it costs at most this much UAR on clean speech."""


def speech_power(audio: npt.NDArray[np.floating]) -> float:
    """Mean power of the louder half of the 20 ms frames: the active speech level, leading and trailing silence
    left out."""
    frames = np.asarray(audio[: len(audio) // 320 * 320], dtype=np.float64).reshape(-1, 320)
    power = np.sort((frames**2).mean(axis=1))
    return float(power[len(power) // 2 :].mean()) if len(power) else 0.0


def add_noise(
    audio: npt.NDArray[np.floating], noise: npt.NDArray[np.floating], snr_db: float
) -> npt.NDArray[np.float32]:
    """``audio`` with ``noise`` (tiled to its length) added at ``snr_db`` over the active speech level."""
    noise = np.resize(np.asarray(noise, dtype=np.float64), len(audio))
    gain = math.sqrt(speech_power(audio) / max(float((noise**2).mean()), 1e-12) / 10 ** (snr_db / 10))
    mixed = np.asarray(audio, dtype=np.float64) + gain * noise
    peak = float(np.abs(mixed).max(initial=0.0))
    return (mixed * (0.99 / peak) if peak > 0.99 else mixed).astype(np.float32)


def trains_on(level: str) -> bool:
    """Whether multi-condition training uses the noise level named ``level`` (``clean``, ``20dB``, ...)."""
    return level != "clean" and float(level.removesuffix("dB")) >= AUGMENT_MIN_SNR


def noise_for(i: int, level: int, clip: Clip, bank: Sequence[tuple[str, npt.NDArray[np.float32]]]) -> Array:
    """Clip ``i``'s noise at the ``level``-th SNR: white and babble in turn (so each clip meets both), babble being
    :data:`BABBLE_TALKERS` Common Voice talkers other than the clip's own speaker, each at the same level."""
    rng = np.random.default_rng(1000 * i + level)
    n = 16000 * 12
    if (i + level) % 2 == 0:
        return rng.standard_normal(n)
    others = [a for speaker, a in bank if speaker != clip.speaker]
    babble = np.zeros(n)
    for k in rng.choice(len(others), size=BABBLE_TALKERS, replace=False):
        talker = np.resize(np.asarray(others[k], dtype=np.float64), n)
        babble += np.roll(talker, int(rng.integers(n))) / math.sqrt(max(speech_power(talker), 1e-12))
    return babble


def extract_noisy(
    clips: Sequence[Clip], rows: Sequence[int], whisper_rows: set[int], data: Path, cache: Path
) -> dict[str, dict[str, Array]]:
    """Per level (``clean`` and each SNR): the measured SNR (``snr``), and ``speaker``, ``prosody`` and
    ``whisper/base`` (for ``whisper_rows`` only) of the noisy clips; rows not computed are NaN. Cached."""
    names = np.asarray([str(c.path) for c in clips])
    bank: list[tuple[str, npt.NDArray[np.float32]]] = []
    with open(data / "multilingual-cv" / "MANIFEST.tsv", encoding="utf-8") as f:
        for row in list(csv.DictReader(f, delimiter="\t"))[::10]:  # one clip of each language
            bank.append((row["speaker"] or row["path"], decode(data / "multilingual-cv" / row["path"])))
    pool = EnginePool(Settings(), Metrics())
    speaker_encoder = SpeakerEncoder.load()
    out: dict[str, dict[str, Array]] = {}
    for level, snr in [(-1, math.inf), *enumerate(SNR_LEVELS)]:
        key = "clean" if level < 0 else f"{snr:g}dB"
        file = cache / f"noise-{key}.npz"
        if file.exists():
            with np.load(file, allow_pickle=False) as z:
                if np.array_equal(z["names"], names):
                    out[key] = {k: z[k] for k in z.files if k != "names"}
                    continue
        started = time.perf_counter()
        part: dict[str, list[Array]] = {"snr": [], "speaker": [], "prosody": [], "whisper/base": []}
        wanted = set(rows)
        for i, clip in enumerate(clips):
            if i not in wanted:
                for k, width in (("snr", 1), ("speaker", 256), ("prosody", 10), ("whisper/base", 1024)):
                    part[k].append(np.full(width, math.nan))
                continue
            audio = decode(clip.path)
            if level >= 0:
                audio = add_noise(audio, noise_for(i, level, clip, bank), snr)
            measured = extract_features(audio)
            part["snr"].append(np.asarray([math.nan if measured.snr_db is None else measured.snr_db]))
            if level < 0:
                for k, width in (("speaker", 256), ("prosody", 10), ("whisper/base", 1024)):
                    part[k].append(np.full(width, math.nan))
                continue
            part["prosody"].append(prosody_vector(measured))
            part["speaker"].append(speaker_encoder.embed([audio])[0].astype(np.float64))
            if i in whisper_rows:
                engine = pool.get("whisper/base")
                assert isinstance(engine, VoiceEncoder)
                part["whisper/base"].append(engine.listen(audio).embedding.astype(np.float64))
            else:
                part["whisper/base"].append(np.full(1024, math.nan))
        out[key] = {k: np.stack(v) for k, v in part.items()}
        np.savez(file, names=names, **out[key])
        print(f"noise {key}: {len(wanted)} clips in {time.perf_counter() - started:.0f} s", flush=True)
    return out


def fit_reliability(snr: Array, top: Array, right: Array, bins: int = 12) -> tuple[Array, Array]:
    """The reliability curve: knots of measured SNR (dB) and the share of confidence kept at each, so that
    ``reliability x top confidence`` is about how often the top label is right. Per bin of measured SNR (equal
    counts) the least-squares factor, then made non-decreasing in SNR (isotonic, weighted), clipped to [0, 1]."""
    from sklearn.isotonic import IsotonicRegression

    ok = ~np.isnan(snr)
    order = np.argsort(snr[ok])
    s, c, r = snr[ok][order], top[ok][order], right[ok][order]
    groups = [g for g in np.array_split(np.arange(len(s)), bins) if len(g)]
    knots = np.asarray([float(np.median(s[g])) for g in groups])
    weight = np.asarray([float((c[g] ** 2).sum()) for g in groups])
    factor = np.asarray([float((c[g] * r[g]).sum()) / w for g, w in zip(groups, weight, strict=True)])
    iso = IsotonicRegression(increasing=True, y_min=0.0, y_max=1.0)
    return knots, np.asarray(iso.fit(knots, np.clip(factor, 0.0, 1.0), sample_weight=weight).predict(knots))


def reliability(snr: Array, knots: Array, values: Array) -> Array:
    """The curve at each measured SNR (flat beyond its ends); 1 where the SNR was not measured."""
    return np.where(np.isnan(snr), 1.0, np.interp(np.nan_to_num(snr), knots, values))


def noise_study(
    task: Task,
    c: float,
    matrix_of: Callable[[dict[str, Array] | None], Array],
    noisy: dict[str, dict[str, Array]],
    *,
    augment: bool,
) -> dict[str, object]:
    """The head's held-out scores at each noise level, trained on clean speech only or (``augment``) on its
    training speakers' clips at every level too (multi-condition training); then the reliability curve fitted on
    those held-out predictions, and the scores with it: ``unclear`` should take over as noise takes the head
    toward chance, and stay out of the way on clean speech."""
    x = matrix_of(None)[task.rows]
    extra = [matrix_of(f)[task.rows] for key, f in noisy.items() if trains_on(key)] if augment else []
    models = fold_models(task, x, c, extra)
    clean_logits = held_out_logits(task, x, models)
    # Each fold's temperature from the other folds' clean held-out logits (as cross_validate does).
    fold_temperature = np.zeros(len(task.y))
    for k in models:
        fold_temperature[task.folds == k] = temperature(clean_logits[task.folds != k], task.y[task.folds != k])
    levels: dict[str, tuple[Array, Array]] = {}
    for key, features in noisy.items():
        logits = clean_logits if key == "clean" else held_out_logits(task, matrix_of(features)[task.rows], models)
        levels[key] = (softmax(logits / fold_temperature[:, None]), features["snr"][task.rows, 0])
    p_all = np.vstack([p for p, _ in levels.values()])
    snr_all = np.concatenate([snr for _, snr in levels.values()])
    y_all = np.tile(task.y, len(levels))
    knots, values = fit_reliability(snr_all, p_all.max(axis=1), (p_all.argmax(axis=1) == y_all).astype(np.float64))
    r_all = reliability(snr_all, knots, values)
    pooled = {"ece": ece(p_all, y_all), "ece_with_reliability": ece(p_all * r_all[:, None], y_all)}
    table: dict[str, dict[str, float]] = {}
    for key, (p, snr) in levels.items():
        r = reliability(snr, knots, values)
        o = scores(task.y, p, len(task.labels))
        table[key] = {
            "uar": float(o["uar"]), "accuracy": float(o["accuracy"]), "ece": float(o["ece"]),  # type: ignore[arg-type]
            "ece_with_reliability": ece(p * r[:, None], task.y),
            "unclear_wins": float((1.0 - r > r * p.max(axis=1)).mean()),
            "measured_snr_median_db": float(np.nanmedian(snr)),
        }  # fmt: skip
    return {
        "augment": augment,
        "temperature": temperature(clean_logits, task.y),
        "reliability_knots_db": knots.tolist(),
        "reliability": values.tolist(),
        "pooled": pooled,
        "levels": table,
    }


# -- training and scores ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    name: str
    labels: tuple[str, ...]
    rows: npt.NDArray[np.int64]
    """Indices of the clips this task uses."""
    y: npt.NDArray[np.int64]
    folds: npt.NDArray[np.int64]
    """Fold of each row (speaker-independent)."""
    groups: tuple[str, ...]


def make_tasks(clips: Sequence[Clip], n_folds: int) -> list[Task]:
    from sklearn.model_selection import StratifiedGroupKFold

    tasks: list[Task] = []
    # Emotion: RAVDESS, one male and one female actor held out per fold (actors 01+02, 03+04, ...).
    rows = [i for i, c in enumerate(clips) if c.emotion]
    folds = [(int(clips[i].speaker.rsplit("_", 1)[1]) - 1) // 2 for i in rows]
    tasks.append(_task("emotion", EMOTIONS, clips, rows, lambda c: c.emotion, np.asarray(folds)))
    for name, labels, get in (("gender", GENDERS, lambda c: c.gender), ("age", AGES, lambda c: c.age)):
        rows = [i for i, c in enumerate(clips) if get(c) in labels]
        y = np.asarray([labels.index(get(clips[i])) for i in rows])
        groups = [clips[i].speaker for i in rows]
        fold = np.zeros(len(rows), dtype=np.int64)
        splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=0)
        for k, (_, test) in enumerate(splitter.split(np.zeros(len(rows)), y, groups)):
            fold[test] = k
        tasks.append(_task(name, labels, clips, rows, get, fold))
    return tasks


def _task(
    name: str,
    labels: tuple[str, ...],
    clips: Sequence[Clip],
    rows: list[int],
    get: Callable[[Clip], str],
    folds: npt.NDArray[np.int64],
) -> Task:
    y = np.asarray([labels.index(get(clips[i])) for i in rows], dtype=np.int64)
    speakers = tuple(clips[i].speaker for i in rows)
    return Task(name, labels, np.asarray(rows), y, np.asarray(folds, dtype=np.int64), speakers)


def standardiser(x: Array) -> tuple[Array, Array]:
    mean = np.nanmean(x, axis=0)
    scale = np.nanstd(x, axis=0)
    scale[~np.isfinite(scale) | (scale < 1e-8)] = 1.0
    mean[~np.isfinite(mean)] = 0.0
    return mean, scale


def standardise(x: Array, mean: Array, scale: Array) -> Array:
    z = (x - mean) / scale
    return np.where(np.isnan(z), 0.0, z)


def speaker_weights(groups: Sequence[str], y: npt.NDArray[np.int64]) -> Array:
    """Each speaker counts once (its clips share a weight of 1), then each class weighs the same in total."""
    per_speaker = Counter(groups)
    w = np.asarray([1.0 / per_speaker[g] for g in groups])
    for k in np.unique(y):
        w[y == k] /= w[y == k].sum()
    return w * len(y) / w.sum()


def fit(x: Array, y: npt.NDArray[np.int64], w: Array, c: float, n_classes: int) -> tuple[Array, Array, Array, Array]:
    """(mean, scale, weights [classes, inputs], bias [classes]) of a standardised multinomial logistic regression."""
    from sklearn.linear_model import LogisticRegression

    mean, scale = standardiser(x)
    model = LogisticRegression(C=c, max_iter=3000)
    model.fit(standardise(x, mean, scale), y, sample_weight=w)
    coef, bias = model.coef_, model.intercept_
    if n_classes == 2:  # sklearn keeps one row for two classes: the softmax of (-z/2, z/2) is the same logistic
        coef = np.vstack([-coef[0] / 2, coef[0] / 2])
        bias = np.asarray([-bias[0] / 2, bias[0] / 2])
    return mean, scale, coef, bias


def softmax(logits: Array) -> Array:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def temperature(logits: Array, y: npt.NDArray[np.int64]) -> float:
    """The temperature minimising the negative log-likelihood of ``logits`` (a grid on a log scale)."""
    grid = np.exp(np.linspace(math.log(0.05), math.log(20.0), 400))
    nll = [-np.log(softmax(logits / t)[np.arange(len(y)), y] + 1e-12).mean() for t in grid]
    return float(grid[int(np.argmin(nll))])


def ece(p: Array, y: npt.NDArray[np.int64], bins: int = 10) -> float:
    """Expected calibration error of the top label: |accuracy - confidence| per confidence bin, weighted."""
    conf = p.max(axis=1)
    right = p.argmax(axis=1) == y
    edges = np.linspace(0.0, 1.0, bins + 1)
    total = 0.0
    for lo, hi in itertools.pairwise(edges):
        inside = (conf > lo) & (conf <= hi)
        if inside.any():
            total += inside.mean() * abs(right[inside].mean() - conf[inside].mean())
    return float(total)


def scores(y: npt.NDArray[np.int64], p: Array, n_classes: int) -> dict[str, object]:
    pred = p.argmax(axis=1)
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    for t, q in zip(y, pred, strict=True):
        confusion[t, q] += 1
    recalls = [confusion[k, k] / confusion[k].sum() for k in range(n_classes) if confusion[k].sum()]
    return {
        "uar": float(np.mean(recalls)),
        "accuracy": float((pred == y).mean()),
        "ece": ece(p, y),
        "n": len(y),
        "confusion": confusion.tolist(),
    }


def fold_models(
    task: Task, x: Array, c: float, extra: Sequence[Array] = ()
) -> dict[int, tuple[Array, Array, Array, Array]]:
    """Per fold, the head fitted on the other folds' speakers: their clips ``x`` and, for multi-condition training,
    the same clips again in each of the ``extra`` matrices (the clips with noise added)."""
    return {int(k): fit_on(task, task.folds != k, x, c, extra) for k in np.unique(task.folds)}


def held_out_logits(task: Task, x: Array, models: dict[int, tuple[Array, Array, Array, Array]]) -> Array:
    """Each clip's logits from the model of its own fold (fitted without its speakers)."""
    logits = np.zeros((len(task.y), len(task.labels)))
    for k, (mean, scale, coef, bias) in models.items():
        test = task.folds == k
        logits[test] = standardise(x[test], mean, scale) @ coef.T + bias
    return logits


def fit_on(
    task: Task, mask: npt.NDArray[np.bool_], x: Array, c: float, extra: Sequence[Array] = ()
) -> tuple[Array, Array, Array, Array]:
    """The head fitted on the clips ``mask`` selects (``x``) and, for multi-condition training, the same clips again
    in each of the ``extra`` matrices; every speaker weighs the same across all its copies."""
    xs = np.vstack([m[mask] for m in (x, *extra)])
    ys = np.tile(task.y[mask], 1 + len(extra))
    groups = [g for g, keep in zip(task.groups, mask, strict=True) if keep] * (1 + len(extra))
    return fit(xs, ys, speaker_weights(groups, ys), c, len(task.labels))


def cross_validate(task: Task, x: Array, c: float, extra: Sequence[Array] = ()) -> dict[str, object]:
    """Out-of-fold scores per fold and overall, before and after temperature scaling (the temperature of each
    fold fitted on the other folds' out-of-fold logits, so the calibrated scores stay held out too)."""
    n = len(task.labels)
    logits = held_out_logits(task, x, fold_models(task, x, c, extra))
    calibrated = np.zeros_like(logits)
    per_fold = []
    for k in np.unique(task.folds):
        test = task.folds == k
        t = temperature(logits[~test], task.y[~test])
        calibrated[test] = softmax(logits[test] / t)
        fold = scores(task.y[test], calibrated[test], n)
        fold["speakers"] = len(set(g for g, s in zip(task.groups, test, strict=True) if s))
        per_fold.append(fold)
    overall = scores(task.y, calibrated, n)
    overall["ece_uncalibrated"] = ece(softmax(logits), task.y)
    counts = np.bincount(task.y, minlength=n)
    return {
        "c": c,
        "overall": overall,
        "folds": per_fold,
        "temperature": temperature(logits, task.y),
        "chance_uar": 1.0 / n,
        "majority_accuracy": float(counts.max() / counts.sum()),
        "class_counts": dict(zip(task.labels, counts.tolist(), strict=True)),
        "speakers": len(set(task.groups)),
    }


def feature_sets(features: dict[str, Array]) -> dict[str, tuple[tuple[str, ...], Array]]:
    """name -> (the head's inputs, in order, and their matrix over all clips). ``speaker`` is the d-vector of
    ``voxgate.analysis.speaker`` (diarization's encoder), ``prosody`` the measurements of ``PROSODY_FEATURES``."""
    combos = {
        "base": ("whisper/base",),
        "base+prosody": ("whisper/base", "prosody"),
        "tiny.en": ("whisper/tiny.en",),
        "tiny.en+prosody": ("whisper/tiny.en", "prosody"),
        "speaker": ("speaker",),
        "speaker+prosody": ("speaker", "prosody"),
        "base+speaker+prosody": ("whisper/base", "speaker", "prosody"),
    }
    return {name: (inputs, np.hstack([features[i] for i in inputs])) for name, inputs in combos.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/voxgate-profile"))
    parser.add_argument("--folds", type=int, default=6)
    parser.add_argument("--c", type=float, nargs="+", default=[0.01, 0.1, 1.0])
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "profile-heads.json")
    parser.add_argument("--out", type=Path, default=HEADS_DIR)
    parser.add_argument("--no-export", action="store_true")
    parser.add_argument(
        "--no-noise", action="store_true", help="skip the noise study (the heads then keep no reliability curve)"
    )
    args = parser.parse_args()

    clips = read_clips(args.data)
    features = extract(clips, args.cache)
    sets = feature_sets(features)
    tasks = make_tasks(clips, args.folds)
    noisy: dict[str, dict[str, Array]] = {}
    if not args.no_noise:
        rows = sorted({int(i) for task in tasks for i in task.rows})
        noisy = extract_noisy(clips, rows, {int(i) for i in tasks[0].rows}, args.data, args.cache)
    results: dict[str, object] = {"clips": len(clips), "folds": args.folds, "tasks": {}}
    for task in tasks:
        print(f"\n== {task.name}: {len(task.y)} clips, {len(set(task.groups))} speakers, "
              f"classes {dict(zip(task.labels, np.bincount(task.y).tolist(), strict=True))}")  # fmt: skip
        runs: dict[str, dict[str, object]] = {}
        for name, (_, matrix) in sets.items():
            for c in args.c:
                run = cross_validate(task, matrix[task.rows], c)
                o = run["overall"]
                assert isinstance(o, dict)
                print(f"  {name:16s} C={c:<5} UAR {o['uar']:.3f}  acc {o['accuracy']:.3f}  "
                      f"ECE {o['ece_uncalibrated']:.3f} -> {o['ece']:.3f}")  # fmt: skip
                runs[f"{name} C={c}"] = {"features": name, **run}
        best_key = max(runs, key=lambda k: runs[k]["overall"]["uar"])  # type: ignore[index]
        best = runs[best_key]
        print(f"  best: {best_key}")
        for k, fold in enumerate(best["folds"]):  # type: ignore[arg-type]
            print(f"    fold {k}: UAR {fold['uar']:.3f} acc {fold['accuracy']:.3f} ECE {fold['ece']:.3f} "
                  f"n={fold['n']} speakers={fold['speakers']}")  # fmt: skip
        print(f"    confusion (rows true {list(task.labels)}):")
        for label, row in zip(task.labels, best["overall"]["confusion"], strict=True):  # type: ignore[index]
            print(f"      {label:10s} {row}")
        results["tasks"][task.name] = {"best": best_key, "runs": runs}  # type: ignore[index]
        inputs, matrix = sets[str(best["features"])]
        c, temp = float(best["c"]), float(best["temperature"])  # type: ignore[arg-type]
        extra: list[Array] = []
        knots, values = np.zeros(0), np.zeros(0)
        if noisy:

            def matrix_of(f: dict[str, Array] | None, inputs: tuple[str, ...] = inputs) -> Array:
                return np.hstack([(features if f is None else f)[i] for i in inputs])

            studies = {augment: noise_study(task, c, matrix_of, noisy, augment=augment) for augment in (False, True)}
            for study in studies.values():
                print(f"    noise, {'trained on clean + noisy' if study['augment'] else 'trained on clean only'} "
                      f"(held-out speakers; then with the reliability curve fitted on them):")  # fmt: skip
                for key, row in study["levels"].items():  # type: ignore[attr-defined]
                    print(f"      {key:6s} UAR {row['uar']:.3f} acc {row['accuracy']:.3f} ECE {row['ece']:.3f} -> "
                          f"{row['ece_with_reliability']:.3f}; unclear wins {row['unclear_wins']:.1%}; "
                          f"measured SNR median {row['measured_snr_median_db']:.1f} dB")  # fmt: skip
            clean = {a: st["levels"]["clean"]["uar"] for a, st in studies.items()}  # type: ignore[index]
            augment = clean[True] >= clean[False] - MAX_CLEAN_LOSS
            chosen = studies[augment]
            print(f"    kept: {'multi-condition' if augment else 'clean-only'} training (clean UAR "
                  f"{clean[False]:.3f} clean-only, {clean[True]:.3f} multi-condition)")  # fmt: skip
            results["tasks"][task.name]["noise"] = {"kept_augment": augment, "studies": list(studies.values())}  # type: ignore[index]
            pooled = chosen["pooled"]
            assert isinstance(pooled, dict)
            # The curve ships only where it makes the confidences truer over all the levels together: the measured
            # SNR is a rough estimate (it flattens out below ~3 dB), so for a robust head it can do more harm.
            keep_curve = pooled["ece_with_reliability"] < pooled["ece"]
            print(f"    reliability curve {'kept' if keep_curve else 'left out'}: ECE over every level "
                  f"{pooled['ece']:.3f} without, {pooled['ece_with_reliability']:.3f} with")  # fmt: skip
            results["tasks"][task.name]["noise"]["kept_reliability"] = keep_curve  # type: ignore[index]
            if keep_curve:
                knots, values = np.asarray(chosen["reliability_knots_db"]), np.asarray(chosen["reliability"])
            temp = float(chosen["temperature"])  # type: ignore[arg-type]
            if augment:
                extra = [matrix_of(f)[task.rows] for key, f in noisy.items() if trains_on(key)]
        if not args.no_export:
            everyone = np.ones(len(task.y), dtype=bool)
            mean, scale, coef, bias = fit_on(task, everyone, matrix[task.rows], c, extra)
            args.out.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(
                args.out / f"{task.name}.npz",
                name=np.asarray(task.name),
                labels=np.asarray(task.labels),
                inputs=np.asarray(inputs),
                feature_set=np.asarray(best["features"]),
                c=np.asarray(c),
                mean=mean.astype(np.float32),
                scale=scale.astype(np.float32),
                weights=coef.astype(np.float32),
                bias=bias.astype(np.float32),
                temperature=np.asarray(temp),
                multi_condition=np.asarray(bool(extra)),
                reliability_knots_db=knots.astype(np.float32),
                reliability=values.astype(np.float32),
            )
            print(f"  wrote {args.out / f'{task.name}.npz'} ({' + '.join(inputs)})")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1) + "\n")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
