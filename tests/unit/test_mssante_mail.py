"""The mail infrastructure, pure parts: XDM packages both ways, notices read, addresses scrubbed."""

from __future__ import annotations

import io
import uuid
import zipfile

import pytest

from adapters.mssante import xdm
from adapters.mssante.cda import read_cda
from adapters.mssante.mime import delivery_of, message_id, scrub_addresses
from adapters.mssante.notices import read_notice
from tests.cisis import cda
from tests.mail import dsn, mdn


def submission(action: str | None = None) -> xdm.Submission:
    return xdm.Submission("2.25.1", "2.25.2", "20261130093000", action=action)


def test_a_package_reads_back_with_each_document_and_its_metadata() -> None:
    documents = [read_cda(cda("cr_bio_n3.xml")), read_cda(cda("cr_bio_n1.xml"))]
    package = xdm.read_package(xdm.build_package(documents, submission()))
    assert [e.uri for e in package.entries] == ["DOC0001.XML", "DOC0002.XML"]
    assert [e.data for e in package.entries] == [d.data for d in documents]
    assert package.entries[1].codes[xdm.ENTRY_FORMAT] == "urn:ihe:iti:xds-sd:pdf:2008"
    assert package.entries[0].codes[xdm.ENTRY_FORMAT] == "urn:asip:ci-sis:2010"
    assert package.submission["XDSSubmissionSet.uniqueId"] == "2.25.1"
    replaced = xdm.read_package(
        xdm.build_package([read_cda(cda("cr_imagerie_n1_v2.xml"))], submission("C"))
    )
    assert replaced.entries[0].action == "C"
    assert replaced.entries[0].slots["parentDocumentId"] == ["1.2.250.1.213.1.1.9.1^IMG-0001"]


@pytest.mark.parametrize(
    ("files", "said"),
    [
        ({"README.TXT": b"x"}, "METADATA.XML"),
        ({"IHE_XDM/SUBSET01/METADATA.XML": b"<a", "../evil": b"x"}, "leaves the archive"),
        ({"IHE_XDM/SUBSET01/METADATA.XML": b"<not xml"}, "not well-formed"),
    ],
)
def test_a_bad_package_is_refused_naming_the_part(files: dict[str, bytes], said: str) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    with pytest.raises(xdm.XdmError) as failure:
        xdm.read_package(buffer.getvalue())
    assert said in str(failure.value)
    with pytest.raises(xdm.XdmError):
        xdm.read_package(b"not a zip")


def test_notices_name_their_delivery_outcome_and_codes() -> None:
    delivery = uuid.uuid4()
    notice = read_notice(
        dsn(
            original_message_id=message_id(delivery, "x.fr"),
            recipient="dr@x.mssante.fr",
            action="failed",
            status="5.2.2",
            diagnostic="",
        )
    )
    assert notice is not None and notice.kind == "dsn"
    report = notice.reports[0]
    assert (report.delivery_id, report.final, report.success, report.code) == (
        delivery,
        True,
        False,
        "552",
    )
    delayed = read_notice(
        dsn(original_message_id="<x@y>", recipient="a@b.fr", action="delayed", status="4.4.1")
    )
    assert delayed is not None and not delayed.reports[0].final
    read = read_notice(
        mdn(
            original_message_id=message_id(delivery, "x.fr"),
            reader="dr@x.mssante.fr",
            disposition="manual-action/MDN-sent-manually; deleted",
        )
    )
    assert read is not None and read.kind == "mdn"
    assert (read.reports[0].success, read.reports[0].code) == (False, "906")
    assert read_notice(b"Subject: hello\r\n\r\nnot a report\r\n") is None


def test_addresses_never_stay_in_kept_words_and_message_ids_name_deliveries() -> None:
    words = scrub_addresses("550 5.1.1 <146026322000196@patient.mssante.fr>: unknown")
    assert "146026322000196" not in words
    delivery = uuid.uuid4()
    assert delivery_of(message_id(delivery, "a.fr")) == delivery
    assert delivery_of(delivery.hex) == delivery
    assert delivery_of("<other@a.fr>") is None
