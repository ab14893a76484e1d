"""E-mail threads: .eml and .mbox files scanned (streaming), threaded and read into messages."""

from __future__ import annotations

import base64
import pickle
import random
import tracemalloc
from datetime import datetime, timezone
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import pytest

from pipeline.ingest.email import (
    EmailRef, decode_text, html_to_text, normalize_subject, parse_email_bytes, read_email_thread,
    scan_email_files, split_reply, thread_refs,
)
from pipeline.ingest.email_index import thread_email_files
from pipeline.ingest.written import AGENT, CUSTOMER, EmptyConversationError, MalformedEmailError, WrittenInputError

CUSTOMER_ADDR = "Anna Lee <anna.lee@customer.example>"
AGENT_ADDR = "John Smith <john.smith@acme.example>"


def raw(frm: str = CUSTOMER_ADDR, to: str = "support@acme.example", subject: str = "Order 123 never arrived",
        date: str | None = "Mon, 03 Jun 2024 10:00:00 +0200", msgid: str | None = "<c1@customer.example>",
        in_reply_to: str | None = None, references: str | None = None, body: str = "Hello, where is my order?\n",
        extra: str = "", content_type: str = "text/plain; charset=utf-8", cte: str = "8bit") -> bytes:
    """An RFC 5322 message as bytes (the body encoded as UTF-8 unless it is already bytes-safe)."""
    head = [f"From: {frm}", f"To: {to}", f"Subject: {subject}"]
    if date:
        head.append(f"Date: {date}")
    if msgid:
        head.append(f"Message-ID: {msgid}")
    if in_reply_to:
        head.append(f"In-Reply-To: {in_reply_to}")
    if references:
        head.append(f"References: {references}")
    head += ["MIME-Version: 1.0", f"Content-Type: {content_type}", f"Content-Transfer-Encoding: {cte}"]
    if extra:
        head += extra.strip("\n").split("\n")
    return ("\n".join(head) + "\n\n").encode() + body.encode()


def write(p: Path, data: bytes) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def mbox(*messages: bytes) -> bytes:
    """An mboxrd archive: From_ lines, body lines starting with (>*)From escaped with one more >."""
    out = b""
    for m in messages:
        lines = m.split(b"\n")
        escaped = [b">" + line if line.lstrip(b">").startswith(b"From ") else line for line in lines]
        out += b"From sender@example.com Mon Jun  3 10:00:00 2024\n" + b"\n".join(escaped).rstrip(b"\n") + b"\n\n"
    return out


def threads_of(*paths: Path):
    refs, errors = scan_email_files(list(paths))
    assert errors == []
    return thread_refs(refs)


# --------------------------------------------------------------------------- bodies


def test_multipart_alternative_prefers_the_plain_text():
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = CUSTOMER_ADDR, "support@acme.example", "Hi"
    m["Date"], m["Message-ID"] = "Mon, 03 Jun 2024 10:00:00 +0000", "<alt@x>"
    m.set_content("Plain words here.\n")
    m.add_alternative("<html><body><p>HTML words here.</p></body></html>", subtype="html")
    msg = parse_email_bytes(m.as_bytes(policy=SMTP), "alt.eml")
    assert msg.text == "Plain words here."
    assert msg.sender == "anna.lee@customer.example" and msg.name == "Anna Lee"
    assert msg.time == datetime(2024, 6, 3, 10, tzinfo=timezone.utc) and msg.role is None
    assert msg.attachments == [] and msg.message_id == "<alt@x>" and msg.origin == "alt.eml"


def test_html_only_body_becomes_text_without_script_or_style():
    html = ("<html><head><style>p {color: red}</style><title>T</title></head><body>"
            "<script>var x = 1;</script><p>Dear Anna,</p><p>Your order&nbsp;ships <b>today</b>.<br>"
            "Tracking: 42</p><ul><li>one</li><li>two</li></ul></body></html>")
    msg = parse_email_bytes(raw(body=html, content_type="text/html; charset=utf-8"), "h.eml")
    assert msg.text == "Dear Anna,\n\nYour order ships today.\nTracking: 42\n\n- one\n- two"
    assert "color" not in msg.text and "var x" not in msg.text


def test_html_blockquote_history_is_set_apart():
    html = ('<div dir="ltr">Thanks, that worked!</div><br><div class="gmail_quote"><div class="gmail_attr">'
            'On Mon, 3 Jun 2024 at 10:12, John Smith &lt;john.smith@acme.example&gt; wrote:<br></div>'
            '<blockquote class="gmail_quote"><div>Please restart the router.</div></blockquote></div>')
    msg = parse_email_bytes(raw(body=html, content_type="text/html; charset=utf-8"), "g.eml")
    assert msg.text == "Thanks, that worked!"
    assert "> Please restart the router." in msg.quoted


