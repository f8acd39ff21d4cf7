#!/usr/bin/env bash
# 01-clean: a clean message from outside reaches bob exactly once, with pipescan's
# X-Virus-Scanned field on top and every byte of the original below it.
source "$(dirname "$0")/../lib.sh"
fresh_start
use_config "$SCENARIO_DIR/pipescan.toml"

step "alice@example.net sends bob a clean message over SMTP (inbound port $POSTFIX_SMTP_PORT)"
m=$(msg clean <<'MSG'
From: Alice <alice@example.net>
To: Bob <bob@example.com>
Subject: lunch on Friday
Date: @DATE@
Message-ID: <@ID@@example.net>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

Hi Bob,

shall we have lunch on Friday? The usual place, at noon.
.. this line starts with a dot: SMTP dot-stuffing must give it back unchanged
	a line with a leading tab   and trailing spaces   

Alice
MSG
)
smtp_send "$POSTFIX_SMTP_PORT" alice@example.net bob@example.com "$m"
note "queued as $QUEUE_ID"

step "Postfix runs pipescan once; pipescan passes it as CLEAN; virtual(8) delivers one copy"
delivered_once "$(mailbox bob)"
runs=$(pipescan_runs)
[[ $runs -eq 1 ]] || fail "expected one pipescan run, the Postfix log shows $runs"
expect_pf_log "$QUEUE_ID: to=<bob@example.com>, relay=pipescan, .*status=sent \(delivered via pipescan service"
wait_ps_log 'Passed CLEAN \{Relayed\}, <alice@example.net> -> <bob@example.com>'
# --queue-id ${queue_id} in master.cf: Postfix's queue id first, as on Postfix's own lines.
wait_ps_log "\\]: $QUEUE_ID: \\([0-9]+-01\\) Passed CLEAN \\{Relayed\\}, .*, mail_id: [A-Za-z0-9_-]{12}, "

step "bob's copy: X-Virus-Scanned, not flagged as spam, the original message byte for byte"
expect_header "$DELIVERED" X-Virus-Scanned "pipescan at mx.test"
expect_no_header "$DELIVERED" X-Spam-Flag
ends_with_original "$m" "$DELIVERED"
passed
