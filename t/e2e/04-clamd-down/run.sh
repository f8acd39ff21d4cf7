#!/usr/bin/env bash
# 04-clamd-down: while clamd is unreachable, a message is not passed unchecked: pipescan exits 75
# and Postfix keeps it in the deferred queue with pipescan's 4.x.x reason. Once clamd is back,
# `postqueue -f` delivers it, exactly once.
source "$(dirname "$0")/../lib.sh"
fresh_start
use_config "$SCENARIO_DIR/pipescan.toml"

step "clamd is down (pipescan's only clamd server is a dead socket); alice writes to bob"
m=$(msg report <<'MSG'
From: Alice <alice@example.net>
To: Bob <bob@example.com>
Subject: quarterly report
Date: @DATE@
Message-ID: <@ID@@example.net>

Bob, the numbers are in. See you on Monday.
MSG
)
smtp_send "$POSTFIX_SMTP_PORT" alice@example.net bob@example.com "$m"
id=$QUEUE_ID

step "Postfix defers it: postqueue -p shows pipescan's reason, the log its 4.3.0; bob has nothing"
wait_deferred "$id" '^\((pipescan: )?virus scan failed, message kept for retry: clamd .*clamd-is-down\.sock'
note "postqueue -p: $(grep -A1 "^$id" <<<"$QUEUE_LISTING" | sed -n 2p)"
expect_pf_log "$id: to=<bob@example.com>, relay=pipescan, .*dsn=4\.3\.0, status=deferred \((pipescan: )?virus scan failed"
wait_ps_log 'TempFailed \{75\}, <alice@example.net> -> <bob@example.com>'
[[ $(mail_count "$(mailbox bob)") -eq 0 ]] || fail "bob got the message although it was deferred"

step "clamd is back (the config names the live server again); the admin flushes the queue"
use_config "$SCENARIO_DIR/pipescan-fixed.toml"
flush_queue

step "bob gets it exactly once, scanned, byte for byte; pipescan ran twice in all"
delivered_once "$(mailbox bob)"
expect_header "$DELIVERED" X-Virus-Scanned "pipescan at mx.test"
ends_with_original "$m" "$DELIVERED"
expect_pf_log "$id: to=<bob@example.com>, relay=pipescan, .*status=sent"
runs=$(pipescan_runs)
[[ $runs -eq 2 ]] || fail "expected two pipescan runs (deferred, then delivered), the log shows $runs"
wait_ps_log 'Passed CLEAN \{Relayed\}, <alice@example.net> -> <bob@example.com>'
passed