@pytest.mark.parametrize("charset, payload, text, note", [
    ("iso-8859-1", "Grüße aus Köln, café".encode("latin-1"), "Grüße aus Köln, café", None),
    ("windows-1252", "“Quoted” costs 5 €".encode("cp1252"), "“Quoted” costs 5 €", None),
    ("x-foo", "naïve café".encode("utf-8"), "naïve café", "unknown charset 'x-foo': read as utf-8"),
    ("x-foo", "naïve café".encode("cp1252"), "naïve café", "unknown charset 'x-foo': read as windows-1252"),
    ("utf-8", "déjà vu".encode("cp1252"), "déjà vu", "text is not valid utf-8: read as windows-1252"),
])
def test_charsets(charset: str, payload: bytes, text: str, note: str | None):
    data = raw(body="", content_type=f"text/plain; charset={charset}") + payload + b"\n"
    msg = parse_email_bytes(data, "c.eml")
    assert msg.text == text
    assert msg.notes == ([note] if note else [])
    assert decode_text(payload, charset) == (text, note)


def test_quoted_printable_and_base64_bodies():
    qp = raw(body="Caf=C3=A9 au lait is =\nready.\n", cte="quoted-printable")
    assert parse_email_bytes(qp, "qp.eml").text == "Café au lait is ready."
    b64 = base64.encodebytes("Grüße, your refund was sent.\n".encode()).decode()
    assert parse_email_bytes(raw(body=b64, cte="base64"), "b.eml").text == "Grüße, your refund was sent."


def test_attachments_are_listed_by_name_and_size_not_kept():
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = CUSTOMER_ADDR, "support@acme.example", "Invoice"
    m["Date"], m["Message-ID"] = "Mon, 03 Jun 2024 10:00:00 +0000", "<att@x>"
    m.set_content("Invoice attached.\n")
    m.add_related(b"\x89PNG fake logo", maintype="image", subtype="png", cid="<logo@x>", disposition="inline")
    pdf = bytes(range(256)) * 10
    m.add_attachment(pdf, maintype="application", subtype="pdf", filename="invoice-2024.pdf")
    msg = parse_email_bytes(m.as_bytes(policy=SMTP), "att.eml")
    assert msg.text == "Invoice attached."
    assert [(a.name, a.size, a.content_type) for a in msg.attachments] == [
        ("invoice-2024.pdf", 2560, "application/pdf")]
    assert "PNG" not in repr(msg) and not hasattr(msg.attachments[0], "data")


# --------------------------------------------------------------------------- quotes and signatures


OUTLOOK_REPLY = """Hi Anna,

I have reissued the parcel; it leaves our warehouse today.

Kind regards,
John Smith
Customer Support Specialist
Acme Ltd

This e-mail and any attachments are confidential and intended solely for the addressee. If you have
received this e-mail in error please notify the sender and delete it.

-----Original Message-----
From: Anna Lee <anna.lee@customer.example>
Sent: Monday, June 3, 2024 10:00 AM
To: support@acme.example
Subject: Order 123 never arrived

Hello, where is my order?
"""

OUTLOOK_FROM_BLOCK = """Thanks John, received it.

Anna

________________________________
From: John Smith <john.smith@acme.example>
Sent: Tuesday, June 4, 2024 9:12 AM
To: Anna Lee <anna.lee@customer.example>
Subject: RE: Order 123 never arrived

I have reissued the parcel.
"""

GMAIL_REPLY = """That worked, thank you! The router is online again.

Sent from my iPhone

On Mon, 3 Jun 2024 at 10:12, John Smith <john.smith@acme.example>
wrote:

> Please restart the router.
>
> Best regards,
> John
"""

INTERLEAVED = """On 03/06/2024 10:12, John Smith wrote:
> Which model is it?

The X200.

> And the serial number?

SN-4411.

--
Anna Lee
"""


def test_outlook_top_posted_reply():
    text, quoted, signature = split_reply(OUTLOOK_REPLY)
    assert text == "Hi Anna,\n\nI have reissued the parcel; it leaves our warehouse today."
    assert signature.startswith("Kind regards,\nJohn Smith\nCustomer Support Specialist\nAcme Ltd")
    assert "intended solely for the addressee" in signature
    assert quoted.startswith("-----Original Message-----") and "where is my order?" in quoted


def test_outlook_header_block_reply():
    text, quoted, signature = split_reply(OUTLOOK_FROM_BLOCK, "Anna Lee <anna.lee@customer.example>")
    assert (text, signature) == ("Thanks John, received it.", "Anna")
    assert split_reply(OUTLOOK_FROM_BLOCK)[:1] == ("Thanks John, received it.\n\nAnna",)
    assert quoted.startswith("____") and "I have reissued the parcel." in quoted


def test_gmail_top_posted_reply():
    text, quoted, signature = split_reply(GMAIL_REPLY)
    assert text == "That worked, thank you! The router is online again."
    assert signature == "Sent from my iPhone"
    assert quoted.startswith("On Mon, 3 Jun 2024") and "> Please restart the router." in quoted


