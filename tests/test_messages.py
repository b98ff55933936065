"""SMS text rules: encodings, segments, unaccenting, link codes and template checks."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr_service.core import messages
from ivr_service.core.messages import GSM7, UCS2, check_template, encode, new_code, normal_code, unaccent


@pytest.mark.parametrize(("text", "encoding", "units", "segments"), [
    ("", GSM7, 0, 0),
    ("a" * 160, GSM7, 160, 1),
    ("a" * 161, GSM7, 161, 2),            # concatenated: 153 per part
    ("a" * 306, GSM7, 306, 2),
    ("a" * 307, GSM7, 307, 3),
    ("€" * 80, GSM7, 160, 1),              # an extension character takes two septets
    ("€" * 81, GSM7, 162, 2),
    ("Hài lòng", GSM7, 8, 1),              # à and ò are in the GSM-7 alphabet
    ("Rất hài lòng", UCS2, 12, 1),         # ấ is not: the whole message becomes UCS-2
    ("ư" * 70, UCS2, 70, 1),
    ("ư" * 71, UCS2, 71, 2),               # 67 per part
    ("ư" * 135, UCS2, 135, 3),
])
def test_encoding_and_segments(text: str, encoding: str, units: int, segments: int) -> None:
    assert encode(text) == messages.Encoded(encoding, units, segments)


def test_text_is_counted_in_nfc() -> None:
    decomposed = unicodedata.normalize("NFD", "Rất hài lòng")
    assert len(decomposed) > 12
    assert encode(decomposed).units == 12


def test_unaccent_vietnamese() -> None:
    assert unaccent("Ủy ban nhân dân phường Bến Nghé, Đúng hẹn") == "Uy ban nhan dan phuong Ben Nghe, Dung hen"
    assert encode(unaccent("Ông/bà đánh giá sự phục vụ")).encoding == GSM7


@given(st.text(alphabet="aăâbcdđeêghiklmnoôơpqrstuưvxyàảãáạằẳẵắặầẩẫấậèẻẽéẹềểễếệìỉĩíịòỏõóọồổỗốộờởỡớợ"
                        "ùủũúụừửữứựỳỷỹýỵ ĐĂÂÊÔƠƯ0123456789.,:/", max_size=200))
def test_unaccented_vietnamese_is_always_gsm7(text: str) -> None:
    assert encode(unaccent(text)).encoding == GSM7


def test_codes_use_a_carrier_safe_alphabet() -> None:
    codes = {new_code() for _ in range(500)}
    assert len(codes) == 500
    for code in codes:
        assert len(code) == messages.CODE_LENGTH
        assert not set(code) & set("01IOLSZB258_-")
        assert normal_code(code.lower()) == code
    assert normal_code("ABC_DEFGH") is None
    assert normal_code("ACDEFG") is None          # too short
    assert normal_code("ACDEFGHJK\n") is None
    with pytest.raises(ValueError):
        new_code(11)


GOOD = "UBND P.Ben Nghe moi Ong/Ba danh gia dich vu da nhan: {link} Tu choi nhan tin: {stop}"


def test_a_good_template_passes_with_its_encoding() -> None:
    encoded = check_template(GOOD, link_length=40, max_segments=1)
    assert encoded.encoding == GSM7 and encoded.segments == 1
    assert messages.render(GOOD, link="L", stop="S").endswith("Tu choi nhan tin: S")


@pytest.mark.parametrize(("template", "problem"), [
    ("Moi danh gia: {link} {agency} Tu choi: {stop}", "unknown placeholder(s) {agency}"),
    ("Moi danh gia. Tu choi: {stop}", "{link} exactly once"),
    ("Moi danh gia {link} {link}. Tu choi: {stop}", "{link} exactly once"),
    ("Tu choi: {stop}. Moi danh gia: {link}", "must end with the {stop} link"),
    ("Moi danh gia: {link}", "must end with the {stop} link"),
    ("Moi danh gia: {link} } Tu choi: {stop}", "unbalanced"),
    (" Moi danh gia: {link} Tu choi: {stop}", "spaces"),
])
def test_bad_templates_are_refused_naming_the_problem(template: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem.replace("{", r"\{").replace("(", r"\(").replace(")", r"\)")):
        check_template(template, link_length=40, max_segments=1)


def test_a_template_too_long_for_its_segment_limit_is_refused_with_the_count() -> None:
    accented = "Ủy ban nhân dân phường mời Ông/Bà đánh giá sự phục vụ: {link} Từ chối nhận tin: {stop}"
    with pytest.raises(ValueError, match="needs 3 UCS-2 segments \\(154 characters"):
        check_template(accented, link_length=40, max_segments=1)
    assert check_template(accented, link_length=40, max_segments=3).encoding == UCS2
