#!/usr/bin/env python3
"""soak.py -- the sender and the accountant of scripts/soak (see its header).

  soak.py send HOST:PORT N MANIFEST [--senders K] [--rate R] [--seed S] [--run-id ID]
      Sends N unique messages over SMTP with K concurrent sessions, paced to R messages/s in
      total (0 = as fast as the server takes them). The mix: ~80% ham to one recipient, ~10%
      GTUBE spam, ~5% an EICAR attachment, ~5% to two local recipients (of those, mostly ham,
      some spam, some EICAR). Every message has its own Message-ID, a Date and realistic text.
      GTUBE and EICAR are built here at run time (EICAR from the hex in SOAK_EICAR_HEX), so no
      file in the repository is a test virus or test spam. MANIFEST gets one JSON line per
      message the server accepted (250 after DATA): id, kind, sender, recipients, time.

  soak.py account MANIFEST --maildirs DIR --quarantine DIR --pipescan-log FILE
          --postfix-log FILE [--json OUT]
      Accounts for every (Message-ID, recipient) pair of MANIFEST:
        delivered    the recipient's Maildir holds a file with that Message-ID (exactly once:
                     more is a DUPLICATE)
        quarantined  a quarantine file carries that Message-ID (and names the recipient in
                     X-Envelope-To)
        discarded    a pipescan log line says {...Discarded...}, names the recipient and the
                     Message-ID
        bounced      a DSN in the sender's Maildir names the Message-ID and the recipient
        UNACCOUNTED  none of these
      (A pair may have several outcomes, e.g. an EICAR message is quarantined and discarded:
      it counts under the first of the list above; the report also shows the combinations.)
      Exit status 0 only when nothing is unaccounted, nothing is duplicated, and no EICAR
      message was delivered.
"""
import argparse
import email.parser
import email.policy
import glob
import json
import os
import random
import re
import smtplib
import sys
import threading
import time
from collections import Counter, defaultdict
from email.utils import formatdate

LOCAL_USERS = ["bob", "alice", "carol", "dave"]
SENDERS = ["alice", "juergen", "mallory", "promo"]
NAMES = {"alice": "Alice Martin", "juergen": "Juergen Weber", "mallory": "Mallory Stone",
         "promo": "Promo Team", "bob": "Bob Smith", "carol": "Carol Jones", "dave": "Dave Brown"}

# GTUBE, assembled so that this file is not itself a test spam
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*" + "GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

TOPICS = [
    ("lunch on Friday", "shall we have lunch on Friday? The usual place at noon works for me, "
     "and if the weather is good we could sit outside."),
    ("minutes of Tuesday's meeting", "attached below are my notes from Tuesday. We agreed to "
     "move the release to the second week of the month and to review the open tickets first."),
    ("the quarterly report", "I went through the figures for the quarter. Sales in the north "
     "region are up a little, the south is flat. Could you check the table on page four?"),
    ("train times", "the train leaves at 8:12 from platform 3 and arrives shortly after ten. "
     "I booked two seats in the quiet carriage; tell me if you would rather drive."),
    ("book club", "next month we read the novel Carol suggested. We meet at Dave's place on "
     "the first Thursday, around seven. Bring something to drink if you like."),
    ("server maintenance window", "the maintenance window is Sunday between two and four in "
     "the morning. The mail server will be restarted once; nothing should be lost."),
    ("holiday photos", "thanks for the photos from the lake, they came out really well. The "
     "one with the boat at sunset is my favourite; may I print it for the kitchen?"),
    ("invoice question", "the invoice from last week lists the workshop twice. I think the "
     "second line is a mistake; could you ask accounting to send a corrected copy?"),
]
CLOSINGS = ["Best regards", "Cheers", "Thanks", "See you soon", "Kind regards"]


def ham_body(rng, sender, rcpt):
    subject, text = rng.choice(TOPICS)
    extra = rng.choice(TOPICS)[1]
    first = NAMES.get(rcpt, rcpt.title()).split()[0]
    body = (f"Hi {first},\n\n{text}\n\nAlso, {extra[0].lower()}{extra[1:]}\n\n"
            f"{rng.choice(CLOSINGS)},\n{NAMES[sender].split()[0]}\n")
    return subject, body


