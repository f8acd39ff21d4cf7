#!/usr/bin/env bash
# 02-spam: GTUBE from outside. With the default policy bob gets it tagged (X-Spam-Flag: YES,
# "***SPAM***" in the Subject, nothing else changed) and nothing is quarantined; when the admin
# sets the spam destiny to "discard" and quarantines spam, nobody gets it, the quarantine has
# it, and pipescan logs "Blocked SPAM {Discarded}".
source "$(dirname "$0")/../lib.sh"
fresh_start
use_config "$SCENARIO_DIR/pipescan.toml"

spam() {
    msg "$1" <<MSG
From: Prize Office <promo@example.net>
To: bob@example.com
Subject: you have won
Date: @DATE@
Message-ID: <@ID@@example.net>

Congratulations! Claim your prize today.
$GTUBE
MSG
}

step "promo@example.net sends bob the GTUBE test spam over SMTP"
m=$(spam gtube)
smtp_send "$POSTFIX_SMTP_PORT" promo@example.net bob@example.com "$m"

step "bob gets one copy, flagged as spam, with a tagged Subject"
delivered_once "$(mailbox bob)"
expect_header "$DELIVERED" X-Spam-Flag YES
expect_header_match "$DELIVERED" X-Spam-Score '^[0-9]{3,}(\.[0-9]+)?$'
expect_header_match "$DELIVERED" X-Spam-Status '^Yes, score=[0-9.]+ .*tests=\[.*GTUBE=1000'
expect_header "$DELIVERED" Subject "***SPAM*** you have won"
expect_header "$DELIVERED" X-Virus-Scanned "pipescan at mx.test"
wait_ps_log 'Passed SPAM \{Relayed[,}].*<promo@example.net> -> <bob@example.com>'

step "apart from the Subject tag, the original is there byte for byte; nothing was quarantined"
sed '0,/^Subject: /s//Subject: ***SPAM*** /' "$m" >"$WORK/expected.eml"
ends_with_original "$WORK/expected.eml" "$DELIVERED"
[[ -z $(quarantined) ]] || fail "passed spam was quarantined: $(quarantined)"

step "the admin switches the spam destiny to discard and quarantines spam; the same spam comes again"
fresh_start
use_config "$SCENARIO_DIR/pipescan-discard.toml"
m=$(spam gtube-again)
smtp_send "$POSTFIX_SMTP_PORT" promo@example.net bob@example.com "$m"

step "nobody gets it; Postfix counts it as delivered (pipescan exit 0); pipescan logs the discard"
wait_ps_log 'Blocked SPAM \{Discarded[,}].*<promo@example.net> -> <bob@example.com>'
nothing_delivered
expect_pf_log "$QUEUE_ID: to=<bob@example.com>, relay=pipescan, .*status=sent"
runs=$(pipescan_runs)
[[ $runs -eq 1 ]] || fail "expected one pipescan run, the Postfix log shows $runs"
expect_no_pf_log 'sender non-delivery notification'

step "the quarantine holds the discarded message, whole"
q=$(quarantined)
[[ -n $q && $(wc -l <<<"$q") -eq 1 && $(basename "$q") == spam-* ]] \
    || fail "expected one spam-* file in the quarantine, found: '$q'"
ends_with_original "$m" "$q"
passed