def test_interleaved_reply_keeps_the_answers():
    text, quoted, signature = split_reply(INTERLEAVED)
    assert text == "The X200.\n\nSN-4411."
    assert signature == "--\nAnna Lee"
    assert "> Which model is it?" in quoted and "> And the serial number?" in quoted


@pytest.mark.parametrize("body, text, signature", [
    ("Hello Anna,\n\nTo reset it:\n- unplug it\n- plug it back in\n\nBest,\nJohn\n",
     "Hello Anna,\n\nTo reset it:\n- unplug it\n- plug it back in", "Best,\nJohn"),
    ("Hi folks\n\nHow do I clear a bucket?\n\n-Abhishek Kona\n\n______________________________\n"
     "riak-users mailing list\nriak-users@lists.example.com\n", "Hi folks\n\nHow do I clear a bucket?",
     "-Abhishek Kona\n\n______________________________\nriak-users mailing list\nriak-users@lists.example.com"),
    (":+1:\n\nOn Tue, Sep 25, 2012 at 8:59 AM, Chris Wanstrath\n<notifications@github.com>wrote:\n\n> Done.\n",
     ":+1:", ""),
    ("CAUTION: This email originated from outside of the organization. Do not click links.\n\nWhere is my parcel?\n",
     "Where is my parcel?", "CAUTION: This email originated from outside of the organization. Do not click links."),
])
def test_reply_separation_cases(body: str, text: str, signature: str):
    assert split_reply(body)[::2] == (text, signature)


def test_short_thanks_is_text_not_signature():
    assert split_reply("Thanks!")[0] == "Thanks!"
    assert split_reply("Hi,\nMy order: 123\nThanks!\nOrder number: 123\nAddress: 1 Main St")[2] == ""


# --------------------------------------------------------------------------- scanning and threading


def test_mbox_three_messages_two_threads_with_from_escaping(tmp_path: Path):
    m1 = raw(msgid="<m1@customer.example>", body="Hello,\n\nFrom the start my order was late.\n>From here too.\n")
    m2 = raw(frm=AGENT_ADDR, to=CUSTOMER_ADDR, subject="Re: Order 123 never arrived", msgid="<m2@acme.example>",
             in_reply_to="<m1@customer.example>", references="<m1@customer.example>",
             date="Mon, 03 Jun 2024 12:00:00 +0200", body="We are on it.\n\nJohn\n")
    m3 = raw(frm="Bob <bob@other.example>", subject="Refund", msgid="<m3@other.example>",
             date="Tue, 04 Jun 2024 09:00:00 +0200", body="I want a refund.\n")
    box = write(tmp_path / "archive.mbox", mbox(m1, m3, m2))
    assert b"\n>From the start" in box.read_bytes() and b"\n>>From here too." in box.read_bytes()
    refs, errors = scan_email_files([box])
    assert errors == [] and [r.number for r in refs] == [1, 2, 3]
    threads = thread_refs(refs)
    assert [t.conversation_id for t in threads] == ["archive-1", "archive-2"]
    first = read_email_thread(threads[0])
    assert [m.origin for m in first.messages] == [f"{box} message 1", f"{box} message 3"]
    assert first.messages[0].text == "Hello,\n\nFrom the start my order was late."
    assert first.messages[0].quoted == ">From here too."  # mboxrd: >>From read back as >From
    assert [m.role for m in first.messages] == [CUSTOMER, AGENT]
    assert read_email_thread(threads[1]).messages[0].text == "I want a refund."
    assert all(pickle.loads(pickle.dumps(t)) == t for t in threads)


def test_mbox_body_line_from_is_not_a_split_without_headers_after_it(tmp_path: Path):
    body = "Hello.\n\nFrom what I can see, nothing happened.\nSecond line.\n"
    data = b"From x@y Mon Jun  3 10:00:00 2024\n" + raw(body=body) + b"\n"  # mboxo, unescaped From line
    refs, errors = scan_email_files([write(tmp_path / "o.mbox", data)])
    assert errors == [] and len(refs) == 1
    assert "From what I can see" in read_email_thread(thread_refs(refs)[0]).messages[0].text
    glued = data.rstrip(b"\n") + b"\n" + data  # an exporter that leaves out the blank line between messages
    refs, errors = scan_email_files([write(tmp_path / "glued.mbox", glued)])
    assert errors == [] and [r.number for r in refs] == [1, 2]


