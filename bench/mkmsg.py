#!/usr/bin/env python3
"""mkmsg.py KIND OUT [ARG] -- benchmark messages that are generated rather than stored.

  virus OUT EICAR_HEX   the 10 KB ham text plus the EICAR test file as a base64 attachment
                        (the hex comes from scripts/mailstack, so no file here is a test virus)
  banned OUT            the 10 KB ham text plus a harmless attachment named invoice.pdf.exe
  big OUT BYTES         a message of exactly BYTES bytes: a short text part and a base64
                        attachment of pseudo-random bytes (what a large real mail is)
  attach OUT FILE NAME  the 10 KB ham text plus FILE as a base64 attachment called NAME
"""
import base64
import os
import random
import sys

here = os.path.dirname(os.path.abspath(__file__))
ham = open(os.path.join(here, "msg", "ham-10k.eml"), "rb").read()
head, body = ham.split(b"\n\n", 1)
head = head.replace(b"Content-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: 7bit\n", b"")


def multipart(att_name, att_type, payload_b64, text=body):
    return (head + b'\nContent-Type: multipart/mixed; boundary="=-bench-="\n\n'
            b"--=-bench-=\nContent-Type: text/plain; charset=us-ascii\n\n" + text +
            b"\n--=-bench-=\nContent-Type: " + att_type + b'; name="' + att_name +
            b'"\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename="' +
            att_name + b'"\n\n' + payload_b64 + b"\n--=-bench-=--\n")


def wrap(b64):
    return b"\n".join(b64[i:i + 76] for i in range(0, len(b64), 76))


kind, out = sys.argv[1], sys.argv[2]
if kind == "virus":
    eicar = bytes.fromhex(sys.argv[3])
    m = multipart(b"invoice.com", b"application/octet-stream", wrap(base64.b64encode(eicar)))
elif kind == "banned":
    m = multipart(b"invoice.pdf.exe", b"application/octet-stream",
                  wrap(base64.b64encode(b"%PDF-1.4 harmless bytes, only the name is banned\n" * 4)))
elif kind == "big":
    size = int(sys.argv[3])
    text = b"Hi Bob,\n\nthe data set is attached.\n\nAlice\n"
    empty = multipart(b"data.bin", b"application/octet-stream", b"", text)
    room = size - len(empty)
    # base64 with a newline every 76 characters: 77 bytes of text carry 57 bytes of data.
    nbytes = room * 57 // 77
    rnd = random.Random(42)
    while True:
        b64 = wrap(base64.b64encode(rnd.randbytes(nbytes)))
        m = multipart(b"data.bin", b"application/octet-stream", b64, text)
        if len(m) <= size:
            break
        nbytes -= max(1, (len(m) - size) * 57 // 77)
    # Pad the text part up to the exact size.
    m = multipart(b"data.bin", b"application/octet-stream", b64,
                  text + b"x" * (size - len(m) - 1) + b"\n" if len(m) < size else text)
    assert len(m) == size, (len(m), size)
elif kind == "attach":
    data = open(sys.argv[3], "rb").read()
    m = multipart(sys.argv[4].encode(), b"application/octet-stream", wrap(base64.b64encode(data)))
else:
    sys.exit(__doc__)
with open(out, "wb") as f:
    f.write(m)
