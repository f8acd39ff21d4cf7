#!/usr/bin/env bash
# 06-spam-lover-dsn: one GTUBE message, one SMTP transaction, two recipients: bob loves spam,
# carol does not, and the spam destiny is "bounce". pipescan runs once for both (one Postfix
# delivery, ${recipient} expands to both), reinjects a tagged copy for bob only, and sends the
# sender its own DSN naming carol. Postfix itself bounces nothing (pipescan exits 0).
source "$(dirname "$0")/../lib.sh"
fresh_start
use_config "$SCENARIO_DIR/pipescan.toml"

step "promo@example.net sends GTUBE to bob (a spam lover) and carol in one transaction"
m=$(msg gtube <<MSG
From: Prize Office <promo@example.net>
To: bob@example.com, carol@example.com
Subject: you have won
Date: @DATE@
Message-ID: <@ID@@example.net>

Congratulations! Claim your prize today.
$GTUBE
MSG
)
smtp_send "$POSTFIX_SMTP_PORT" promo@example.net bob@example.com,carol@example.com "$m"
id=$QUEUE_ID

step "Postfix runs pipescan once for both recipients; pipescan logs the split verdict"
wait_ps_log 'Blocked SPAM \{Relayed,Tagged,Bounced\}, <promo@example.net> -> <bob@example.com>,<carol@example.com>'
expect_pf_log "$id: to=<bob@example.com>, relay=pipescan, .*status=sent"
expect_pf_log "$id: to=<carol@example.com>, relay=pipescan, .*status=sent"

step "bob, the lover, gets one copy, tagged as spam, otherwise byte for byte"
delivered_once "$(mailbox bob)"
expect_header "$DELIVERED" X-Spam-Flag YES
expect_header "$DELIVERED" Subject "***SPAM*** you have won"
expect_header_match "$DELIVERED" X-Spam-Status '^Yes, score=[0-9.]+ .*tests=\[.*GTUBE=1000'
sed '0,/^Subject: /s//Subject: ***SPAM*** /' "$m" >"$WORK/expected.eml"
ends_with_original "$WORK/expected.eml" "$DELIVERED"

step "carol gets nothing"
[[ $(mail_count "$(mailbox carol)") -eq 0 ]] || fail "carol got the spam: $(mail_files "$(mailbox carol)")"
[[ $(mail_count "$(mailbox catchall)") -eq 0 ]] || fail "something went to the example.com catch-all"

step "the sender gets one DSN from <>: a delivery-status report naming carol (failed), not bob"
delivered_once "$(outside_mailbox promo)"
dsn=$DELIVERED
expect_header_match "$dsn" Return-Path '^<>$'
expect_header_match "$dsn" Content-Type '^multipart/report;.*report-type="?delivery-status'
grep -Eq '^Final-Recipient: rfc822; ?carol@example\.com' "$dsn" || fail "the DSN has no Final-Recipient for carol: $dsn"
grep -Eq '^Action: failed' "$dsn" || fail "the DSN does not say Action: failed"
grep -Eq '^Status: 5\.[0-9]+\.[0-9]+' "$dsn" || fail "the DSN has no 5.x.x Status"
if grep -q 'bob@example\.com' <(sed -n '/^Final-Recipient:/p; /^Original-Recipient:/p' "$dsn"); then
    fail "the DSN names bob, who got the message"
fi
grep -qF 'you have won' "$dsn" || fail "the DSN does not quote the original Subject"
if grep -qF "$GTUBE" "$dsn"; then
    fail "the DSN carries the spam body back to the sender"
fi

step "exactly one pipescan run; Postfix generated no bounce of its own"
runs=$(pipescan_runs)
[[ $runs -eq 1 ]] || fail "expected one pipescan run, the Postfix log shows $runs"
expect_no_pf_log 'postfix/bounce\['
queue_empty || fail "the queue is not empty"
passed