def test_thread_split_across_eml_files(tmp_path: Path):
    e1 = write(tmp_path / "mail" / "e001.eml", raw(msgid="<e1@customer.example>"))
    e2 = write(tmp_path / "mail" / "e002.eml", raw(
        frm=AGENT_ADDR, to=CUSTOMER_ADDR, subject="RE: Order 123 never arrived", msgid="<e2@acme.example>",
        in_reply_to="<e1@customer.example>", references="<e1@customer.example>",
        date="Mon, 03 Jun 2024 11:00:00 +0200", body=OUTLOOK_REPLY))
    e3 = write(tmp_path / "mail" / "e003.eml", raw(
        subject="Re: RE: Order 123 never arrived", msgid="<e3@customer.example>", in_reply_to="<e2@acme.example>",
        references="<e1@customer.example> <e2@acme.example>", date="Mon, 03 Jun 2024 12:00:00 +0200",
        body=OUTLOOK_FROM_BLOCK))
    (thread,) = threads_of(e3, e1, e2)
    assert thread.conversation_id == "e001" and [Path(r.path).name for r in thread.refs] == [
        "e001.eml", "e002.eml", "e003.eml"]
    assert thread.size == sum(p.stat().st_size for p in (e1, e2, e3))
    w = read_email_thread(thread)
    assert [m.role for m in w.messages] == [CUSTOMER, AGENT, CUSTOMER]
    assert w.messages[1].text.startswith("Hi Anna") and w.messages[1].signature.startswith("Kind regards")
    assert w.messages[2].text == "Thanks John, received it." and w.origins == [str(e1), str(e2), str(e3)]
    assert w.kind == "email" and w.conversation_id == "e001"


def test_reply_whose_parent_is_missing_joins_its_siblings(tmp_path: Path):
    a = write(tmp_path / "a.eml", raw(frm=AGENT_ADDR, msgid="<a@acme.example>", in_reply_to="<root@gone>",
                                      references="<root@gone>", subject="Re: Order 123 never arrived"))
    b = write(tmp_path / "b.eml", raw(msgid="<b@customer.example>", in_reply_to="<a@acme.example>",
                                      references="<root@gone> <a@acme.example>",
                                      date="Tue, 04 Jun 2024 10:00:00 +0200"))
    c = write(tmp_path / "c.eml", raw(frm="Carl <carl@customer.example>", msgid="<c@customer.example>",
                                      references="<root@gone>", date="Wed, 05 Jun 2024 10:00:00 +0200"))
    (thread,) = threads_of(a, b, c)
    assert [Path(r.path).stem for r in thread.refs] == ["a", "b", "c"]


def test_subject_fallback_joins_only_unlinked_messages_with_a_participant_within_30_days(tmp_path: Path):
    t1 = write(tmp_path / "t1.eml", raw(msgid="<t1@customer.example>"))
    t2 = write(tmp_path / "t2.eml", raw(frm=AGENT_ADDR, to=CUSTOMER_ADDR, msgid="<t2@acme.example>",
                                        in_reply_to="<t1@customer.example>", date="Tue, 04 Jun 2024 10:00:00 +0200"))
    loose = write(tmp_path / "t3.eml", raw(subject="Re: [Ticket #55] Order 123 never arrived", msgid="<t3@c>",
                                           date="Thu, 06 Jun 2024 10:00:00 +0200", body="Any news?\n"))
    stranger = write(tmp_path / "s.eml", raw(frm="Zed <zed@elsewhere.example>", to="sales@acme.example",
                                             msgid="<s@e>", date="Thu, 06 Jun 2024 11:00:00 +0200"))
    late = write(tmp_path / "late.eml", raw(msgid="<late@c>", date="Mon, 02 Sep 2024 10:00:00 +0200"))
    threads = threads_of(t1, t2, loose, stranger, late)
    by_first = {Path(t.refs[0].path).stem: [Path(r.path).stem for r in t.refs] for t in threads}
    assert by_first == {"t1": ["t1", "t2", "t3"], "s": ["s"], "late": ["late"]}
    joined = next(t for t in threads if len(t.refs) == 3)
    assert any("joined by its subject" in n for n in joined.notes)


def test_subject_fallback_does_not_join_two_customers_through_the_support_address(tmp_path: Path):
    a = write(tmp_path / "a.eml", raw(subject="Order status", msgid="<a@c>"))
    b = write(tmp_path / "b.eml", raw(frm="Bob <bob@other.example>", subject="Order status", msgid="<b@o>",
                                      date="Tue, 04 Jun 2024 10:00:00 +0200"))
    assert len(threads_of(a, b)) == 2


def test_normalised_subject():
    assert normalize_subject("RE: AW: Fwd:  [Ticket #12] Order   123 ") == "order 123"
    assert normalize_subject("Automatic reply: Re: SV: Antw: WG: Order 123") == "order 123"


def test_duplicate_message_ids(tmp_path: Path):
    same = raw(msgid="<dup@customer.example>")
    a = write(tmp_path / "a.eml", same)
    b = write(tmp_path / "copy" / "a.eml", same.replace(b"\n", b"\r\n"))  # the same message, CRLF
    (thread,) = threads_of(a, b)
    assert len(thread.refs) == 1 and any("identical" in n for n in thread.notes)
    other = write(tmp_path / "c.eml", raw(msgid="<dup@customer.example>", body="A different text.\n",
                                          date="Mon, 03 Jun 2024 10:05:00 +0200"))
    (thread,) = threads_of(a, other)
    assert len(thread.refs) == 2 and any("different messages" in n and "both kept" in n for n in thread.notes)


