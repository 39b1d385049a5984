"""What the classify service accepts as an appeal text (real SPb appeals must never be refused)."""

from __future__ import annotations

import pytest

from mcu_nlp.services.classify import InvalidAppealText, check_text


def test_russian_appeal_citing_many_links_is_accepted(spb_frame) -> None:
    # Real reports quote earlier portal pages by URL; the Latin letters of links do not count.
    linked = spb_frame[spb_frame["text"].str.count("http") >= 3]["text"]
    assert len(linked) > 0
    for text in linked:
        assert check_text(text)


@pytest.mark.parametrize("text", ["This is an English complaint about the road near my house",
                                  "Ð¿Ñ€Ð¸Ð²ÐµÑ‚ Ð¼Ð¸Ñ€ Ð´Ð¾Ñ€Ð¾Ð³Ð° Ð¿Ð»Ð¾Ñ…Ð°Ñ"])
def test_non_russian_text_is_refused_with_a_reason(text: str) -> None:
    with pytest.raises(InvalidAppealText, match="not in Russian"):
        check_text(text)


def test_stray_control_character_is_dropped_binary_is_refused(spb_frame) -> None:
    # A real SPb appeal (id 3298886) carries one \x03 in the middle of a long text.
    text = spb_frame.loc[spb_frame["id"] == 3298886, "text"].iloc[0]
    assert "\x03" in text
    assert check_text(text) == text.replace("\x03", "").strip()
    with pytest.raises(InvalidAppealText, match="control characters"):
        check_text("мусор\x00\x01\x02\x03\x04\x05 во дворе")
