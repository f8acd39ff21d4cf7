#!/usr/bin/python3
"""The dkimpy referee for pipescan's DKIM tests (Debian's python3-dkim, run by /usr/bin/python3).

  dkimpy.py sign SELECTOR DOMAIN KEYFILE [rsa|ed25519] [HEADER,HEADER...]  < msg > signed
  dkimpy.py verify                                                          < msg
      one line per DKIM-Signature, top first: "INDEX pass|fail d=DOMAIN s=SELECTOR [why]";
      exit 0 when every signature verifies (and there is at least one), 1 otherwise.
  dkimpy.py arc-sign SELECTOR DOMAIN KEYFILE AUTHSERV-ID                    < msg > sealed
      adds an ARC set (needs an Authentication-Results field of AUTHSERV-ID; python3-authres)
  dkimpy.py arc-verify                                                      < msg
      prints the chain's result (pass, fail, none); exit 0 on pass

Keys come from the server in PIPESCAN_DNS (HOST:PORT, scripts/dns-stack) through dkimpy's
dnsfunc: never the system resolver.
"""
import os, sys
import dkim, dns.resolver

def resolver():
    host, port = os.environ["PIPESCAN_DNS"].rsplit(":", 1)
    r = dns.resolver.Resolver(configure=False)
    r.nameservers = [host]
    r.port = int(port)
    return r

def dnsfunc(name, timeout=5):
    try:
        name = name.decode() if isinstance(name, bytes) else name
        ans = resolver().resolve(name, "TXT", lifetime=timeout)
    except Exception:
        return b""
    return b"".join(b"".join(rr.strings) for rr in ans)

def sign(argv):
    sel, dom, keyfile = argv[0], argv[1], argv[2]
    alg = argv[3] if len(argv) > 3 else "rsa"
    headers = [h.encode() for h in argv[4].split(",")] if len(argv) > 4 else None
    msg = sys.stdin.buffer.read()
    key = open(keyfile, "rb").read()
    sig = dkim.sign(msg, sel.encode(), dom.encode(), key,
                    canonicalize=(b"relaxed", b"relaxed"),
                    signature_algorithm=b"ed25519-sha256" if alg == "ed25519" else b"rsa-sha256",
                    include_headers=headers)
    sys.stdout.buffer.write(sig + msg)

def verify():
    msg = sys.stdin.buffer.read()
    d = dkim.DKIM(msg)
    n = sum(1 for (k, _) in d.headers if k.lower() == b"dkim-signature")
    ok_all = n > 0
    for i in range(n):
        why = ""
        try:
            ok = d.verify(idx=i, dnsfunc=dnsfunc)
        except Exception as e:
            ok, why = False, str(e)
        sig = d.signature_fields or {}
        dom = sig.get(b"d", b"?").decode(errors="replace")
        s = sig.get(b"s", b"?").decode(errors="replace")
        print(f"{i} {'pass' if ok else 'fail'} d={dom} s={s} {why}".rstrip())
        ok_all = ok_all and ok
    sys.exit(0 if ok_all else 1)

def arc_sign(argv):
    sel, dom, keyfile, srv = argv[0], argv[1], argv[2], argv[3]
    msg = sys.stdin.buffer.read()
    key = open(keyfile, "rb").read()
    fields = dkim.arc_sign(msg, sel.encode(), dom.encode(), key, srv.encode())
    sys.stdout.buffer.write(b"".join(fields) + msg)

def arc_verify():
    cv = dkim.arc_verify(sys.stdin.buffer.read(), dnsfunc=dnsfunc)[0]
    cv = cv.decode() if isinstance(cv, bytes) else str(cv)
    print(cv)
    sys.exit(0 if cv == "pass" else 1)

if __name__ == "__main__":
    if len(sys.argv) >= 5 and sys.argv[1] == "sign":
        sign(sys.argv[2:])
    elif len(sys.argv) == 6 and sys.argv[1] == "arc-sign":
        arc_sign(sys.argv[2:])
    elif sys.argv[1:] == ["arc-verify"]:
        arc_verify()
    elif sys.argv[1:] == ["verify"]:
        verify()
    else:
        sys.exit(__doc__)
