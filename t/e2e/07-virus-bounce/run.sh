#!/usr/bin/env bash
# 07-virus-bounce: a bounce (null sender) that carries a virus -- the classic backscatter
# vector -- is discarded: nobody gets it, and no notification goes anywhere (a message from <>
# must never cause another one), so both the mailboxes and the queue stay empty. Then a bounce
# that carries spam, while the spam destiny is "bounce" and DSNs are not cut off by score: for
# any other sender that means a DSN (06-spam-lover-dsn), for <> a logged discard.
source "$(dirname "$0")/../lib.sh"
fresh_start
use_config "$SCENARIO_DIR/pipescan.toml"

step "a 'bounce' from <> arrives for dave, returning a 'message' with eicar.com attached"
m=$(msg bounce <<MSG
From: Mail Delivery System <MAILER-DAEMON@example.net>
To: dave@example.com
Subject: Undelivered Mail Returned to Sender
Date: @DATE@
Message-ID: <@ID@@example.net>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b-outer"

--b-outer
Content-Type: text/plain; charset=us-ascii

Your message could not be delivered.

--b-outer
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; nobody@example.net
Action: failed
Status: 5.1.1

--b-outer
Content-Type: multipart/mixed; boundary="b-inner"

--b-inner
Content-Type: text/plain; charset=us-ascii

please see the attached invoice
--b-inner
Content-Type: application/octet-stream; name="eicar.com"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="eicar.com"

$(eicar_base64)
--b-inner--

--b-outer--
MSG
)
smtp_send "$POSTFIX_SMTP_PORT" '<>' dave@example.com "$m"

step "pipescan finds the virus and discards the message (exit 0: Postfix counts it as done)"
wait_ps_log 'Blocked INFECTED \(Test\.EICAR-[A-Z]+\.UNOFFICIAL\) \{Discarded[,}].*<> -> <dave@example.com>'
expect_pf_log "$QUEUE_ID: from=<>, "
expect_pf_log "$QUEUE_ID: to=<dave@example.com>, relay=pipescan, .*status=sent"

step "the admin's copy is in the quarantine (the virus destiny quarantines before it discards)"
q=$(quarantined)
[[ $(wc -l <<<"$q") -eq 1 && $q == */virus-* ]] || fail "expected one virus-* file in the quarantine, found: '$q'"
grep -q 'eicar.com' "$q" || fail "the quarantined file $q is not the message"

step "nothing was delivered, nothing is queued, no notification was generated"
nothing_delivered
queue_empty || fail "the queue is not empty"
expect_no_pf_log 'sender non-delivery notification|postmaster non-delivery|delivery status notification'
expect_no_pf_log 'postfix/bounce\['
expect_no_pf_log 'pickup\[[0-9]+\]: '
runs=$(pipescan_runs)
[[ $runs -eq 1 ]] || fail "expected one pipescan run, the Postfix log shows $runs"

step "second act: the spam destiny is bounce; a 'bounce' from <> for dave carries GTUBE"
fresh_start
use_config "$SCENARIO_DIR/pipescan-spam-bounce.toml"
m=$(msg spam-bounce <<MSG
From: Mail Delivery System <MAILER-DAEMON@example.net>
To: dave@example.com
Subject: Undelivered Mail Returned to Sender
Date: @DATE@
Message-ID: <@ID@@example.net>

Your message could not be delivered. It said:

$GTUBE
MSG
)
smtp_send "$POSTFIX_SMTP_PORT" '<>' dave@example.com "$m"

step "pipescan blocks it, but turns the bounce into a discard: no DSN to <>, and exit 0 (not 69, or Postfix would bounce it)"
wait_ps_log 'Blocked SPAM \{(Bounced,)?Discarded[,}].*<> -> <dave@example.com>'
expect_pf_log "$QUEUE_ID: to=<dave@example.com>, relay=pipescan, .*status=sent"
expect_no_pf_log 'status=bounced'
nothing_delivered
queue_empty || fail "the queue is not empty"
expect_no_pf_log 'postfix/bounce\['
expect_no_pf_log 'pickup\[[0-9]+\]: '
passed