def build(i, run_id, rng, eicar_hex):
    """-> dict(id, kind, sender, rcpts, data)"""
    r = rng.random()
    multi = False
    if r < 0.80:
        kind = "ham"
    elif r < 0.90:
        kind = "spam"
    elif r < 0.95:
        kind = "virus"
    else:
        multi = True
        r2 = rng.random()
        kind = "ham" if r2 < 0.7 else ("spam" if r2 < 0.85 else "virus")
    sender = rng.choice(SENDERS)
    rcpts = rng.sample(LOCAL_USERS, 2 if multi else 1)
    mid = f"<soak.{run_id}.{i:06d}@example.net>"
    to_hdr = ", ".join(f"{NAMES[u]} <{u}@example.com>" for u in rcpts)
    subject, body = ham_body(rng, sender, rcpts[0])
    head = [
        f"From: {NAMES[sender]} <{sender}@example.net>",
        f"To: {to_hdr}",
        f"Date: {formatdate(localtime=True)}",
        f"Message-ID: {mid}",
        "MIME-Version: 1.0",
    ]
    if kind == "spam":
        subject = "you have won"
        body = "Congratulations! Claim your prize today.\n" + GTUBE + "\n"
    if kind == "virus":
        import base64
        eicar = bytes.fromhex(eicar_hex)
        b64 = base64.b64encode(eicar).decode()
        head += [f"Subject: {subject}",
                 'Content-Type: multipart/mixed; boundary="=-soak-boundary-="']
        text = ("This is a multi-part message in MIME format.\n\n"
                "--=-soak-boundary-=\nContent-Type: text/plain; charset=us-ascii\n\n"
                + body + "\n--=-soak-boundary-=\n"
                'Content-Type: application/octet-stream; name="notes.txt"\n'
                "Content-Transfer-Encoding: base64\n"
                'Content-Disposition: attachment; filename="notes.txt"\n\n'
                + b64 + "\n--=-soak-boundary-=--\n")
    else:
        head += [f"Subject: {subject}", "Content-Type: text/plain; charset=us-ascii",
                 "Content-Transfer-Encoding: 7bit"]
        text = body
    msg = "\n".join(head) + "\n\n" + text
    data = msg.replace("\n", "\r\n").encode("ascii")
    return {"id": mid, "kind": kind, "multi": multi, "sender": f"{sender}@example.net",
            "rcpts": [f"{u}@example.com" for u in rcpts], "data": data}


