#!/usr/bin/env bash
# 11-sendmail: pipescan behind real Sendmail, as a prog mailer. Debian's sendmail-bin conflicts
# with postfix, so the test unpacks the Debian packages (apt-get download + dpkg-deb -x) into a
# private directory and runs that Sendmail with its own .cf (sendmail.mc here) on a loopback port.
# Sendmail receives (MTA-RX) and hands example.com mail to pipescan; pipescan reinjects into the
# private Postfix instance (MTA-TX), which delivers to the Maildir.
source "$(dirname "$0")/../lib.sh"
fresh_start
use_config "$SCENARIO_DIR/pipescan.toml"

SM=$POSTFIX_STACK_DIR/sendmail
SM_LIB=$SM/root/usr/lib/x86_64-linux-gnu
SM_BIN=$SM/root/usr/libexec/sendmail/sendmail
# Sendmail qualifies the machine's host name before it reads its .cf; an unqualified name that
# neither /etc/hosts nor DNS can qualify ("vm" here, no DNS) costs a 60 s "sleeping for retry"
# at every start (each -bt, -bp, -q and the daemon). Each run therefore gets a UTS namespace of
# its own with a qualified host name (unshare, util-linux); /etc/hosts stays untouched.
sm() {
    # shellcheck disable=SC2016 # expanded by the inner bash
    LD_LIBRARY_PATH=$SM_LIB unshare --uts bash -c 'hostname mx-sendmail.test && exec "$@"' _ \
        "$SM_BIN" -C "$SM/sendmail.cf" "$@"
}
scenario_cleanup() {
    local pid
    pid=$(head -n1 "$SM/sendmail.pid" 2>/dev/null || true)
    if [[ -n $pid ]] && grep -q sendmail "/proc/$pid/cmdline" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
    fi
    rm -f "$SM/sendmail.pid"
}

