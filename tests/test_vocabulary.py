"""Custom vocabulary respelling (voxgate.vocabulary.apply_vocabulary) on hand-built segments."""

from __future__ import annotations

import pytest

from voxgate.types import Segment, Word
from voxgate.vocabulary import apply_vocabulary


def seg(*words: tuple[str, float, float, float], text: str | None = None) -> Segment:
    ws = tuple(Word(*w) for w in words)
    return Segment(
        text=text if text is not None else " ".join(w.word for w in ws),
        start=ws[0].start if ws else 0.0,
        end=ws[-1].end if ws else 1.0,
        words=ws,
        language="en",
        avg_logprob=-0.3,
        no_speech_prob=0.02,
    )


def text_only(text: str) -> Segment:
    return Segment(text=text, start=0.0, end=2.0, language="en")


GO_TO_COMFY_UI = seg(("Open", 0.0, 0.3, 0.99), ("Comfy", 0.4, 0.7, 0.8), ("UI", 0.75, 1.1, 0.6), ("now", 1.2, 1.5, 0.9))


def test_merges_a_split_term_with_first_start_last_end_lowest_confidence() -> None:
    (out,) = apply_vocabulary([GO_TO_COMFY_UI], ["ComfyUI"])
    assert [w.word for w in out.words] == ["Open", "ComfyUI", "now"]
    merged = out.words[1]
    assert (merged.start, merged.end, merged.confidence) == (0.4, 1.1, 0.6)
    assert out.text == "Open ComfyUI now"
    # the segment keeps its own fields
    assert (out.start, out.end, out.language, out.avg_logprob, out.no_speech_prob) == (0.0, 1.5, "en", -0.3, 0.02)
    assert out.words[0] == GO_TO_COMFY_UI.words[0]
    assert out.words[2] == GO_TO_COMFY_UI.words[3]


def test_keeps_the_surrounding_punctuation() -> None:
    s = seg(("in", 0.0, 0.2, 0.9), ('"Comfy', 0.3, 0.6, 0.9), ("UI.", 0.6, 1.0, 0.7))
    (out,) = apply_vocabulary([s], ["ComfyUI"])
    assert [w.word for w in out.words] == ["in", '"ComfyUI.']
    assert out.text == 'in "ComfyUI.'


def test_trailing_punctuation() -> None:
    (out,) = apply_vocabulary([seg(("Comfy", 0.0, 0.3, 0.9), ("UI.", 0.3, 0.8, 0.9))], ["ComfyUI"])
    assert out.text == "ComfyUI."
    assert [(w.word, w.start, w.end) for w in out.words] == [("ComfyUI.", 0.0, 0.8)]


def test_respells_a_single_word() -> None:
    (out,) = apply_vocabulary([seg(("use", 0.0, 0.2, 0.9), ("comfyui,", 0.3, 0.9, 0.5))], ["ComfyUI"])
    assert [w.word for w in out.words] == ["use", "ComfyUI,"]
    assert out.words[1].start == 0.3


def test_three_word_run_and_digits() -> None:
    s = seg(("the", 0.0, 0.1, 1.0), ("GPT", 0.2, 0.4, 0.9), ("4", 0.4, 0.5, 0.8), ("o", 0.5, 0.6, 0.7))
    (out,) = apply_vocabulary([s], ["GPT-4o"])
    assert [w.word for w in out.words] == ["the", "GPT-4o"]
    assert (out.words[1].start, out.words[1].end, out.words[1].confidence) == (0.2, 0.6, 0.7)


def test_no_false_merge() -> None:
    s = seg(("my", 0.0, 0.2, 0.9), ("comfy", 0.3, 0.6, 0.9), ("eye", 0.6, 0.9, 0.9), ("chair", 1.0, 1.3, 0.9))
    (out,) = apply_vocabulary([s], ["ComfyUI"])
    assert out == s
    (out,) = apply_vocabulary([text_only("Then you go into your comfy eye folder.")], ["ComfyUI"])
    assert out.text == "Then you go into your comfy eye folder."


def test_does_not_merge_across_a_longer_word() -> None:
    (out,) = apply_vocabulary([seg(("Comfy", 0.0, 0.3, 0.9), ("UIs", 0.3, 0.6, 0.9))], ["ComfyUI"])
    assert [w.word for w in out.words] == ["Comfy", "UIs"]


@pytest.mark.parametrize("vocabulary", [[], [""], ["  "], ["..."]])
def test_empty_vocabulary_changes_nothing(vocabulary: list[str]) -> None:
    segments = [GO_TO_COMFY_UI, text_only("comfy ui")]
    assert apply_vocabulary(segments, vocabulary) == tuple(segments)


def test_already_right_is_left_alone() -> None:
    s = seg(("Open", 0.0, 0.3, 0.9), ("ComfyUI", 0.4, 1.0, 0.8), text="Open  ComfyUI")
    (out,) = apply_vocabulary([s], ["ComfyUI"])
    assert out == s  # text untouched (even its double space), since nothing changed


def test_text_only_segments() -> None:
    (out,) = apply_vocabulary([text_only("Then go into your Comfy UI folder, the comfy ui.")], ["ComfyUI"])
    assert out.text == "Then go into your ComfyUI folder, the ComfyUI."
    assert out.words == ()


def test_several_terms_and_segments() -> None:
    segments = [GO_TO_COMFY_UI, seg(("ask", 2.0, 2.2, 0.9), ("Py", 2.3, 2.5, 0.9), ("Torch", 2.5, 2.9, 0.4))]
    first, second = apply_vocabulary(segments, ["ComfyUI", " PyTorch "])
    assert first.text == "Open ComfyUI now"
    assert second.text == "ask PyTorch"
    assert (second.words[1].start, second.words[1].end, second.words[1].confidence) == (2.3, 2.9, 0.4)


def test_longest_run_wins() -> None:
    s = seg(("Comfy", 0.0, 0.3, 0.9), ("UI", 0.3, 0.6, 0.9))
    (out,) = apply_vocabulary([s], ["Comfy", "ComfyUI"])
    assert [w.word for w in out.words] == ["ComfyUI"]


@pytest.mark.parametrize(("term", "word"), [("Yahoo!", "Yahoo!"), ("Inc.", "inc.")])
def test_term_with_its_own_punctuation(term: str, word: str) -> None:
    (out,) = apply_vocabulary([seg(("at", 0.0, 0.2, 0.9), (word, 0.3, 0.6, 0.9))], [term])
    assert [w.word for w in out.words] == ["at", term]


@pytest.mark.parametrize("pad", ["!", "!.", " ", "\u00a0"])
def test_long_punctuation_runs_take_linear_time(pad: str) -> None:
    """A hostile prompt or word of 400,000 punctuation characters around a term: the old edge regex backtracked
    quadratically (57 s at 40,000 characters); the scan is linear, so this finishes long before the test's timeout."""
    n = 200_000 // len(pad)
    term = "ComfyUI" + pad * n
    word = "¡" + "comfyui" + pad * n
    seg = Segment(text=word, start=0.0, end=1.0, words=(Word(word, 0.0, 1.0, 0.9),))
    (out,) = apply_vocabulary([seg], [term, pad * n])
    assert out.words[0].word.startswith("¡ComfyUI")
    assert len(out.words[0].word) == 1 + len(term)
