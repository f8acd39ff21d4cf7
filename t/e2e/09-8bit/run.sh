#!/usr/bin/env bash
# 09-8bit: 8-bit mail (BODY=8BITMIME, raw UTF-8 in the body and in header values) comes out of
# pipescan with every original byte intact; what pipescan adds is 7-bit, so it cannot turn a
# message into an SMTPUTF8 one. The messages carry "X-E2E-Hold: reinjected": the test instance
# holds pipescan's reinjected copy so that we can read its queue file before delivery.
source "$(dirname "$0")/../lib.sh"
fresh_start
use_config "$SCENARIO_DIR/pipescan.toml"

# through_pipescan FILE RCPT: send FILE as 8BITMIME, inspect the held reinjected copy, release it,
# wait for the one delivery. Sets FLAGS (SMTPUTF8 flags of the reinjected copy) and DELIVERED.
through_pipescan() {
    smtp_send_raw "$POSTFIX_SMTP_PORT" juergen@example.net "$2" "$1" BODY=8BITMIME
    wait_held
    FLAGS=$(smtputf8_flags "$HELD_ID")
    local env
    env=$(postcat -e -q "$HELD_ID" 2>&1)
    grep -q '^named_attribute: encoding=8bit$' <<<"$env" \
        || fail "the reinjected copy is not marked 8bit: $(grep encoding <<<"$env")"
    release_held "$HELD_ID"
    delivered_once "$(mailbox "${2%@*}")"
}

step "Jürgen sends bob an 8-bit body with ASCII header fields (BODY=8BITMIME, no SMTPUTF8)"
m=$(msg body8 <<'MSG'
From: juergen@example.net
To: bob@example.com
Subject: the menu for Friday
Date: @DATE@
Message-ID: <@ID@@example.net>
X-E2E-Hold: reinjected
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Grüße aus Köln! Zum Frühstück: Crème brûlée, Smørrebrød, 寿司 and ☕.
.
Latin-1 is not UTF-8, but the filter must not care: caf\xe9.
MSG
)
perl -pi -e 's/\\xe9/\xe9/' "$m" # a raw Latin-1 byte in the body
through_pipescan "$m" bob@example.com

step "the reinjected copy is not SMTPUTF8 (flags $FLAGS); bob's copy ends with the original bytes; pipescan's fields are 7-bit"
[[ $FLAGS == 0 ]] || fail "the reinjected copy has SMTPUTF8 flags $FLAGS, expected 0 (ASCII headers only)"
ends_with_original "$m" "$DELIVERED"
added_part "$m" "$DELIVERED" >"$WORK/added"
expect_7bit "$WORK/added"
expect_header "$DELIVERED" X-Virus-Scanned "pipescan at mx.test"

step "now with raw UTF-8 in the From display name and the Subject"
fresh_start
m=$(msg header8 <<'MSG'
From: Jürgen Groß <juergen@example.net>
To: Bob <bob@example.com>
Subject: Grüße aus Köln — Frühstück?
Date: @DATE@
Message-ID: <@ID@@example.net>
X-E2E-Hold: reinjected
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Schöne Grüße, naïve café ☕
MSG
)
through_pipescan "$m" bob@example.com
ends_with_original "$m" "$DELIVERED"
added_part "$m" "$DELIVERED" >"$WORK/added" # Postfix's fields and pipescan's
expect_7bit "$WORK/added"

step "its SMTPUTF8 flags ($FLAGS) are what Postfix's sendmail gives the original itself: pipescan adds none"
sendmail_send juergen@example.net bob@example.com "$m"
wait_held
direct=$(smtputf8_flags "$HELD_ID")
postsuper -d "$HELD_ID" >/dev/null 2>&1
[[ $FLAGS == "$direct" ]] || fail "reinjected copy: SMTPUTF8 flags $FLAGS; the original through sendmail: $direct"
if [[ $FLAGS != 0 ]]; then
    note "NOTE: the copy reinjected through sendmail(1) is flagged 'SMTPUTF8 requested' ($FLAGS) although the"
    note "client did not ask for SMTPUTF8: smtputf8_autodetect_classes = sendmail (Postfix's default)"
    note "flags sendmail submissions with UTF-8 header values. Such a copy cannot be relayed to a"
    note "non-SMTPUTF8 server. Filter hosts may prefer smtputf8_autodetect_classes = verify."
fi

step "GTUBE with a raw UTF-8 Subject: the tag goes in front, the UTF-8 bytes stay as they were"
fresh_start
m=$(msg spam8 <<MSG
From: Preisbüro <promo@example.net>
To: bob@example.com
Subject: Sie haben gewonnen — Glückwunsch!
Date: @DATE@
Message-ID: <@ID@@example.net>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Herzlichen Glückwunsch!
$GTUBE
MSG
)
smtp_send_raw "$POSTFIX_SMTP_PORT" promo@example.net bob@example.com "$m" BODY=8BITMIME
delivered_once "$(mailbox bob)"
expect_header "$DELIVERED" X-Spam-Flag YES
expect_header "$DELIVERED" Subject "***SPAM*** Sie haben gewonnen — Glückwunsch!"
sed '0,/^Subject: /s//Subject: ***SPAM*** /' "$m" >"$WORK/expected.eml"
ends_with_original "$WORK/expected.eml" "$DELIVERED"
added_part "$WORK/expected.eml" "$DELIVERED" >"$WORK/added"
expect_7bit "$WORK/added"
passed
