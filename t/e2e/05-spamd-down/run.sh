#!/usr/bin/env bash
# 05-spamd-down: while spamd is unreachable, mail still flows (spam checking fails open), but
# every copy says so in an X-Pipescan-Alert field, and pipescan logs a warning.
source "$(dirname "$0")/../lib.sh"
fresh_start
use_config "$SCENARIO_DIR/pipescan.toml"

step "spamd is down (pipescan's only spamd server is 127.0.0.1:1); even GTUBE comes in"
m=$(msg gtube <<MSG
From: Prize Office <promo@example.net>
To: carol@example.com
Subject: you have won
Date: @DATE@
Message-ID: <@ID@@example.net>

$GTUBE
MSG
)
smtp_send "$POSTFIX_SMTP_PORT" promo@example.net carol@example.com "$m"

step "carol gets it once, virus-scanned, not spam-checked, with an alert saying so"
delivered_once "$(mailbox carol)"
expect_header "$DELIVERED" X-Pipescan-Alert "not spam-checked: spam scanner unavailable"
expect_header "$DELIVERED" X-Virus-Scanned "pipescan at mx.test"
expect_no_header "$DELIVERED" X-Spam-Flag
ends_with_original "$m" "$DELIVERED"

step "pipescan logged the spamd failure and the pass"
wait_ps_log 'warning: [0-9A-Z]+: \([0-9]+-01\) spamd failed: .*127\.0\.0\.1:1'
wait_ps_log 'Passed .*<promo@example.net> -> <carol@example.com>'
expect_pf_log "$QUEUE_ID: to=<carol@example.com>, relay=pipescan, .*status=sent"
passed
