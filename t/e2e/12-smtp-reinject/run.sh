#!/usr/bin/env bash
# 12-smtp-reinject: [reinject] method = "smtp:[127.0.0.1]:PORT". pipescan hands the message to
# the instance's return smtpd (content_filter= empty, FILTER_README's list) instead of
# sendmail -> postdrop -> pickup: the copy reaches bob once, byte-exact below our fields, through
# that smtpd and not through pickup; GTUBE is tagged; an 8-bit message arrives intact and was
# sent with BODY=8BITMIME (Postfix marks the queue file encoding=8bit); a message from a remote
# client (posed with XCLIENT on the inbound smtpd) is logged by the return smtpd with that
# client as orig_client=, handed on by XFORWARD.
source "$(dirname "$0")/../lib.sh"
fresh_start
[[ -n ${POSTFIX_RETURN_PORT:-} ]] || fail "POSTFIX_RETURN_PORT is not set: scripts/postfix-stack too old?"
sed "s|@RETURN_PORT@|$POSTFIX_RETURN_PORT|g" "$SCENARIO_DIR/pipescan.toml" >"$WORK/pipescan.toml"
use_config "$WORK/pipescan.toml"

step "--dry-run names the SMTP target (and no TLS on loopback)"
out=$(printf 'From: alice@example.net\nSubject: dry\n\nhi\n' \
    | "$PIPESCAN_E2E_BIN" -c "$PIPESCAN_E2E_CONF" --dry-run -f alice@example.net -- bob@example.com 2>&1) || true
grep -q "reinject smtp 127.0.0.1:$POSTFIX_RETURN_PORT (in this order), EHLO mx.test, MAIL FROM:<alice@example.net> RCPT TO:<bob@example.com>; TLS: 127.0.0.1:$POSTFIX_RETURN_PORT none" <<<"$out" \
    || fail "--dry-run does not show the SMTP target: $out"

step "alice@example.net sends bob a clean message; pipescan reinjects it over SMTP to port $POSTFIX_RETURN_PORT"
m=$(msg clean <<'MSG'
From: Alice <alice@example.net>
To: Bob <bob@example.com>
Subject: lunch on Friday
Date: @DATE@
Message-ID: <@ID@@example.net>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

Hi Bob,

shall we have lunch on Friday?
.. this line starts with a dot: dot-stuffing on both SMTP hops must give it back unchanged
.
	a line with a leading tab   and trailing spaces   

Alice
MSG
)
smtp_send "$POSTFIX_SMTP_PORT" alice@example.net bob@example.com "$m"
note "queued as $QUEUE_ID"
delivered_once "$(mailbox bob)"
expect_header "$DELIVERED" X-Virus-Scanned "pipescan at mx.test"
expect_no_header "$DELIVERED" X-Spam-Flag
ends_with_original "$m" "$DELIVERED"
wait_ps_log 'Passed CLEAN \{Relayed\}, <alice@example.net> -> <bob@example.com>'

step "the copy came back through the return smtpd (a new queue id, client=localhost), not through pickup"
expect_pf_log "$QUEUE_ID: to=<bob@example.com>, relay=pipescan, .*status=sent"
expect_pf_log "postfix/return/smtpd\\[[0-9]+\\]: [0-9A-Za-z]+: client=localhost\\[127\\.0\\.0\\.1\\]"
back=$(pf_log | sed -En 's/.*postfix\/return\/smtpd\[[0-9]+\]: ([0-9A-Za-z]+): client=localhost.*/\1/p' | head -n1)
[[ -n $back && $back != "$QUEUE_ID" ]] || fail "no new queue id from the return smtpd (got '$back')"
expect_pf_log "$back: from=<alice@example.net>"
expect_pf_log "$back: to=<bob@example.com>, relay=virtual, .*status=sent \\(delivered to maildir\\)"
expect_no_pf_log 'postfix/pickup\['
note "inbound $QUEUE_ID -> pipescan -> return smtpd $back -> virtual"

step "GTUBE over the same path: tagged, one copy"
fresh_start
m=$(msg gtube <<MSG
From: Prize Office <promo@example.net>
To: bob@example.com
Subject: you have won
Date: @DATE@
Message-ID: <@ID@@example.net>

Congratulations! Claim your prize today.
$GTUBE
MSG
)
smtp_send "$POSTFIX_SMTP_PORT" promo@example.net bob@example.com "$m"
delivered_once "$(mailbox bob)"
expect_header "$DELIVERED" X-Spam-Flag YES
expect_header "$DELIVERED" Subject "***SPAM*** you have won"
sed '0,/^Subject: /s//Subject: ***SPAM*** /' "$m" >"$WORK/expected.eml"
ends_with_original "$WORK/expected.eml" "$DELIVERED"
wait_ps_log 'Passed SPAM \{Relayed[,}].*<promo@example.net> -> <bob@example.com>'
expect_no_pf_log 'postfix/pickup\['

