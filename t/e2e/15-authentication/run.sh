#!/usr/bin/env bash
# 15-authentication: pipescan as a DKIM signer for outbound mail and a verifier for inbound mail,
# against the authoritative unbound of scripts/dns-stack (PIPESCAN_DNS; its keys in
# PIPESCAN_DNS_KEYS), with dkimpy (t/auth/dkimpy.py) as the independent judge of the signatures.
#
# Outbound: carol's application submits on the local submission port; the ORIGINATING transport
# (pipescan --policy ORIGINATING) signs for sign.test after its own header edits; what dave finds
# in his mailbox -- after Postfix's pickup, cleanup and virtual(8) -- still verifies.
# Inbound: a message signed by example.test arrives with Authentication-Results: mx.test;
# dkim=pass; a forged "bank" message (From: bank.test, p=reject, no signature, SPF fail from
# 127.0.0.1) is refused: [auth] dmarc_reject = "reject".
source "$(dirname "$0")/../lib.sh"
for v in PIPESCAN_DNS PIPESCAN_DNS_KEYS; do
    [[ -n ${!v:-} ]] || fail "$v is not set: scripts/dns-stack up DIR && set -a && eval \"\$(scripts/dns-stack env DIR)\" && set +a (scripts/test does this)"
done
DKIMPY="/usr/bin/python3 $E2E_DIR/../auth/dkimpy.py"
fresh_start
# The pipe user must read the key, and nobody else: a copy in the scenario's own directory,
# root:pipescan 0640 (pipescan refuses a key file readable by others).
cp "$PIPESCAN_DNS_KEYS/sign-rsa.private" "$WORK/sign-rsa.private"
chgrp "$(id -gn pipescan)" "$WORK/sign-rsa.private"
chmod 640 "$WORK/sign-rsa.private"
sed "s|@DNS@|$PIPESCAN_DNS|g" "$SCENARIO_DIR/pipescan.toml" >"$WORK/pipescan.toml"
use_config "$WORK/pipescan.toml"

step "carol's application submits a message from carol@sign.test on the submission port"
m=$(msg outbound <<MSG
From: Carol <carol@sign.test>
To: dave@example.com
Subject: minutes of the board meeting
Date: @DATE@
Message-ID: <@ID@@sign.test>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

The minutes are below.
  - item one
  - item two
MSG
)
smtp_send "$POSTFIX_SUBMIT_PORT" carol@sign.test dave@example.com "$m"

step "dave gets one copy, signed by sign.test (relaxed/relaxed) over pipescan's own fields too"
delivered_once "$(mailbox dave)"
expect_header_match "$DELIVERED" DKIM-Signature 'a=rsa-sha256; s=rsa; d=sign.test; c=relaxed/relaxed;'
expect_header "$DELIVERED" X-Virus-Scanned "pipescan at mx.test"
ends_with_original "$m" "$DELIVERED"

step "dkimpy verifies the signature against the key in DNS, after Postfix delivered the copy"
verdict=$(PIPESCAN_DNS=$PIPESCAN_DNS $DKIMPY verify <"$DELIVERED") || fail "dkimpy: $verdict"
[[ $verdict == "0 pass d=sign.test s=rsa" ]] || fail "dkimpy said: $verdict"
note "dkimpy: $verdict"
expect_ps_log 'Passed CLEAN \{Relayed\}, <carol@sign\.test> -> <dave@example\.com>.*DKIM-signed d=sign\.test s=rsa a=rsa-sha256'


step "an inbound message signed by example.test (dkimpy) gets our Authentication-Results: dkim=pass"
fresh_start
plain=$(msg inbound <<MSG
From: Alice <alice@example.test>
To: dave@example.com
Subject: hello from example.test
Date: @DATE@
Message-ID: <@ID@@example.test>

Hi Dave.
MSG
)
PIPESCAN_DNS=$PIPESCAN_DNS $DKIMPY sign rsa example.test "$PIPESCAN_DNS_KEYS/rsa.private" <"$plain" >"$WORK/inbound-signed.eml" ||
    fail "dkimpy could not sign"
smtp_send "$POSTFIX_SMTP_PORT" alice@example.test dave@example.com "$WORK/inbound-signed.eml"
delivered_once "$(mailbox dave)"
expect_header_match "$DELIVERED" Authentication-Results '^mx\.test; dkim=pass header\.d=example\.test header\.s=rsa .*spf=(fail|softfail|none|neutral) .*dmarc=pass header\.from=example\.test'
wait_ps_log 'Passed CLEAN .*auth: dkim=pass spf=[a-z,]+ dmarc=pass'

step "a forged message From: security@bank.test (DMARC p=reject, unsigned, from 127.0.0.1) is refused"
fresh_start
spoof=$(msg spoof <<MSG
From: Bank Security <security@bank.test>
To: dave@example.com
Subject: please verify your account
Date: @DATE@
Message-ID: <@ID@@evil.example.net>

Click the link.
MSG
)
smtp_send "$POSTFIX_SMTP_PORT" mallory@example.net dave@example.com "$spoof"
wait_ps_log 'Blocked SPAM .*<mallory@example.net> -> <dave@example.com>.*auth: dkim=none spf=[a-z,]+ dmarc=fail'
expect_pf_log "$QUEUE_ID: to=<dave@example.com>, relay=pipescan, .*dsn=5\.7\.1, status=bounced \(message rejected: DMARC fail, policy reject \(From domain bank\.test\)"
settle
[[ $(mail_count "$(mailbox dave)") -eq 0 ]] || fail "dave got the forged message"
note "Postfix returned it to mallory@example.net (the envelope sender) with pipescan's 5.7.1 reason"
