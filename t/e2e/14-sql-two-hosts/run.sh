#!/usr/bin/env bash
# 14-sql-two-hosts: two MX hosts share amavisd's SQL schema in PostgreSQL, through PgBouncer
# (scripts/pg-stack). mallory sends bob a Windows program through mx1 (this instance's content
# filter): banned, discarded, kept in the SQL quarantine, logged in msgs/msgrcpt. On mx2 (a
# second configuration, as a second host would have) the admin lists the quarantine, sees the
# message, and releases it: bob gets it exactly once, byte for byte, and the database marks it
# released. bob's users row (lookups) makes him local there.
source "$(dirname "$0")/../lib.sh"
fresh_start
for v in PIPESCAN_PGBOUNCER_DSN PIPESCAN_PG_DSN PIPESCAN_PG_TEMPLATE; do
    [[ -n ${!v:-} ]] || fail "$v is not set: run scripts/test, or scripts/pg-stack up DIR && set -a && eval \"\$(scripts/pg-stack env DIR)\" && set +a (after cargo build)"
done
db=e2e_sql_$$
dsn_of() { sed -e 's/ dbname=[^ ]*//' <<<"$1" | sed -e "s/\$/ dbname=$2/"; }
admin_dsn=$(dsn_of "$PIPESCAN_PG_DSN" postgres)
psql -X -q -v ON_ERROR_STOP=1 -d "$admin_dsn" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d "$admin_dsn" -c "CREATE DATABASE $db TEMPLATE $PIPESCAN_PG_TEMPLATE" >/dev/null
trap 'psql -X -q -d "$admin_dsn" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; cleanup_work' EXIT
pg() { psql -X -q -tA -v ON_ERROR_STOP=1 -d "$(dsn_of "$PIPESCAN_PG_DSN" "$db")" -c "$1"; }
pg "INSERT INTO policy (id, policy_name) VALUES (1, 'default'); INSERT INTO users (priority, policy_id, email) VALUES (8, 1, 'bob@example.com')"
dsn=$(dsn_of "$PIPESCAN_PGBOUNCER_DSN" "$db")
sed -e "s|@PGDSN@|$dsn|" -e "s|@HOST@|mx1.test|" "$SCENARIO_DIR/pipescan.toml" >"$WORK/mx1.toml"
use_config "$WORK/mx1.toml"
sed -e "s|@PGDSN@|$dsn|" -e "s|@HOST@|mx2.test|" -e "s|@SPAMD@|$PIPESCAN_SPAMD|g" \
    -e "s|@CLAMD@|$PIPESCAN_CLAMD|g" -e "s|@SYSLOG@|$PIPESCAN_E2E_SYSLOG|g" \
    "$SCENARIO_DIR/pipescan.toml" >"$WORK/mx2.toml"
chmod 644 "$WORK/mx2.toml"
"$PIPESCAN_E2E_BIN" check-config --ping -c "$WORK/mx2.toml" >"$WORK/ping.out" 2>&1 \
    || fail "check-config --ping on mx2: $(grep -v '^[a-z_]* =\|^\[' "$WORK/ping.out" | tail -n 5)"
grep -q '^# ping sql .*tables present: users, policy, mailaddr, wblist, maddr, msgs, msgrcpt, quarantine' "$WORK/ping.out" \
    || fail "check-config --ping does not show the tables: $(grep '# ping' "$WORK/ping.out")"

step "mallory@example.net sends bob a Windows program through mx1"
m=$(msg banned <<MSG
From: Accounts <mallory@example.net>
To: Bob <bob@example.com>
Subject: invoice 4712
Date: @DATE@
Message-ID: <@ID@@example.net>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b-4712"

--b-4712
Content-Type: text/plain; charset=us-ascii

Please run the attached invoice.

--b-4712
Content-Type: application/octet-stream; name="invoice-4712.exe"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="invoice-4712.exe"

TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=
--b-4712--
MSG
)
smtp_send "$POSTFIX_SMTP_PORT" mallory@example.net bob@example.com "$m"

step "mx1 blocks it (banned: discarded) and keeps it in the SQL quarantine, nothing on disk"
wait_ps_log 'Blocked BANNED .*\{Discarded[,}].*<mallory@example.net> -> <bob@example.com>'
nothing_delivered
[[ -z $(quarantined) ]] || fail "a quarantine file on disk: $(quarantined)"
id=$(pg "SELECT convert_from(mail_id, 'UTF8') FROM msgs WHERE quar_type = 'Q'")
[[ $id =~ ^[A-Za-z0-9_-]{12}$ ]] || fail "no quarantined message in msgs: '$id'"
note "mail_id $id"
row=$(pg "SELECT m.host, m.content, r.ds, r.rs, r.is_local FROM msgs m JOIN msgrcpt r USING (partition_tag, mail_id) WHERE m.mail_id = '$id'::bytea")
[[ $row == "mx1.test|B|D| |Y" ]] || fail "msgs/msgrcpt say '$row', expected mx1.test|B|D| |Y"

step "on mx2 the admin lists the SQL quarantine and sees mallory's invoice"
lst=$("$PIPESCAN_E2E_BIN" quarantine list -c "$WORK/mx2.toml" 2>&1) || fail "quarantine list on mx2 failed: $lst"
grep -E "^$id .*BANNED .*<mallory@example.net> +invoice 4712" <<<"$lst" >/dev/null \
    || fail "quarantine list on mx2 does not show $id: $lst"

step "mx2 releases it: bob gets it exactly once, as it arrived, and the database marks it released"
out=$("$PIPESCAN_E2E_BIN" release "$id" -c "$WORK/mx2.toml" 2>&1) || fail "pipescan release $id on mx2 failed: $out"
note "$out"
delivered_once "$(mailbox bob)"
ends_with_original "$m" "$DELIVERED"
grep -qF 'invoice-4712.exe' "$DELIVERED" || fail "the released copy is not the message"
[[ $(pg "SELECT string_agg(rs, '') FROM msgrcpt WHERE mail_id = '$id'::bytea") == R ]] \
    || fail "msgrcpt.rs is not R after the release"
passed