def test_references_cycle_is_cut(tmp_path: Path):
    a = write(tmp_path / "a.eml", raw(msgid="<a@x>", in_reply_to="<b@x>", references="<b@x>"))
    b = write(tmp_path / "b.eml", raw(frm=AGENT_ADDR, msgid="<b@x>", in_reply_to="<a@x>", references="<a@x>",
                                      date="Mon, 03 Jun 2024 11:00:00 +0200"))
    (thread,) = threads_of(a, b)
    assert thread.parents == (None, 0) and any("reply loop" in n for n in thread.notes)
    assert [m.role for m in read_email_thread(thread).messages] == [CUSTOMER, AGENT]


@pytest.mark.parametrize("extra, subject, auto", [
    ("Auto-Submitted: auto-replied", "Order", True),
    ("Auto-Submitted: no", "Order", False),
    ("X-Autoreply: yes", "Order", True),
    ("X-Autorespond: Out of office", "Order", True),
    ("Precedence: bulk", "Order", True),
    ("Precedence: auto_reply", "Order", True),
    ("X-Auto-Response-Suppress: All", "Order", False),
    ("", "Automatic reply: Order 123", True),
    ("", "Out of Office: Order 123", True),
    ("", "Auto: Order 123", True),
    ("", "Out of office hours support?", False),
])
def test_auto_reply_detection(extra: str, subject: str, auto: bool):
    assert parse_email_bytes(raw(extra=extra, subject=subject), "x.eml").auto_reply is auto


def test_auto_replies_answering_auto_replies_are_cut(tmp_path: Path):
    c = write(tmp_path / "1.eml", raw(msgid="<c@c>"))
    ack = write(tmp_path / "2.eml", raw(frm="Acme <support@acme.example>", msgid="<ack1@acme>", in_reply_to="<c@c>",
                                        extra="Auto-Submitted: auto-replied", date="Mon, 03 Jun 2024 10:01:00 +0200",
                                        body="We received your request.\n"))
    ooo = write(tmp_path / "3.eml", raw(subject="Automatic reply: Order 123", msgid="<ooo@c>",
                                        in_reply_to="<ack1@acme>",
                                        date="Mon, 03 Jun 2024 10:02:00 +0200", body="I am out of office.\n"))
    ack2 = write(tmp_path / "4.eml", raw(frm="Acme <support@acme.example>", msgid="<ack2@acme>", in_reply_to="<ooo@c>",
                                         extra="Auto-Submitted: auto-replied", date="Mon, 03 Jun 2024 10:03:00 +0200",
                                         body="We received your request.\n"))
    (thread,) = threads_of(c, ack, ooo, ack2)
    assert [Path(r.path).stem for r in thread.refs] == ["1", "2"]
    assert any("2 automatic replies answering automatic replies left out" in n for n in thread.notes)
    w = read_email_thread(thread)
    assert w.messages[1].auto_reply and w.notes == list(thread.notes)


def test_roles_with_and_without_agent_domains(tmp_path: Path):
    c1 = write(tmp_path / "1.eml", raw(msgid="<1@c>"))
    a1 = write(tmp_path / "2.eml", raw(frm="<john.smith@mail.acme.example>", msgid="<2@a>", in_reply_to="<1@c>",
                                       date="Mon, 03 Jun 2024 11:00:00 +0200",
                                       body="Hi Anna,\n\nIt ships today.\n\nBest regards,\nJohn Smith\nAcme Ltd\n"))
    cc = write(tmp_path / "3.eml", raw(frm="Eve <eve@partner.example>", msgid="<3@p>", references="<1@c>",
                                       date="Mon, 03 Jun 2024 12:00:00 +0200", body="FYI.\n"))
    (thread,) = threads_of(c1, a1, cc)
    w = read_email_thread(thread, agent_domains=["acme.example"])
    assert [m.role for m in w.messages] == [CUSTOMER, AGENT, CUSTOMER]
    assert w.messages[1].name == "John Smith"
    w = read_email_thread(thread, agent_addresses=["Eve@Partner.example"])
    assert [m.role for m in w.messages] == [CUSTOMER, CUSTOMER, AGENT]
    w = read_email_thread(thread)
    assert [m.role for m in w.messages] == [CUSTOMER, AGENT, AGENT]  # Eve answered the customer too
    cc2 = write(tmp_path / "4.eml", raw(frm="Eve <eve@partner.example>", to="x@partner.example", msgid="<4@p>",
                                        references="<nothing@here>", date="Mon, 03 Jun 2024 12:00:00 +0200"))
    threads = threads_of(c1, a1, cc2)
    assert [m.role for m in read_email_thread(threads[-1]).messages] == [CUSTOMER]  # a lone starter