step "a message from mail.example.net [192.0.2.7]: the return smtpd logs that client (XFORWARD)"
fresh_start
m=$(msg remote <<'MSG'
From: Alice <alice@example.net>
To: Bob <bob@example.com>
Subject: from far away
Date: @DATE@
Message-ID: <@ID@@example.net>

Sent from a client that is not on this machine.
MSG
)
# The inbound smtpd lets loopback pose as another client (XCLIENT); pipe(8) hands that client
# to pipescan as --client-address/--client-name/--helo/--client-protocol.
out=$WORK/swaks.xclient.log
{ cat "$m"; printf '.\n'; } | swaks --server "127.0.0.1:$POSTFIX_SMTP_PORT" --from alice@example.net \
    --to bob@example.com --helo gw.example.net --xclient-addr 192.0.2.7 \
    --xclient-name mail.example.net --data - >"$out" 2>&1 || { cat "$out" >&2; fail "swaks with XCLIENT failed"; }
QUEUE_ID=$(sed -n 's/.*250 2\.0\.0 Ok: queued as \([0-9A-Za-z]*\).*/\1/p' "$out" | tail -n1)
[[ -n $QUEUE_ID ]] || { cat "$out" >&2; fail "no queue id in swaks' transcript"; }
expect_pf_log "postfix/inbound/smtpd\\[[0-9]+\\]: $QUEUE_ID: client=mail\\.example\\.net\\[192\\.0\\.2\\.7\\]"
delivered_once "$(mailbox bob)"
ends_with_original "$m" "$DELIVERED"
expect_pf_log "$QUEUE_ID: to=<bob@example.com>, relay=pipescan, .*status=sent"
# Postfix logs the forwarded client as orig_client= beside the real one (pipescan on loopback),
# and the inbound queue id (IDENT) as orig_queue_id=: one grep follows the message across.
expect_pf_log "postfix/return/smtpd\\[[0-9]+\\]: [0-9A-Za-z]+: client=localhost\\[127\\.0\\.0\\.1\\], orig_queue_id=$QUEUE_ID, orig_client=mail\\.example\\.net\\[192\\.0\\.2\\.7\\]"
expect_pf_log "postfix/return/smtpd\\[[0-9]+\\]: disconnect from localhost\\[127\\.0\\.0\\.1\\] ehlo=1 xforward=2 mail=1"
expect_no_pf_log 'warning: .*XFORWARD'
# XFORWARD changes the log, not the Received field: the return smtpd stamps the hop it saw
# (from mx.test (localhost [127.0.0.1])), and the inbound smtpd's field below it names the client.
expect_header_match "$DELIVERED" Received '^from gw\.example\.net \(mail\.example\.net \[192\.0\.2\.7\]\)'

step "--envid (Postfix 3.9's \${envid}; this Postfix has no such macro, so by hand): the return smtpd records the ENVID"
fresh_start
m=$(msg envid <<'MSG'
From: hold-reinjected@example.net
To: bob@example.com
Subject: with an envelope id
Date: @DATE@
Message-ID: <@ID@@example.net>

The sender asked for DSNs with this envelope id.
MSG
)
"$PIPESCAN_E2E_BIN" -c "$PIPESCAN_E2E_CONF" --envid "QQ314159 +=x" -f hold-reinjected@example.net \
    -- bob@example.com <"$m" >"$WORK/envid.out" 2>&1 || fail "pipescan --envid failed: $(cat "$WORK/envid.out")"
wait_held
env=$(postcat -e -q "$HELD_ID" 2>&1)
grep -q '^named_attribute: envelope_id=QQ314159 +=x$' <<<"$env" \
    || fail "the reinjected copy has no ENVID: $(grep -i envelope <<<"$env")"
release_held "$HELD_ID"
delivered_once "$(mailbox bob)"
ends_with_original "$m" "$DELIVERED"

step "an 8-bit message (BODY=8BITMIME in): the reinjected copy is held by the return smtpd's test hook"
fresh_start
m=$(msg body8 <<'MSG'
From: hold-reinjected@example.net
To: bob@example.com
Subject: the menu for Friday
Date: @DATE@
Message-ID: <@ID@@example.net>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Grüße aus Köln! Zum Frühstück: Crème brûlée, Smørrebrød, 寿司 and ☕.
.
Latin-1 is not UTF-8, but the filter must not care: caf\xe9.
MSG
)
perl -pi -e 's/\\xe9/\xe9/' "$m" # a raw Latin-1 byte in the body
# To bob's alias: Postfix rewrites it to bob before the filter, and pipe(8) hands the alias to
# pipescan as ${original_recipient}.
smtp_send_raw "$POSTFIX_SMTP_PORT" hold-reinjected@example.net bob-alias@example.com "$m" BODY=8BITMIME
wait_held
env=$(postcat -e -q "$HELD_ID" 2>&1)
grep -q '^named_attribute: encoding=8bit$' <<<"$env" \
    || fail "the SMTP-reinjected copy is not marked 8bit (no BODY=8BITMIME?): $(grep encoding <<<"$env")"
# pipe(8)'s ${original_recipient} went on as ORCPT (without it the return smtpd would record
# the RCPT address, bob@example.com).
grep -q 'dsn_orig_rcpt=rfc822;bob-alias@example.com' <<<"$env" \
    || fail "no ORCPT on the reinjected copy: $(grep -i orig <<<"$env")"
expect_pf_log "postfix/return/smtpd\\[[0-9]+\\]: $HELD_ID: client=localhost"
release_held "$HELD_ID"
delivered_once "$(mailbox bob)"
ends_with_original "$m" "$DELIVERED"
added_part "$m" "$DELIVERED" >"$WORK/added"
expect_7bit "$WORK/added"
expect_no_pf_log 'postfix/pickup\['
passed
