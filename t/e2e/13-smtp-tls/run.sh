#!/usr/bin/env bash
# 13-smtp-tls: [reinject] tls = "verify" towards a relay with STARTTLS. The stack's TLS return
# smtpd has a certificate for localhost signed by the stack's own CA: pipescan checks it and the
# name, and the copy goes over TLS. The same relay with a certificate for another name: the
# check fails, the message stays in the queue (75), nothing is delivered, never a fallback to
# plaintext. With tls = "may" (encryption without authentication) the wrong name is accepted,
# and a relay without STARTTLS gets plaintext.
source "$(dirname "$0")/../lib.sh"
[[ -n ${POSTFIX_TLS_PORT:-} && -n ${POSTFIX_TLS_WRONG_PORT:-} && -r ${POSTFIX_TLS_CA:-} ]] \
    || fail "POSTFIX_TLS_PORT / POSTFIX_TLS_WRONG_PORT / POSTFIX_TLS_CA not set: scripts/postfix-stack too old?"

tls_config() { # PORT LEVEL
    sed -e "s|@PORT@|$1|g" -e "s|@TLS@|$2|g" -e "s|@CA@|$POSTFIX_TLS_CA|g" \
        "$SCENARIO_DIR/pipescan.toml" >"$WORK/pipescan.toml"
    use_config "$WORK/pipescan.toml"
}

letter() { # NAME SUBJECT
    msg "$1" <<MSG
From: Alice <alice@example.net>
To: Bob <bob@example.com>
Subject: $2
Date: @DATE@
Message-ID: <@ID@@example.net>

Hi Bob,

this one travels over TLS or not at all.
.. a dot-stuffed line, for the encrypted DATA too

Alice
MSG
}

step "tls = verify, certificate for localhost from the stack's CA: delivered over TLS"
fresh_start
tls_config "$POSTFIX_TLS_PORT" verify
m=$(letter good "over TLS")
smtp_send "$POSTFIX_SMTP_PORT" alice@example.net bob@example.com "$m"
delivered_once "$(mailbox bob)"
ends_with_original "$m" "$DELIVERED"
expect_pf_log "postfix/tls/smtpd\\[[0-9]+\\]: Anonymous TLS connection established from localhost\\[127\\.0\\.0\\.1\\]: TLSv1\\.[23]"
expect_pf_log "$QUEUE_ID: to=<bob@example.com>, relay=pipescan, .*status=sent"
expect_header_match "$DELIVERED" Received 'by mx\.test \(Postfix\) with ESMTPS id '
expect_no_pf_log 'postfix/pickup\['

step "check-config --ping checks the relay's certificate before any mail is sent"
out=$("$PIPESCAN_E2E_BIN" check-config --ping -c "$PIPESCAN_E2E_CONF" 2>&1) \
    || fail "check-config --ping fails against the right certificate: $out"
grep -q "# ping reinject smtp localhost:$POSTFIX_TLS_PORT: answers, TLS, certificate verified" <<<"$out" \
    || fail "no verified TLS in check-config --ping: $out"
tls_config "$POSTFIX_TLS_WRONG_PORT" verify
rc=0
out=$("$PIPESCAN_E2E_BIN" check-config --ping -c "$PIPESCAN_E2E_CONF" 2>&1) || rc=$?
[[ $rc -eq 69 ]] || fail "check-config --ping against a wrong-name certificate: exit $rc, want 69: $out"
grep -q "# ping reinject smtp localhost:$POSTFIX_TLS_WRONG_PORT: WOULD NOT TAKE MAIL: TLS handshake failed: invalid peer certificate" <<<"$out" \
    || fail "check-config --ping does not name the certificate problem: $out"

step "tls = verify, certificate for wrong.example: 75, kept in the queue, nothing delivered"
fresh_start
tls_config "$POSTFIX_TLS_WRONG_PORT" verify
m=$(letter wrong "not for your eyes")
smtp_send "$POSTFIX_SMTP_PORT" alice@example.net bob@example.com "$m"
wait_deferred "$QUEUE_ID" 'certificate|NotValidForName'
note "$(grep -Eo 'SMTP server [^)]*' <<<"$QUEUE_LISTING" | head -n1 | cut -c1-160)"
wait_ps_log 'TempFailed.*certificate not valid for name "localhost"'
[[ $(mail_count "$(mailbox bob)") -eq 0 ]] || fail "bob got the message although the certificate check failed"
# The relay saw a handshake and no transaction: no queue id, no MAIL FROM in plaintext.
expect_no_pf_log "postfix/tls-wrong/smtpd\\[[0-9]+\\]: [0-9A-Za-z]+: client="
expect_pf_log "postfix/tls-wrong/smtpd\\[[0-9]+\\]: .*(SSL_accept error|alert|certificate unknown|bad certificate)"

step "the same relay with tls = may (encryption, no authentication): delivered"
tls_config "$POSTFIX_TLS_WRONG_PORT" may
flush_queue
delivered_once "$(mailbox bob)"
ends_with_original "$m" "$DELIVERED"
expect_pf_log "postfix/tls-wrong/smtpd\\[[0-9]+\\]: Anonymous TLS connection established from localhost"

step "tls = verify against the plain return smtpd (no STARTTLS): 75, never plaintext"
fresh_start
tls_config "$POSTFIX_RETURN_PORT" verify
m=$(letter plain "no TLS, no delivery")
smtp_send "$POSTFIX_SMTP_PORT" alice@example.net bob@example.com "$m"
wait_deferred "$QUEUE_ID" 'does not offer STARTTLS'
[[ $(mail_count "$(mailbox bob)") -eq 0 ]] || fail "bob got the message in plaintext"
expect_no_pf_log "postfix/return/smtpd\\[[0-9]+\\]: [0-9A-Za-z]+: client="

step "tls = may with that plain smtpd: no STARTTLS offered, so plaintext; delivered"
tls_config "$POSTFIX_RETURN_PORT" may
flush_queue
delivered_once "$(mailbox bob)"
ends_with_original "$m" "$DELIVERED"
expect_pf_log "postfix/return/smtpd\\[[0-9]+\\]: [0-9A-Za-z]+: client="
passed