def test_undated_message_is_ordered_last_with_the_time_before_it(tmp_path: Path):
    a = write(tmp_path / "a.eml", raw(msgid="<a@c>", date=None, body="Undated follow-up.\n"))
    b = write(tmp_path / "b.eml", raw(frm=AGENT_ADDR, msgid="<b@a>", references="<a@c>",
                                      date="Mon, 03 Jun 2024 10:00:00 +0000", body="Dated answer.\n"))
    (thread,) = threads_of(a, b)
    assert [r.date is None for r in thread.refs] == [False, True]
    w = read_email_thread(thread)
    assert w.messages[1].time == w.messages[0].time and "no usable Date" in w.messages[1].notes[0]


def test_conversation_ids_are_unique_and_stable(tmp_path: Path):
    x = write(tmp_path / "x" / "e1.eml", raw(msgid="<x@c>", subject="One"))
    y = write(tmp_path / "y" / "e1.eml", raw(msgid="<y@c>", subject="Two"))
    z = write(tmp_path / "e1.mbox", mbox(raw(msgid="<z@c>", subject="Three")))
    w = write(tmp_path / "e1-1.eml", raw(msgid="<w@c>", subject="Four"))
    ids = [t.conversation_id for t in threads_of(x, y, z, w)]
    assert ids == [t.conversation_id for t in threads_of(w, z, y, x)]
    assert len(set(ids)) == 4 and {"e1", "e1-1"} <= set(ids)


def test_attachment_only_thread_is_empty(tmp_path: Path):
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = CUSTOMER_ADDR, "support@acme.example", "Scan"
    m["Date"], m["Message-ID"] = "Mon, 03 Jun 2024 10:00:00 +0000", "<scan@x>"
    m.add_attachment(b"%PDF-1.4 scan", maintype="application", subtype="pdf", filename="scan.pdf")
    p = write(tmp_path / "scan.eml", m.as_bytes(policy=SMTP))
    (thread,) = threads_of(p)
    with pytest.raises(EmptyConversationError) as e:
        read_email_thread(thread)
    assert str(p) in str(e.value)
    assert parse_email_bytes(p.read_bytes(), "scan.eml").attachments[0].name == "scan.pdf"


# --------------------------------------------------------------------------- malformed input


def test_malformed_files_are_typed_errors_naming_the_file(tmp_path: Path):
    empty = write(tmp_path / "empty.eml", b"")
    junk = write(tmp_path / "junk.eml", random.Random(0).randbytes(5000))
    header_only = write(tmp_path / "head.eml", raw(body="").rstrip(b"\n") + b"\n")
    text = write(tmp_path / "notes.eml", b"Shopping list:\n- milk\n- eggs\n")
    good = write(tmp_path / "good.eml", raw())
    not_mail = b"X-Junk: 1\n\n\x00\x01binary\xff\n"
    box = write(tmp_path / "box.mbox", mbox(raw(msgid="<1@c>"), not_mail, raw(msgid="<3@c>")))
    refs, errors = scan_email_files([empty, junk, header_only, text, good, box])
    assert all(isinstance(e, MalformedEmailError) for e in errors)
    assert [Path(e.path).name for e in errors] == ["empty.eml", "junk.eml", "head.eml", "notes.eml", "box.mbox"]
    assert "empty" in str(errors[0]) and "message 2" in str(errors[-1])
    assert [r.origin for r in refs] == [str(good), f"{box} message 1", f"{box} message 3"]


def test_changed_file_is_refused(tmp_path: Path):
    p = write(tmp_path / "a.eml", raw())
    (thread,) = threads_of(p)
    p.write_bytes(raw(body="Hello, where is my order!\n"))
    with pytest.raises(WrittenInputError) as e:
        read_email_thread(thread)
    assert "changed since it was scanned" in str(e.value)


# --------------------------------------------------------------------------- streaming


def test_large_mbox_is_scanned_with_flat_memory(tmp_path: Path):
    filler = ("x" * 990 + "\n") * 41
    count = 1000
    path = tmp_path / "big.mbox"
    with open(path, "wb") as f:
        for i in range(count):
            f.write(b"From a@b Mon Jun  3 10:00:00 2024\n")
            f.write(raw(msgid=f"<big{i}@c>", body=f"Message {i}\n" + filler) + b"\n")
    size = path.stat().st_size
    assert size > 40_000_000
    tracemalloc.start()
    try:
        refs, errors = scan_email_files([path])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert errors == [] and len(refs) == count and isinstance(refs[0], EmailRef)
    assert peak < size / 8, f"peak {peak / 1e6:.1f} MB scanning a {size / 1e6:.0f} MB mbox"
    (last,) = thread_refs(refs[-1:])
    assert read_email_thread(last).messages[0].text.startswith(f"Message {count - 1}")


def test_html_to_text_keeps_preformatted_lines():
    assert html_to_text("<pre>a  b\nc</pre><p>d</p>") == "a  b\nc\n\nd"


# --------------------------------------------------------------------------- the on-disk index


