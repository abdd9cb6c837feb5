"""The lazy ER7 reader and writer, on corpus messages and generated ones."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.hl7v2.er7 import (
    NULL,
    Encoding,
    Message,
    encode_field,
    encode_message,
    encode_segment,
    escape,
    replace_fields,
    split_segments,
    unescape,
)
from broker.errors import MessageError
from tests.conftest import CORPUS

SAMPLE = (CORPUS / "python-hl7" / "sample_hl7.hl7").read_text()


def test_reads_header_and_fields_of_a_corpus_message() -> None:
    message = Message(SAMPLE)
    assert message.message_type == "ORU^R01"
    assert message.control_id == "CNTRL-3456"
    assert message.version == "2.4"
    assert message.get("PID-3") == "555-44-4444"
    assert message.get("PID-5.1") == "EVERYWOMAN"
    assert message.get("PID-5.2") == "EVE"
    assert message.get("OBX(2)-3.2") != ""
    assert message.segment("ZZZ") is None
    assert message.get("ZZZ-1") == ""


def test_reads_repetitions_components_subcomponents() -> None:
    text = "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rPID|1||111^^^H1&1.2.3&ISO^PI~222^^^H2^NH\r"
    message = Message(text)
    assert message.get("PID-3[2].1") == "222"
    assert message.get("PID-3[2].4") == "H2"
    assert message.get("PID-3.4.2") == "1.2.3"
    assert message.get("PID-3[3].1") == ""
    assert [r.split("^")[0] for r in message.segment("PID").repetitions(3)] == ["111", "222"]


def test_uses_the_delimiters_the_message_declares() -> None:
    text = (CORPUS / "hl7apy" / "custom_delimiters_rsp.hl7").read_text()
    message = Message(text)
    assert message.enc.field == "!"
    assert message.message_type.startswith("RSP^")


@pytest.mark.parametrize("separator", ["\r", "\n", "\r\n"])
def test_accepts_cr_lf_and_crlf_segment_separators(separator: str) -> None:
    text = separator.join(["MSH|^~\\&|A|B|C|D|1||ADT^A01|9|P|2.5", "PID|1||5", "PV1|1|I"])
    assert [s.name for s in Message(text)] == ["MSH", "PID", "PV1"]


def test_empty_and_null_are_told_apart() -> None:
    message = Message('MSH|^~\\&|A|B|C|D|1||ADT^A08|9|P|2.5\rPID|1||5||""\r')
    assert message.get("PID-5") == ""
    assert message.is_null("PID-5")
    assert not message.is_null("PID-4")


def test_escape_sequences_decode() -> None:
    enc = Encoding()
    assert unescape("a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f", enc) == "a|b^c&d~e\\f"
    assert unescape("x\\.br\\y", enc) == "x\ny"
    assert unescape("\\XC3A9\\", enc) == "é"
    assert unescape("\\H\\bold\\N\\", enc) == "bold"
    assert unescape("keep \\Zfoo\\ as is", enc) == "keep \\Zfoo\\ as is"
    assert unescape("lone \\ escape", enc) == "lone \\ escape"


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("malformed_pid_first.hl7", "MSH"),
        ("malformed_msh_bad_encoding_chars.hl7", "MSH-2"),
        ("malformed_msh_too_many_encoding_chars.hl7", "MSH-2"),
    ],
)
def test_malformed_corpus_messages_raise_with_a_location(name: str, fragment: str) -> None:
    with pytest.raises(MessageError) as info:
        Message((CORPUS / "hl7apy" / name).read_text())
    assert fragment in (info.value.location or "")


def test_writer_builds_msh_and_escapes_values() -> None:
    msh = encode_segment(
        "MSH",
        [
            "APP",
            ("FAC", "1.2.3", "ISO"),
            "",
            "",
            "20240101",
            None,
            ("ORU", "R01", "ORU_R01"),
            "42",
            "P",
            "2.5",
        ],
    )
    assert msh == "MSH|^~\\&|APP|FAC^1.2.3^ISO|||20240101||ORU^R01^ORU_R01|42|P|2.5"
    obx = encode_segment("OBX", ["1", "ST", None, None, "5|6 ^ 7"])
    assert obx == "OBX|1|ST|||5\\F\\6 \\S\\ 7"
    assert encode_field(NULL) == '""'


def test_replace_fields_readdresses_a_message() -> None:
    text = replace_fields(SAMPLE, {5: "GPAPP", 6: "CAB-DUPONT"})
    message = Message(text)
    assert (message.receiving_application, message.receiving_facility) == ("GPAPP", "CAB-DUPONT")
    assert message.control_id == "CNTRL-3456"
    assert text.count("\r") == len(split_segments(SAMPLE))


# --- properties ---------------------------------------------------------------

# Any text but NUL, which carebroker writes as \X00\ and reads back as written
# (no text store holds NUL; test_nul_is_written_escaped_and_read_back_as_written).
values = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12
)
components = st.one_of(values, st.tuples(values, values))
repetitions = st.one_of(values, st.tuples(components, components, components))
fields = st.lists(repetitions, min_size=1, max_size=3)
encodings = st.sampled_from(
    [Encoding(), Encoding("!", "$", "r", "?", "@"), Encoding("|", "^", "~", "\\", "&", "#")]
)


def _read_back(field: list[object], enc: Encoding) -> list[object]:
    text = encode_message([encode_segment("MSH", ["A"], enc), encode_segment("ZZZ", [field], enc)])
    segment = Message(text).segment("ZZZ")
    assert segment is not None
    out: list[object] = []
    for rep_index, rep in enumerate(field, start=1):
        if isinstance(rep, tuple):
            got = []
            for comp_index, comp in enumerate(rep, start=1):
                if isinstance(comp, tuple):
                    got.append(
                        tuple(
                            segment.get(1, rep_index, comp_index, s)
                            for s in range(1, len(comp) + 1)
                        )
                    )
                else:
                    got.append(segment.get(1, rep_index, comp_index))
            out.append(tuple(got))
        else:
            out.append(segment.get(1, rep_index))
    return out


def _normalise(field: list[object]) -> list[object]:
    """The null value reads back as empty; that is its meaning, not a loss."""

    def norm(v: object) -> object:
        if isinstance(v, tuple):
            return tuple(norm(x) for x in v)
        return "" if v == NULL else v

    return [norm(v) for v in field]


@given(field=fields, enc=encodings)
def test_write_then_read_round_trips(field: list[object], enc: Encoding) -> None:
    if len(field) == 1 and field[0] == "":
        field = ["x"]  # an empty lone repetition is an empty field: nothing to read back
    assert _read_back(field, enc) == _normalise(field)


@given(value=values, enc=encodings)
def test_escape_then_unescape_is_identity(value: str, enc: Encoding) -> None:
    assert unescape(escape(value, enc), enc) == value


def test_nul_is_written_escaped_and_read_back_as_written() -> None:
    assert escape("A\x00B\x1dC") == "A\\X00\\B\\X1D\\C"
    assert unescape("A\\X00\\B\\X1D\\C") == "A\\X00\\B\x1dC"
    with pytest.raises(MessageError) as refused:
        Message("MSH|^~\\&|LIS|LABO\r" + "PID|1||4\x002\r")
    assert (refused.value.location, refused.value.code) == ("PID", 102)
