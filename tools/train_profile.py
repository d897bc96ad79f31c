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


def cross_validate(task: Task, x: Array, c: float) -> dict[str, object]:
    """Out-of-fold scores per fold and overall, before and after temperature scaling (the temperature of each
    fold fitted on the other folds' out-of-fold logits, so the calibrated scores stay held out too)."""
    n = len(task.labels)
    logits = np.zeros((len(task.y), n))
    for k in np.unique(task.folds):
        train, test = task.folds != k, task.folds == k
        w = speaker_weights([g for g, t in zip(task.groups, train, strict=True) if t], task.y[train])
        mean, scale, coef, bias = fit(x[train], task.y[train], w, c, n)
        logits[test] = standardise(x[test], mean, scale) @ coef.T + bias
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
    args = parser.parse_args()

    clips = read_clips(args.data)
    features = extract(clips, args.cache)
    sets = feature_sets(features)
    results: dict[str, object] = {"clips": len(clips), "folds": args.folds, "tasks": {}}
    for task in make_tasks(clips, args.folds):
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
        if not args.no_export:
            inputs, matrix = sets[str(best["features"])]
            x = matrix[task.rows]
            w = speaker_weights(task.groups, task.y)
            mean, scale, coef, bias = fit(x, task.y, w, float(best["c"]), len(task.labels))  # type: ignore[arg-type]
            args.out.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(
                args.out / f"{task.name}.npz",
                name=np.asarray(task.name),
                labels=np.asarray(task.labels),
                inputs=np.asarray(inputs),
                feature_set=np.asarray(best["features"]),
                c=np.asarray(best["c"]),
                mean=mean.astype(np.float32),
                scale=scale.astype(np.float32),
                weights=coef.astype(np.float32),
                bias=bias.astype(np.float32),
                temperature=np.asarray(best["temperature"]),
            )
            print(f"  wrote {args.out / f'{task.name}.npz'} ({' + '.join(inputs)})")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1) + "\n")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