step "unpack Sendmail 8.17 from Debian's packages into a private directory (no apt-get install)"
if [[ ! -x $SM_BIN ]]; then
    install -d "$SM/debs"
    # apt's download sandbox user must be able to write there
    if id -u _apt >/dev/null 2>&1; then chown _apt "$SM/debs"; fi
    # (stale package lists: one apt-get update, then a second try)
    (cd "$SM/debs" && apt-get download sendmail-bin sendmail-cf libwrap0 m4 >"$SM/download.log" 2>&1) \
        || { apt-get update >>"$SM/download.log" 2>&1 \
            && (cd "$SM/debs" && apt-get download sendmail-bin sendmail-cf libwrap0 m4 >>"$SM/download.log" 2>&1); } \
        || { cat "$SM/download.log" >&2; fail "apt-get download sendmail-bin sendmail-cf libwrap0 m4 failed (needs a Debian mirror)"; }
    for deb in "$SM"/debs/*.deb; do dpkg-deb -x "$deb" "$SM/root"; done
    chmod g-s "$SM_BIN" # not set-gid, so that LD_LIBRARY_PATH (libwrap) is honoured
fi
note "$(sm -d0.1 -bt </dev/null 2>/dev/null | head -n1)"

step "write its configuration from sendmail.mc with m4, start it on a free loopback port"
port=10026
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
install -d -m 700 "$SM/mqueue"
printf 'hosts files\naliases files\n' >"$SM/service.switch"
printf '127.0.0.1 localhost mx-sendmail.test\n' >"$SM/hosts"
: >"$SM/local-host-names"
: >"$SM/aliases"
: >"$SM/helpfile"
: >"$SM/statistics"
sed -e "s|@SM@|$SM|g" -e "s|@CF@|$SM/root/usr/share/sendmail/cf|g" -e "s|@PORT@|$port|g" \
    -e "s|@BIN@|$PIPESCAN_E2E_BIN|g" -e "s|@CONF@|$PIPESCAN_E2E_CONF|g" \
    "$SCENARIO_DIR/sendmail.mc" >"$SM/sendmail.mc"
"$SM/root/usr/bin/m4" "$SM/sendmail.mc" >"$SM/sendmail.cf" || fail "m4 could not build sendmail.cf"
out=$(sm -bt </dev/null 2>&1 | grep -v -e '^ADDRESS TEST MODE' -e '^Enter <ruleset>' -e '^> $' || true)
[[ -z $out ]] || fail "Sendmail does not like its configuration: $out"
route=$(printf '/parse bob@example.com\n' | sm -bt 2>&1 | grep '^mailer ' || true)
[[ $route == "mailer pipescan, host localhost, user bob@example.com" ]] || fail "routing: $route"
note "$route"
scenario_cleanup
sm -bd -q1h </dev/null 9>&- || fail "Sendmail did not start"
for ((i = 0; i < 50; i++)); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

step "GTUBE arrives at Sendmail (127.0.0.1:$port) for bob@example.com"
m=$(msg gtube <<MSG
From: Prize Office <promo@example.net>
To: bob@example.com
Subject: you have won
Date: @DATE@
Message-ID: <@ID@@example.net>

From the prize office: this line starts with "From " and must stay as it is.
$GTUBE
MSG
)
smtp_send "$port" promo@example.net bob@example.com "$m"
note "Sendmail: $QUEUE_ID"

step "pipescan runs as Sendmail's mailer with the whole address, tags it, Postfix delivers one copy"
delivered_once "$(mailbox bob)"
wait_ps_log 'Passed SPAM \{Relayed[,}].*<promo@example.net> -> <bob@example.com>'
expect_header "$DELIVERED" X-Spam-Flag YES
expect_header "$DELIVERED" Subject "***SPAM*** you have won"
expect_header_match "$DELIVERED" Received 'by mx-sendmail\.test \(8\.[0-9.]+/'
# Sendmail adds only its Received field; pipescan only its fields and the tag
sed '0,/^Subject: /s//Subject: ***SPAM*** /' "$m" >"$WORK/expected.eml"
ends_with_original "$WORK/expected.eml" "$DELIVERED"
# The copy came in through this instance's pickup, submitted by the pipescan user (not root:
# with F=S in the mailer it ran as root and went to the default instance instead).
expect_pf_log "pickup\[[0-9]+\]: [0-9A-F]+: uid=$(id -u pipescan) from=<promo@example.net>"
sm -bp 2>&1 | grep -q 'is empty' || fail "Sendmail's queue is not empty: $(sm -bp 2>&1)"

step "a bounce (null sender) arrives at Sendmail: pipescan gets -f '' and reinjects it with the null sender"
fresh_start
m=$(msg bounce <<'MSG'
From: Mail Delivery Subsystem <MAILER-DAEMON@example.net>
To: bob@example.com
Subject: Returned mail: see transcript for details
Date: @DATE@
Message-ID: <@ID@@example.net>

The original message was received at some point in the past.
MSG
)
smtp_send "$port" '<>' bob@example.com "$m"
delivered_once "$(mailbox bob)"
wait_ps_log 'Passed CLEAN \{Relayed\}, <> -> <bob@example.com>'
expect_header "$DELIVERED" Return-Path "<>"
expect_header "$DELIVERED" X-Virus-Scanned "pipescan at mx.test"
ends_with_original "$m" "$DELIVERED"

step "clamd goes down: pipescan exits 75 and Sendmail keeps the message in its queue"
fresh_start
use_config "$SCENARIO_DIR/pipescan-clamd-down.toml"
m=$(msg clean <<'MSG'
From: Alice <alice@example.net>
To: bob@example.com
Subject: minutes
Date: @DATE@
Message-ID: <@ID@@example.net>

The minutes of today's meeting.
MSG
)
smtp_send "$port" alice@example.net bob@example.com "$m"
for ((i = 0; i < 100; i++)); do
    sm -bp 2>&1 | grep -q 'Deferred' && break
    sleep 0.1
done
sm -bp 2>&1 | grep -q 'Deferred' || fail "Sendmail did not defer: $(sm -bp 2>&1)"
note "$(sm -bp 2>&1 | grep Deferred | sed 's/^ *//')"
wait_ps_log 'TempFailed \{75\}, <alice@example.net> -> <bob@example.com>'
[[ $(mail_count "$(mailbox bob)") -eq 0 ]] || fail "bob got the message although it was deferred"

step "clamd is back; a Sendmail queue run delivers it, exactly once"
use_config "$SCENARIO_DIR/pipescan.toml"
sm -q >/dev/null 2>&1 || fail "sendmail -q failed"
delivered_once "$(mailbox bob)"
expect_header "$DELIVERED" X-Virus-Scanned "pipescan at mx.test"
sm -bp 2>&1 | grep -q 'is empty' || fail "Sendmail's queue is not empty: $(sm -bp 2>&1)"
passed
