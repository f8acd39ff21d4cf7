#!/usr/bin/env bash
# 10-procmail: a user filters her own mail with pipescan from ~/.procmailrc.
#
# Route (scripts/postfix-stack): Postfix's local(8) delivers pipescan-e2e@localhost with
# mailbox_command = procmail -a "$EXTENSION" STATE_DIR/home/.procmailrc, as that user (the
# rcfile by path, where a real site lets procmail find ~/.procmailrc: the test user is shared by
# every instance on the machine); procmail pipes the message through `pipescan --stdout`
# (":0 fw") and files the result in STATE_DIR/home/Maildir/. The message is submitted with sendmail(1): pickup is unfiltered, so
# pipescan runs once, under procmail, and not also as Postfix's content filter. This is the
# setup of a site without a system-wide filter, where users opt in; local(8) turns procmail's
# exit 75 into a deferral.
source "$(dirname "$0")/../lib.sh"
fresh_start
use_config "$SCENARIO_DIR/pipescan.toml"
user=$POSTFIX_PROCMAIL_USER
rcpt=$user@localhost
box=$(procmail_mailbox)

step "$user puts pipescan into a .procmailrc"
sed -e "s|@BIN@|$PIPESCAN_E2E_BIN|g" -e "s|@CONF@|$PIPESCAN_E2E_CONF|g" \
    -e "s|@HOME@|$POSTFIX_PROCMAIL_HOME|g" "$SCENARIO_DIR/procmailrc" \
    >"$WORK/procmailrc"
install -o "$user" -g "$user" -m 644 "$WORK/procmailrc" "$POSTFIX_PROCMAIL_HOME/.procmailrc"

step "GTUBE arrives for $rcpt"
m=$(msg gtube <<MSG
From: Prize Office <promo@example.net>
To: $rcpt
Subject: you have won
Date: @DATE@
Message-ID: <@ID@@example.net>

$GTUBE
MSG
)
sendmail_send promo@example.net "$rcpt" "$m"

step "procmail files one copy in ~/Maildir, tagged by pipescan; the rest of the message is unchanged"
delivered_once "$box"
expect_header "$DELIVERED" X-Spam-Flag YES
expect_header "$DELIVERED" Subject "***SPAM*** you have won"
expect_header "$DELIVERED" X-Virus-Scanned "pipescan at mx.test"
# procmail itself ends a message that went through a ":0 fw" filter with one extra empty line
# (it does so with "| cat" as the filter too): expect that, and nothing else.
{ sed '0,/^Subject: /s//Subject: ***SPAM*** /' "$m"; printf '\n'; } >"$WORK/expected.eml"
ends_with_original "$WORK/expected.eml" "$DELIVERED"
expect_pf_log "to=<$rcpt>, .*relay=local, .*status=sent \(delivered to command: .*procmail"
wait_ps_log 'Passed SPAM'

step "clamd goes down; a clean message for $rcpt arrives"
fresh_start
use_config "$SCENARIO_DIR/pipescan-clamd-down.toml"
m=$(msg clean <<MSG
From: Alice <alice@example.net>
To: $rcpt
Subject: tea?
Date: @DATE@
Message-ID: <@ID@@example.net>

Tea at five?
MSG
)
sendmail_send alice@example.net "$rcpt" "$m"

step "pipescan exits 75, procmail's ':0 e' turns that into EXITCODE=75, Postfix defers; nothing is filed"
id=$(pf_log | sed -n 's/.*pickup\[[0-9]*\]: \([0-9A-F]*\): uid=0 from=<alice@example.net>.*/\1/p' | head -n1)
for ((i = 0; i < 100; i++)); do [[ -n $id ]] && break; sleep 0.1
    id=$(pf_log | sed -n 's/.*pickup\[[0-9]*\]: \([0-9A-F]*\): uid=0 from=<alice@example.net>.*/\1/p' | head -n1); done
[[ -n $id ]] || fail "the message was not picked up"
wait_deferred "$id" 'temporary failure'
expect_pf_log "$id: to=<$rcpt>, .*relay=local, .*status=deferred"
wait_ps_log 'TempFailed \{75\}'
[[ $(mail_count "$box") -eq 0 ]] || fail "procmail delivered the unfiltered message"

step "clamd is back; the admin flushes the queue: one copy, scanned"
use_config "$SCENARIO_DIR/pipescan.toml"
flush_queue
delivered_once "$box"
expect_header "$DELIVERED" X-Virus-Scanned "pipescan at mx.test"
{ cat "$m"; printf '\n'; } >"$WORK/expected-clean.eml"
ends_with_original "$WORK/expected-clean.eml" "$DELIVERED"
passed
