"""The plain-Python baseline: smtplib on one connection, one ``EmailMessage`` built per reader.

The same content as subscribe's new-post email (its rendered HTML and text parts, the
reader's name and address put in), multipart/alternative, quoted-printable, the same
headers. Stops after ``--seconds`` or when the readers run out; prints
``<messages> <seconds> <average size>``.

    python bench/smtplib_loop.py --port 2525 --csv readers.csv --eml preview.eml --seconds 10
"""

from __future__ import annotations

import argparse
import csv
import smtplib
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--csv", type=Path, required=True, help="email,name rows")
    parser.add_argument("--eml", type=Path, required=True, help="subscribe preview's message")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()

    sample = message_from_bytes(args.eml.read_bytes(), policy=policy.default)
    assert isinstance(sample, EmailMessage)
    text_part = sample.get_body(preferencelist=("plain",))
    html_part = sample.get_body(preferencelist=("html",))
    assert text_part is not None and html_part is not None
    text, html = text_part.get_content(), html_part.get_content()
    sample_to = sample["To"].addresses[0]
    sample_name, sample_email = sample_to.display_name, sample_to.addr_spec
    unsubscribe = str(sample["List-Unsubscribe"])

    with args.csv.open(newline="") as handle:
        readers = [(row["email"], row.get("name") or "") for row in csv.DictReader(handle)]

    sent = size = 0
    smtp = smtplib.SMTP(args.host, args.port)
    smtp.ehlo("bench.example")
    started = time.perf_counter()
    for email, name in readers:
        message = EmailMessage()
        message["From"] = "Bench Blog <news@blog.example>"
        message["To"] = formataddr((name, email))
        message["Subject"] = sample["Subject"]
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = f"<{sent}.bench@blog.example>"
        message["List-Unsubscribe"] = unsubscribe
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        body_text = text.replace(sample_email, email).replace(sample_name, name)
        body_html = html.replace(sample_email, email).replace(sample_name, name)
        message.set_content(body_text, cte="quoted-printable")
        message.add_alternative(body_html, subtype="html", cte="quoted-printable")
        data = message.as_bytes(policy=policy.SMTP)
        smtp.sendmail("news@blog.example", [email], data)
        sent += 1
        size += len(data)
        if time.perf_counter() - started >= args.seconds:
            break
    elapsed = time.perf_counter() - started
    smtp.quit()
    print(f"{sent} {elapsed:.3f} {size // max(sent, 1)}")


if __name__ == "__main__":
    main()
