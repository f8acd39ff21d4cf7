#!/usr/bin/env bash
# 03-virus: an "invoice" with the EICAR test virus attached reaches the MX. bob never sees it;
# the message is in the quarantine, and the admin finds a notice in his Maildir naming the
# virus, the sender, bob and the quarantine id. The sender hears nothing (viruses fake senders).
source "$(dirname "$0")/../lib.sh"
fresh_start
use_config "$SCENARIO_DIR/pipescan.toml"

step "mallory@example.net sends bob an invoice with EICAR attached (as invoice.pdf, so it is not also a banned name)"
m=$(msg eicar <<MSG
From: Accounts <mallory@example.net>
To: Bob <bob@example.com>
Subject: invoice 4711
Date: @DATE@
Message-ID: <@ID@@example.net>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b-4711"

--b-4711
Content-Type: text/plain; charset=us-ascii

Please find invoice 4711 attached.

--b-4711
Content-Type: application/pdf; name="invoice-4711.pdf"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="invoice-4711.pdf"

$(eicar_base64)
--b-4711--
MSG
)
smtp_send "$POSTFIX_SMTP_PORT" mallory@example.net bob@example.com "$m"
id=$QUEUE_ID

step "pipescan finds the virus with the real clamd and blocks it (discard: exit 0, Postfix is done with it)"
wait_ps_log 'Blocked INFECTED \(Test\.EICAR-NDB\.UNOFFICIAL\) \{Discarded[,}].*<mallory@example.net> -> <bob@example.com>'
expect_pf_log "$id: to=<bob@example.com>, relay=pipescan, .*status=sent"

step "the quarantine holds exactly one file: the whole message, as it arrived"
q=$(quarantined)
[[ -n $q && $(wc -l <<<"$q") -eq 1 ]] || fail "expected one file in the quarantine, found: '$q'"
[[ $(basename "$q") == virus-* ]] || fail "the quarantine file is not named virus-*: $q"
qid=${q##*/virus-}
note "quarantine: $q"
grep -q 'invoice-4711.pdf' "$q" || fail "the quarantined file $q is not the message"
grep -qF "$(head -c 60 <<<"$(eicar_base64)")" "$q" || fail "the quarantined file has no attachment"
# The pipescan user wrote it; what the admin reads is the message itself
ends_with_original "$m" "$q"
lst=$("$PIPESCAN_E2E_BIN" quarantine list -c "$PIPESCAN_E2E_CONF" 2>&1) || fail "pipescan quarantine list failed: $lst"
grep -q "$qid" <<<"$lst" || fail "pipescan quarantine list does not show $qid: $lst"

step "the admin gets one notice, from <>, naming the virus, the sender, bob and the quarantine id"
delivered_once "$(mailbox admin)"
notice=$DELIVERED
expect_header_match "$notice" Return-Path '^<>$'
body=$(cat "$notice")
for want in Test.EICAR-NDB.UNOFFICIAL mallory@example.net bob@example.com "$qid"; do
    grep -qF -- "$want" <<<"$body" || fail "the admin's notice does not mention $want: $notice"
done
grep -qF 'invoice 4711' <<<"$body" || fail "the admin's notice does not carry the original header (Subject)"
# The notice has the original header only, never the virus itself
if grep -qF "$(head -c 60 <<<"$(eicar_base64)")" "$notice"; then
    fail "the admin's notice carries the infected attachment"
fi

step "bob got nothing, nor did the sender (no DSN for viruses); nothing is left in the queue"
[[ $(mail_count "$(mailbox bob)") -eq 0 ]] || fail "bob got the infected message"
[[ $(mail_count "$(outside_mailbox mallory)") -eq 0 ]] || fail "the sender got mail: $(mail_files "$(outside_mailbox mallory)")"
queue_empty || fail "the queue is not empty"
runs=$(pipescan_runs)
[[ $runs -eq 1 ]] || fail "expected one pipescan run (the notice goes through pickup, unfiltered), the log shows $runs"

step "the admin releases the quarantined copy to himself, as an attachment (pipescan release, via the instance's sendmail)"
out=$("$PIPESCAN_E2E_BIN" release "$qid" -c "$PIPESCAN_E2E_CONF" --to admin@example.com --format attach 2>&1) \
    || fail "pipescan release $qid failed: $out"
note "$out"
wait_mail "$(mailbox admin)" 2
settle
released=$(mail_files "$(mailbox admin)" | grep -vxF "$notice")
[[ $(wc -l <<<"$released") -eq 1 ]] || fail "expected one released copy for admin, found: $released"
grep -qF "$(head -c 60 <<<"$(eicar_base64)")" "$released" || fail "the released copy lacks the attachment: $released"
[[ $(mail_count "$(mailbox bob)") -eq 0 ]] || fail "the release went to bob too"
passed