def _mixed_folder(tmp_path: Path) -> list[Path]:
    """Files with every threading case: links across files, a missing parent, the subject
    fallback, identical copies, a reused Message-ID, a References cycle, an auto-reply loop, an
    undated message, colliding stems, mbox archives, and files that are not e-mail."""
    d = tmp_path / "mail"
    files = [
        write(d / "e001.eml", raw(msgid="<e1@c>")),
        write(d / "e002.eml", raw(frm=AGENT_ADDR, to=CUSTOMER_ADDR, msgid="<e2@a>", in_reply_to="<e1@c>",
                                  references="<e1@c>", date="Mon, 03 Jun 2024 11:00:00 +0200", body=OUTLOOK_REPLY)),
        write(d / "loose.eml", raw(subject="Re: [Ticket #55] Order 123 never arrived", msgid="<t3@c>",
                                   date="Thu, 06 Jun 2024 10:00:00 +0200", body="Any news?\n")),
        write(d / "copy" / "e001.eml", raw(msgid="<e1@c>").replace(b"\n", b"\r\n")),
        write(d / "other" / "e001.eml", raw(msgid="<e1@c>", body="A different text.\n")),
        write(d / "undated.eml", raw(msgid="<u@c>", date=None, references="<e2@a>", body="Undated.\n")),
        write(d / "cyc-a.eml", raw(subject="Loop", msgid="<a@x>", in_reply_to="<b@x>", references="<b@x>")),
        write(d / "cyc-b.eml", raw(subject="Loop", frm=AGENT_ADDR, msgid="<b@x>", in_reply_to="<a@x>",
                                   references="<a@x>", date="Mon, 03 Jun 2024 11:00:00 +0200")),
        write(d / "orphan.eml", raw(frm=AGENT_ADDR, msgid="<o@a>", references="<root@gone>", subject="Gone")),
        write(d / "x" / "orphan.eml", raw(msgid="<o2@c>", subject="Second orphan")),
        write(d / "junk.eml", b"Shopping list:\n- milk\n"),
        write(d / "archive.mbox", mbox(
            raw(msgid="<m1@c>", subject="Refund"),
            raw(frm="Bob <bob@other.example>", subject="Hello", msgid="<m2@o>", date="Tue, 04 Jun 2024 09:00:00 +0200"),
            raw(frm="Acme <support@acme.example>", msgid="<ack1@acme>", in_reply_to="<m1@c>",
                extra="Auto-Submitted: auto-replied", date="Mon, 03 Jun 2024 10:01:00 +0200", body="Received.\n"),
            raw(subject="Automatic reply: Refund", msgid="<ooo@c>", in_reply_to="<ack1@acme>",
                date="Mon, 03 Jun 2024 10:02:00 +0200", body="Out of office.\n"),
            raw(frm="Acme <support@acme.example>", msgid="<ack2@acme>", in_reply_to="<ooo@c>",
                extra="Auto-Submitted: auto-replied", date="Mon, 03 Jun 2024 10:03:00 +0200", body="Received.\n"),
            b"X-Junk: 1\n\n\x00binary\n",
            raw(msgid="<m1@c>"),
            raw(frm=AGENT_ADDR, to="bob@other.example", subject="Re: Hello", msgid="<m3@a>", in_reply_to="<m2@o>",
                date="Tue, 04 Jun 2024 10:00:00 +0200", body="Hi Bob.\n"))),
        write(d / "e001-2.mbox", mbox(raw(msgid="<n1@c>", subject="Stem"), raw(msgid="<n2@c>", subject="Other"))),
    ]
    return files


def test_index_threads_exactly_as_refs_in_memory(tmp_path: Path):
    files = _mixed_folder(tmp_path)
    for order in (files, files[::-1]):
        refs, errors = scan_email_files(order)
        in_memory = thread_refs(refs)
        indexed, index_errors = thread_email_files(order, scratch=tmp_path / "scratch")
        assert indexed == in_memory and len(indexed) == 8
        assert [(type(e), str(e)) for e in index_errors] == [(type(e), str(e)) for e in errors]
        assert [t.refs for t in indexed] == [t.refs for t in in_memory]  # read back from the files
        assert all(t.cached is None for t in indexed) and all(t.cached is not None for t in in_memory)
        assert [t.locations for t in indexed] == [[(r.path, r.offset, r.length, r.number) for r in t.refs]
                                                  for t in in_memory]
        assert list(map(read_email_thread, indexed)) == list(map(read_email_thread, in_memory))
    assert list((tmp_path / "scratch").iterdir()) == []  # the index is deleted
    assert [t.conversation_id for t in indexed][:4] == ["archive-1", "archive-2", "e001", "cyc-a"]
    assert len({t.conversation_id for t in indexed}) == 8 and "orphan" in {t.conversation_id for t in indexed}
    assert [t.parents for t in indexed][:4] == [(None, None, 0, None), (None, 0), (None, None, 0, 2), (None, 0)]
    notes = " ".join(n for t in indexed for n in t.notes)
    for note in ("identical", "both kept", "References cycle", "automatic replies", "joined by its subject"):
        assert note in notes


