from __future__ import annotations

from voxgate.streaming.agreement import LocalAgreement, common_prefix


def test_common_prefix_ignores_case_and_punctuation() -> None:
    assert common_prefix(["The", "child,"], ["the", "child", "almost"]) == 2
    assert common_prefix(["a", "b"], ["a", "c"]) == 1
    assert common_prefix([], ["a"]) == 0


def test_words_are_confirmed_by_two_agreeing_hypotheses() -> None:
    la = LocalAgreement()
    assert la.update(["the", "child"]) == []  # one hypothesis confirms nothing
    assert la.update(["the", "child", "almost"]) == ["the", "child"]
    assert la.update(["the", "child", "almost", "hurt"]) == ["almost"]
    assert la.committed == ["the", "child", "almost"]
    assert la.tail(["the", "child", "almost", "hurt", "the"]) == ["hurt", "the"]


def test_confirmed_words_never_change() -> None:
    la = LocalAgreement()
    la.update(["drop", "the", "two"])
    la.update(["drop", "the", "two", "when"])
    assert la.committed == ["drop", "the", "two"]
    # A later hypothesis rewrites the start: nothing new is confirmed, nothing confirmed is taken back.
    assert la.update(["drop", "to", "two", "when", "you"]) == []
    assert la.committed == ["drop", "the", "two"]
    # Once hypotheses agree with the confirmed words again, confirmation resumes after them.
    la.update(["drop", "the", "two", "when", "you", "add"])
    assert la.update(["drop", "the", "two", "when", "you", "add", "the"]) == ["when", "you", "add"]


def test_reset() -> None:
    la = LocalAgreement()
    la.update(["a", "b"])
    la.update(["a", "b"])
    la.reset()
    assert la.committed == []
    assert la.update(["c"]) == []