def cmd_send(a):
    host, port = a.server.rsplit(":", 1)
    eicar_hex = os.environ.get("SOAK_EICAR_HEX", "")
    if len(eicar_hex) != 136:
        sys.exit("soak.py send: SOAK_EICAR_HEX must hold the 68-byte EICAR file in hex")
    rng = random.Random(a.seed)
    msgs = [build(i, a.run_id, rng, eicar_hex) for i in range(a.n)]
    lock = threading.Lock()
    out = open(a.manifest, "w")
    t0 = time.monotonic()
    stats = Counter()
    next_slot = [t0]

    def pace():
        if a.rate <= 0:
            return
        with lock:
            slot = next_slot[0]
            next_slot[0] = max(slot, time.monotonic()) + 1.0 / a.rate
        d = slot - time.monotonic()
        if d > 0:
            time.sleep(d)

    def connect():
        for attempt in range(60):
            try:
                s = smtplib.SMTP(host, int(port), timeout=120)
                s.ehlo("client.example.net")
                return s
            except (OSError, smtplib.SMTPException) as e:
                with lock:
                    stats["connect errors"] += 1
                time.sleep(1)
        raise SystemExit(f"soak.py send: cannot connect to {a.server}: {e}")

    def worker(k):
        s = connect()
        sent_in_session = 0
        for m in msgs[k::a.senders]:
            pace()
            for attempt in range(10):
                try:
                    if sent_in_session >= 50:     # a fresh session now and then, as MXs see
                        s.quit()
                        s = connect()
                        sent_in_session = 0
                    s.sendmail(m["sender"], m["rcpts"], m["data"])
                    sent_in_session += 1
                    rec = {k2: m[k2] for k2 in ("id", "kind", "multi", "sender", "rcpts")}
                    rec["t"] = round(time.monotonic() - t0, 3)
                    with lock:
                        out.write(json.dumps(rec) + "\n")
                        out.flush()
                        stats["accepted"] += 1
                    break
                except smtplib.SMTPResponseException as e:
                    # a refusal with a code: nothing was queued; try again (4xx) or give up
                    with lock:
                        stats[f"smtp {e.smtp_code}"] += 1
                    if 500 <= e.smtp_code < 600:
                        with lock:
                            stats["refused"] += 1
                        break
                    time.sleep(1)
                    try:
                        s.rset()
                    except Exception:
                        s = connect()
                        sent_in_session = 0
                except (OSError, smtplib.SMTPException) as e:
                    # the session broke: whether the server queued the message is unknown.
                    # Not sent again (that would make a duplicate of our own): recorded apart.
                    with lock:
                        stats["ambiguous"] += 1
                        rec = {k2: m[k2] for k2 in ("id", "kind", "multi", "sender", "rcpts")}
                        rec["ambiguous"] = str(e)
                        out.write(json.dumps(rec) + "\n")
                        out.flush()
                    s = connect()
                    sent_in_session = 0
                    break
        try:
            s.quit()
        except Exception:
            pass

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(a.senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.close()
    dt = time.monotonic() - t0
    kinds = Counter(("multi-" if m["multi"] else "") + m["kind"] for m in msgs)
    print(f"sent {stats['accepted']} of {a.n} messages in {dt:.1f} s "
          f"({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))}); "
          f"other events: {dict((k, v) for k, v in stats.items() if k != 'accepted') or 'none'}")
    return 0 if stats["accepted"] == a.n else 1


# ---------------------------------------------------------------- accounting

HP = email.parser.BytesHeaderParser(policy=email.policy.compat32)
MID_RE = re.compile(rb"<soak\.[A-Za-z0-9.]+@example\.net>")


def header_of(path, limit=65536):
    with open(path, "rb") as f:
        raw = f.read(limit)
    end = raw.find(b"\n\n")
    return HP.parsebytes(raw[: end + 1] if end >= 0 else raw), raw


def maildir_files(d):
    return sorted(glob.glob(os.path.join(d, "new", "*")) + glob.glob(os.path.join(d, "cur", "*")))


def cmd_account(a):
    manifest = [json.loads(l) for l in open(a.manifest) if l.strip()]
    sent = [m for m in manifest if "ambiguous" not in m]
    ambiguous = [m for m in manifest if "ambiguous" in m]
    sent_ids = {m["id"] for m in manifest}
    by_id = {m["id"]: m for m in manifest}

    # delivered: Maildir -> Message-ID -> files
    delivered = defaultdict(list)          # (id, rcpt) -> [files]
    alert = Counter()                      # kind -> delivered copies with X-Pipescan-Alert
    stray = []
    dsn = defaultdict(set)                 # id -> recipients a DSN names as failed
    dsn_files = []
    for domain_dir in sorted(glob.glob(os.path.join(a.maildirs, "*"))):
        domain = os.path.basename(domain_dir)
        for box in sorted(glob.glob(os.path.join(domain_dir, "*"))):
            user = os.path.basename(box)
            addr = f"{user}@{domain}"
            for f in maildir_files(box):
                h, raw = header_of(f, 1 << 20)
                mid = (h.get("Message-ID") or "").strip()
                if mid in sent_ids:
                    delivered[(mid, addr)].append(f)
                    if h.get("X-Pipescan-Alert"):
                        alert[by_id[mid]["kind"]] += 1
                    continue
                # not one of ours: a DSN (to one of the senders) or something unexpected
                ctype = (h.get("Content-Type") or "").lower()
                if "multipart/report" in ctype or (h.get("From") or "").lower().startswith("mailer-daemon"):
                    dsn_files.append(f)
                    ids = {m.decode() for m in MID_RE.findall(raw)} & sent_ids
                    failed = {x.decode().strip().lower() for x in
                              re.findall(rb"(?im)^Final-Recipient:\s*rfc822;\s*<?([^>\s]+)>?", raw)}
                    for i in ids:
                        for r in by_id[i]["rcpts"]:
                            if r.lower() in failed:
                                dsn[i].add(r)
                else:
                    stray.append(f)

    # quarantined: files with one of our Message-IDs; X-Envelope-To names the recipients
    quarantined = defaultdict(int)         # (id, rcpt) -> copies
    qcat = Counter()
    for root, _dirs, files in os.walk(a.quarantine):
        for name in files:
            p = os.path.join(root, name)
            h, _raw = header_of(p, 1 << 20)
            mid = (h.get("Message-ID") or "").strip()
            if mid not in sent_ids:
                continue
            qcat[(h.get("X-Pipescan-Category") or "?").strip()] += 1
            to = " ".join(h.get_all("X-Envelope-To") or [])
            rcpts = [r for r in by_id[mid]["rcpts"] if r.lower() in to.lower()] or by_id[mid]["rcpts"]
            for r in rcpts:
                quarantined[(mid, r)] += 1

    # pipescan's log: discards, and every verdict and tempfail for the report
    discarded = defaultdict(int)
    verdicts = Counter()
    tempfail_lines = 0
    ps_lines = 0
    line_re = re.compile(r"pipescan\[\d+\]: (?:warning: )?(.*)$")
    for line in open(a.pipescan_log, errors="replace"):
        m = line_re.search(line)
        if not m:
            continue
        ps_lines += 1
        text = m.group(1)
        if text.startswith("TempFailed"):
            tempfail_lines += 1
        v = re.match(r"(Passed|Blocked) (\S+)(?: \(.*?\))? \{([^}]*)\}", text)
        if v:
            verdicts[f"{v.group(1)} {v.group(2)} {{{v.group(3)}}}"] += 1
        if "{" in text and "Discarded" in text.split("}", 1)[0]:
            mid = re.search(r"Message-ID: (<[^>]*>)", text)
            rc = re.search(r"-> ((?:<[^>]*>,?)+)", text)
            if mid and rc and mid.group(1) in sent_ids:
                for r in re.findall(r"<([^>]*)>", rc.group(1)):
                    discarded[(mid.group(1), r)] += 1

    # Postfix's log: pipescan deferrals (exit 75) and the rest
    pf = Counter()
    deferred_ids = set()
    for line in open(a.postfix_log, errors="replace"):
        if "relay=pipescan," in line:
            st = re.search(r"status=(\w+)", line)
            if st:
                pf[f"pipescan {st.group(1)}"] += 1
                if st.group(1) == "deferred":
                    deferred_ids.add(line.split(": ", 2)[1] if ": " in line else "")
                    if "temporarily suspended" in line:
                        pf["deferred without a run (transport suspended)"] += 1
        elif "sender non-delivery notification" in line:
            pf["non-delivery notifications"] += 1

    # per pair
    outcome = Counter()
    by_kind = defaultdict(Counter)
    combos = Counter()
    unaccounted, duplicates, virus_delivered = [], [], []
    for m in sent:
        kind = ("multi-" if m["multi"] else "") + m["kind"]
        for r in m["rcpts"]:
            key = (m["id"], r)
            seen = []
            if delivered.get(key):
                seen.append("delivered")
                if len(delivered[key]) > 1:
                    duplicates.append((m["id"], r, delivered[key]))
            if quarantined.get(key):
                seen.append("quarantined")
            if discarded.get(key):
                seen.append("discarded")
            if r in dsn.get(m["id"], ()):
                seen.append("bounced")
            o = seen[0] if seen else "UNACCOUNTED"
            outcome[o] += 1
            by_kind[kind][o] += 1
            combos["+".join(seen) or "none"] += 1
            if not seen:
                unaccounted.append(key)
            if m["kind"] == "virus" and "delivered" in seen:
                virus_delivered.append(key)
    multi_q = sum(1 for v in quarantined.values() if v > 1)
    multi_d = sum(1 for v in discarded.values() if v > 1)

    pairs = sum(len(m["rcpts"]) for m in sent)
    R = {
        "messages": len(sent), "pairs": pairs, "ambiguous_sends": len(ambiguous),
        "outcomes": dict(outcome), "by_kind": {k: dict(v) for k, v in sorted(by_kind.items())},
        "combinations": dict(combos), "duplicates": len(duplicates),
        "unaccounted": len(unaccounted), "virus_delivered": len(virus_delivered),
        "delivered_with_alert": dict(alert), "quarantine_categories": dict(qcat),
        "quarantined_more_than_once": multi_q, "discard_logged_more_than_once": multi_d,
        "dsn_files": len(dsn_files), "stray_files": len(stray),
        "pipescan_verdicts": dict(verdicts), "pipescan_tempfail_lines": tempfail_lines,
        "postfix": dict(pf), "queue_ids_deferred": len(deferred_ids),
    }
    w = sys.stdout.write
    w(f"messages accepted by Postfix: {len(sent)} ({pairs} message/recipient pairs)"
      f"{f', {len(ambiguous)} ambiguous sends' if ambiguous else ''}\n")
    w("outcome per pair: " + ", ".join(f"{k} {outcome[k]}" for k in
      ("delivered", "quarantined", "discarded", "bounced", "UNACCOUNTED")) + "\n")
    for k, v in sorted(by_kind.items()):
        w(f"  {k:12s} " + ", ".join(f"{o} {n}" for o, n in sorted(v.items())) + "\n")
    w("combinations: " + ", ".join(f"{k} {v}" for k, v in sorted(combos.items())) + "\n")
    w(f"duplicates (same Message-ID twice in one Maildir): {len(duplicates)}\n")
    w(f"unaccounted: {len(unaccounted)}\n")
    w(f"EICAR delivered: {len(virus_delivered)}\n")
    w(f"delivered with X-Pipescan-Alert (a scanner was down): {dict(alert) or 0}\n")
    w(f"quarantine files by category: {dict(qcat)}; pairs quarantined more than once: {multi_q}\n")
    w(f"pairs with more than one discard log line: {multi_d}\n")
    w(f"DSNs in the senders' Maildirs: {len(dsn_files)}; other unexpected files: {len(stray)}\n")
    w("pipescan verdict lines: " + ", ".join(f"{k} {v}" for k, v in sorted(verdicts.items())) + "\n")
    w(f"pipescan TempFailed lines (exit 75): {tempfail_lines}\n")
    w("Postfix pipe(8) results for pipescan: " + ", ".join(f"{k} {v}" for k, v in sorted(pf.items()))
      + f"; queue ids deferred at least once: {len(deferred_ids)}\n")
    for mid, r, files in duplicates[:20]:
        w(f"DUPLICATE {mid} -> {r}: {' '.join(files)}\n")
    for mid, r in unaccounted[:50]:
        w(f"UNACCOUNTED {mid} -> {r} ({by_id[mid]['kind']}, from {by_id[mid]['sender']})\n")
    for mid, r in virus_delivered[:20]:
        w(f"EICAR DELIVERED {mid} -> {r}: {' '.join(delivered[(mid, r)])}\n")
    for f in stray[:20]:
        w(f"unexpected file: {f}\n")
    if a.json:
        R["unaccounted_list"] = unaccounted
        R["duplicate_list"] = [(i, r, f) for i, r, f in duplicates]
        with open(a.json, "w") as f:
            json.dump(R, f, indent=1)
    return 1 if (unaccounted or duplicates or virus_delivered) else 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("send")
    s.add_argument("server")
    s.add_argument("n", type=int)
    s.add_argument("manifest")
    s.add_argument("--senders", type=int, default=4)
    s.add_argument("--rate", type=float, default=0)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--run-id", default=str(int(time.time())))
    c = sub.add_parser("account")
    c.add_argument("manifest")
    c.add_argument("--maildirs", required=True)
    c.add_argument("--quarantine", required=True)
    c.add_argument("--pipescan-log", required=True)
    c.add_argument("--postfix-log", required=True)
    c.add_argument("--json")
    a = p.parse_args()
    sys.exit(cmd_send(a) if a.cmd == "send" else cmd_account(a))


if __name__ == "__main__":
    main()