def test_indexed_thread_is_small_picklable_and_checked(tmp_path: Path):
    files = _mixed_folder(tmp_path)
    threads, _ = thread_email_files(files)
    for t in threads:
        back = pickle.loads(pickle.dumps(t))
        assert back == t and read_email_thread(back) == read_email_thread(t)
        assert len(pickle.dumps(t)) < 400 + 40 * t.count + sum(map(len, t.notes)) + sum(map(len, t.paths))
    (thread,) = [t for t in threads if t.path.endswith("archive.mbox") and t.count == 2]
    box = Path(thread.path)
    box.write_bytes(box.read_bytes().replace(b"Hi Bob.", b"Hi Bob!"))
    with pytest.raises(WrittenInputError) as e:
        read_email_thread(thread)
    assert "message 8 changed since it was scanned" in str(e.value)


@pytest.mark.slow  # tracemalloc makes the scan of 3000 messages take ~4 s
def test_indexed_threads_of_a_big_mbox_hold_little_memory(tmp_path: Path):
    count = 3000
    path = tmp_path / "many.mbox"
    with open(path, "wb") as f:
        for i in range(count):
            f.write(b"From a@b Mon Jun  3 10:00:00 2024\n")
            reply = {"in_reply_to": f"<q{i - 1}@c>"} if i % 3 else {}
            f.write(raw(msgid=f"<q{i}@c>", subject=f"Order {i // 3}", body=f"Message {i}\n", **reply) + b"\n")
    thread_email_files([write(tmp_path / "one.eml", raw())])  # modules imported: a fixed cost, not measured
    tracemalloc.start()
    try:
        threads, errors = thread_email_files([path])
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert errors == [] and len(threads) == count // 3 and threads[-1].conversation_id == f"many-{count // 3}"
    assert threads == thread_refs(scan_email_files([path])[0])
    # refs in memory take over 1 KB a message; the index path a few hundred bytes at its peak (its page
    # cache, outside Python's allocator, is capped) and keeps about 32 bytes a message and 400 a thread
    assert peak < 1_000_000 + 450 * count, f"{peak / count:.0f} bytes per message at the peak"
    assert kept < 1_000_000 + 200 * count, f"{kept / count:.0f} bytes per message kept"


# --------------------------------------------------------------------------- reading a thread again, cheaply


SAMPLE_EMAIL = Path(__file__).resolve().parents[2] / "interactions_sample" / "email"


def _sample_and_test_messages() -> list[bytes]:
    import mailbox

    out = [p.read_bytes() for p in sorted(SAMPLE_EMAIL.glob("*.eml"))]
    out += [m.as_bytes() for p in sorted(SAMPLE_EMAIL.glob("*.mbox")) for m in mailbox.mbox(str(p))]
    html = EmailMessage()
    html["From"], html["To"], html["Subject"] = AGENT_ADDR, CUSTOMER_ADDR, "=?utf-8?q?R=C3=A9ponse?="
    html.set_content("Plain part\n")
    html.add_alternative("<p>Hello <b>Anna</b></p>", subtype="html")
    html.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="invoice.pdf")
    out += [raw(), raw(extra="Auto-Submitted: auto-replied\nX-Autoreply: yes\n"), html.as_bytes(),
            raw(frm="=?iso-8859-1?q?Ren=E9?= <rene@customer.example>", content_type="text/plain; charset=latin-1")]
    return out


def test_a_message_parses_as_with_the_default_policy(monkeypatch):
    """Each header of a message is parsed once however often it is read (a header registry of
    the message's own): every sample message, and multipart, HTML, attachment, auto-reply and
    encoded-header ones, reads as with the email package's default policy."""
    from email import policy

    import pipeline.ingest.email as email_module

    messages = _sample_and_test_messages()
    assert len(messages) > 40
    once = [parse_email_bytes(data, "m.eml") for data in messages]
    monkeypatch.setattr(email_module, "_policy", lambda: policy.default)
    assert once == [parse_email_bytes(data, "m.eml") for data in messages]


def test_a_thread_read_again_takes_where_each_message_is_its_id_and_date(tmp_path: Path):
    """read_email_thread reads each message again taking only where it is, its Message-ID and its
    Date from the header block (the threading headers are not decoded again): the same as the
    scan's ref, and the same checks (a changed file is refused)."""
    from pipeline.ingest.email import _read_thread

    files = _mixed_folder(tmp_path)
    threads = thread_refs(scan_email_files(files)[0])
    compared = 0
    for thread in threads:
        full = list(_read_thread(thread))
        light = list(_read_thread(thread, threading=False))
        assert [data for _, data in light] == [data for _, data in full]
        for (ref, _), (located, _) in zip(full, light):
            assert (located.path, located.offset, located.length, located.number, located.message_id, located.date,
                    located.origin) == (ref.path, ref.offset, ref.length, ref.number, ref.message_id, ref.date,
                                        ref.origin)
            compared += 1
    assert compared >= 10
