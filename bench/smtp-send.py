#!/usr/bin/env python3
"""smtp-send.py HOST:PORT MESSAGE N [SESSIONS] -- send N copies of MESSAGE over SMTP.

Each copy is made unique (its own Message-ID and a numbered Subject), so that no cache of
scan results (amavisd's, SpamAssassin's) can answer for a copy it has seen. SESSIONS parallel
SMTP connections (default 4), each sending its share of messages in one session, the way a
busy inbound MX receives them. Envelope: alice@example.org -> bob@example.com. Prints the
number of messages the server accepted.
"""
import smtplib
import sys
import threading

host, port = sys.argv[1].rsplit(":", 1)
raw = open(sys.argv[2], "rb").read().replace(b"\r\n", b"\n")
n = int(sys.argv[3])
sessions = int(sys.argv[4]) if len(sys.argv) > 4 else 4
head, body = raw.split(b"\n\n", 1)


def message(i):
    lines = []
    for line in head.split(b"\n"):
        if line.lower().startswith(b"message-id:"):
            line = b"Message-ID: <bench-%d.%d@laptop.example.org>" % (i, id(raw))
        elif line.lower().startswith(b"subject:"):
            line = line + b" (%d)" % i
        lines.append(line)
    return (b"\n".join(lines) + b"\n\n" + body).replace(b"\n", b"\r\n")


accepted = 0
lock = threading.Lock()


def worker(k):
    global accepted
    s = smtplib.SMTP(host, int(port), timeout=120)
    s.ehlo("client.example.org")
    for i in range(k, n, sessions):
        s.sendmail("alice@example.org", ["bob@example.com"], message(i))
        with lock:
            accepted += 1
    s.quit()


threads = [threading.Thread(target=worker, args=(k,)) for k in range(sessions)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(accepted)
