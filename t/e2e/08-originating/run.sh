#!/usr/bin/env bash
# 08-originating: mail submitted on this host goes through pipescan's ORIGINATING bank -- not
# scanned, but tagged -- exactly once, and pipescan's reinjected copy does not come back.
#
# How "locally submitted" is told apart from "reinjected by pipescan" (scripts/postfix-stack):
# pipescan reinjects with sendmail(1), which hands the copy to pickup(8). A content_filter on
# pickup would therefore catch every reinjected copy again: inbound mail would go through the
# ORIGINATING bank a second time and ORIGINATING mail would loop forever. Nothing in a pickup
# message tells the two apart reliably: the "Received: by ... (Postfix, from userid N)" field
# names the submitting uid, but a header_checks FILTER rule on it also fires on the copy that
# pipescan reinjects, because that copy still carries the original submitter's Received field
# further down. So pickup stays unfiltered (FILTER_README's advice), and local programs submit
# over SMTP to a listener of their own, 127.0.0.1:$POSTFIX_SUBMIT_PORT, whose smtpd has
# -o content_filter=pipescan-orig:dummy; pipescan-orig runs pipescan --policy ORIGINATING.
# (The alternative that also covers sendmail(1): two Postfix instances, pickup of the first
# filtered, pipescan reinjecting into the second with [reinject] command = sendmail -C DIR.)
source "$(dirname "$0")/../lib.sh"
fresh_start
use_config "$SCENARIO_DIR/pipescan.toml"
filter_uid=$(id -u pipescan)

gtube_from() { # NAME FROM TO
    msg "$1" <<MSG
From: $2
To: $3
Subject: newsletter draft
Date: @DATE@
Message-ID: <@ID@@example.com>

This draft quotes the spam test string, which must not matter for our own mail:
$GTUBE
MSG
}

step "carol's web application submits a message quoting GTUBE on the local submission port $POSTFIX_SUBMIT_PORT"
m=$(gtube_from local carol@example.com dave@example.com)
smtp_send "$POSTFIX_SUBMIT_PORT" carol@example.com dave@example.com "$m"
orig_id=$QUEUE_ID

step "dave gets exactly one copy: tagged as scanned, but not spam-checked (no X-Spam-* at all)"
delivered_once "$(mailbox dave)"
expect_header "$DELIVERED" X-Virus-Scanned "pipescan at mx.test"
expect_no_header_prefix "$DELIVERED" X-Spam-
expect_no_header "$DELIVERED" X-Pipescan-Alert
ends_with_original "$m" "$DELIVERED"

step "no loop: one pipescan run (pipescan-orig); the reinjected copy came through pickup and went straight to virtual(8)"
sleep 2 # a loop would have produced more runs by now (one round trip takes ~0.1 s)
runs=$(pipescan_runs)
[[ $runs -eq 1 ]] || fail "expected exactly one pipescan run, the Postfix log shows $runs"
expect_pf_log "$orig_id: to=<dave@example.com>, relay=pipescan-orig, .*status=sent"
reinjected=$(pf_log | sed -n "s/.*pickup\[[0-9]*\]: \([0-9A-F]*\): uid=$filter_uid from=<carol@example.com>.*/\1/p")
[[ $(wc -w <<<"$reinjected") -eq 1 ]] || fail "expected one copy reinjected by uid $filter_uid through pickup, found: '$reinjected'"
expect_pf_log "$reinjected: to=<dave@example.com>, relay=virtual, .*status=sent"
[[ $(count_ps_log 'Passed ') -eq 1 ]] || fail "pipescan logged $(count_ps_log 'Passed ') runs, expected 1"
[[ $(mail_count "$(mailbox dave)") -eq 1 ]] || fail "dave has $(mail_count "$(mailbox dave)") messages, expected 1"

step "for contrast, the same text from outside (inbound port $POSTFIX_SMTP_PORT) is scanned and tagged"
fresh_start
m=$(gtube_from outside promo@example.net dave@example.com)
smtp_send "$POSTFIX_SMTP_PORT" promo@example.net dave@example.com "$m"
delivered_once "$(mailbox dave)"
expect_header "$DELIVERED" X-Spam-Flag YES
expect_header "$DELIVERED" Subject "***SPAM*** newsletter draft"
expect_pf_log "$QUEUE_ID: to=<dave@example.com>, relay=pipescan, .*status=sent"

step "and sendmail(1) submissions take pickup, which is deliberately unfiltered: delivered once, pipescan not involved"
fresh_start
m=$(gtube_from sendmail carol@example.com dave@example.com)
sendmail_send carol@example.com dave@example.com "$m"
delivered_once "$(mailbox dave)"
expect_no_header "$DELIVERED" X-Virus-Scanned
runs=$(pipescan_runs)
[[ $runs -eq 0 ]] || fail "expected no pipescan run for a sendmail(1) submission, the log shows $runs"
ends_with_original "$m" "$DELIVERED"
passed
