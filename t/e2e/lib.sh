# t/e2e/lib.sh -- helpers for pipescan's end-to-end scenarios (sourced by t/e2e/NN-*/run.sh).
#
# A scenario drives the private Postfix instance of scripts/postfix-stack, whose content filter is
# the pipescan binary copied into its state dir, and the real spamd and clamd of
# scripts/mailstack. It needs their environment:
#
#   scripts/mailstack up /tmp/ms                  # spamd + clamd
#   set -a; eval "$(scripts/mailstack env /tmp/ms)"; set +a
#   scripts/postfix-stack up /tmp/pf              # Postfix + pipescan (PIPESCAN_BIN=... to pick one)
#   set -a; eval "$(scripts/postfix-stack env /tmp/pf)"; set +a
#   t/e2e/01-clean/run.sh                         # one scenario; `cargo test --test e2e` runs all
#
# Scenarios run one at a time: each starts with an empty queue and empty mailboxes, and looks
# only at log lines written after its start.
#
# Conventions: `step` says what the story does next; every check that fails calls `fail`, which
# prints what was expected, the relevant log lines and the queue, and exits 1.

set -euo pipefail

PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
export PATH

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SCENARIO_DIR=$(cd "$(dirname "$0")" && pwd)
SCENARIO=$(basename "$SCENARIO_DIR")

for v in POSTFIX_STACK_DIR POSTFIX_CONFIG POSTFIX_SMTP_PORT POSTFIX_SUBMIT_PORT POSTFIX_MAILDIRS \
    POSTFIX_OUTSIDE_MAILDIRS \
    POSTFIX_LOG POSTFIX_PROCMAIL_HOME POSTFIX_PROCMAIL_USER PIPESCAN_E2E_BIN PIPESCAN_E2E_CONF \
    PIPESCAN_E2E_LOG PIPESCAN_E2E_SYSLOG PIPESCAN_E2E_QUARANTINE PIPESCAN_SPAMD PIPESCAN_CLAMD; do
    if [[ -z ${!v:-} ]]; then
        cat >&2 <<EOF
$SCENARIO: $v is not set. Start the stacks and load their environment first:
  scripts/mailstack up /tmp/ms && set -a && eval "\$(scripts/mailstack env /tmp/ms)" && set +a
  scripts/postfix-stack up /tmp/pf && set -a && eval "\$(scripts/postfix-stack env /tmp/pf)" && set +a
(or run them all with: cargo test --test e2e)
EOF
        exit 2
    fi
done

# MAIL_CONFIG selects the private instance for sendmail, postqueue and postsuper.
export MAIL_CONFIG=$POSTFIX_CONFIG
SPOOL=$(postconf -c "$POSTFIX_CONFIG" -h queue_directory)

WORK=$(mktemp -d "/tmp/e2e-$SCENARIO.XXXXXX")
chmod 755 "$WORK"
cleanup_work() {
    local rc=$?
    if declare -F scenario_cleanup >/dev/null; then scenario_cleanup || true; fi
    if [[ $rc -eq 0 && -z ${E2E_KEEP:-} ]]; then rm -rf "$WORK"; else echo "($SCENARIO: messages kept in $WORK)" >&2; fi
    return "$rc"
}
trap cleanup_work EXIT
# t/e2e.rs runs each scenario under timeout(1): let SIGTERM run the EXIT trap too (11-sendmail
# stops its Sendmail daemon there).
trap 'exit 143' TERM INT

# GTUBE and EICAR are assembled at run time so that this file is not itself a test spam or a
# test virus for whatever scans the repository.
GTUBE="XJS*C4JDBQADN1.NSBN3*2IDNEN*"'GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X'
EICAR_HEX=58354f2150254041505b345c505a58353428505e2937434329377d2445494341522d5354414e444152442d414e544956495255532d544553542d46494c452124482b482a
eicar_base64() { printf '%b' "$(printf '%s' "$EICAR_HEX" | sed 's/../\\x&/g')" | base64 -w 76; }

# ---------------------------------------------------------------- story telling

STEP=0
step() {
    STEP=$((STEP + 1))
    printf '%s [%d] %s\n' "$SCENARIO" "$STEP" "$*"
}

note() { printf '%s     %s\n' "$SCENARIO" "$*"; }

fail() {
    {
        printf '\nFAIL: %s, step %d: %s\n' "$SCENARIO" "$STEP" "$*"
        printf -- '--- Postfix log since the scenario started:\n'
        pf_log | tail -n 40
        printf -- '--- pipescan log since the scenario started:\n'
        ps_log | tail -n 20
        printf -- '--- queue:\n'
        postqueue -p 2>&1 | tail -n 20
    } >&2
    exit 1
}

# ---------------------------------------------------------------- set-up

# use_config FILE: install a scenario's pipescan.toml as the instance's configuration (read by
# every pipescan run: no reload needed). Placeholders: @SPAMD@ @CLAMD@ @SYSLOG@ @QUARANTINE@
# @POSTFIX_CONFIG@ @STATE@ @WORK@.
use_config() {
    local src=$1 tmp=$PIPESCAN_E2E_CONF.tmp
    [[ -r $src ]] || fail "no config $src"
    sed -e "s|@SPAMD@|$PIPESCAN_SPAMD|g" -e "s|@CLAMD@|$PIPESCAN_CLAMD|g" \
        -e "s|@SYSLOG@|$PIPESCAN_E2E_SYSLOG|g" -e "s|@STATE@|$POSTFIX_STACK_DIR|g" \
        -e "s|@QUARANTINE@|$PIPESCAN_E2E_QUARANTINE|g" -e "s|@POSTFIX_CONFIG@|$POSTFIX_CONFIG|g" \
        -e "s|@WORK@|$WORK|g" "$src" >"$tmp"
    chmod 644 "$tmp"
    local out
    out=$("$PIPESCAN_E2E_BIN" check-config -c "$tmp" 2>&1) || { printf '%s\n' "$out" >&2; fail "pipescan check-config rejects $src"; }
    mv -f "$tmp" "$PIPESCAN_E2E_CONF"
}

# fresh_start: empty queue, mailboxes and quarantine; remember where the logs are now.
fresh_start() {
    find "$PIPESCAN_E2E_QUARANTINE" -mindepth 1 -delete 2>/dev/null || true
    postsuper -d ALL >/dev/null 2>&1 || true
    find "$SPOOL/maildrop" -type f -delete 2>/dev/null || true
    find "$POSTFIX_MAILDIRS" "$POSTFIX_OUTSIDE_MAILDIRS" "$POSTFIX_PROCMAIL_HOME/Maildir" -type f \
        \( -path '*/new/*' -o -path '*/cur/*' -o -path '*/tmp/*' \) -delete 2>/dev/null || true
    PF_MARK=$(stat -c %s "$POSTFIX_LOG")
    PS_MARK=$(stat -c %s "$PIPESCAN_E2E_LOG")
    SCENARIO_STARTED=${SCENARIO_STARTED:-$(date +%s.%N)}
}

# ---------------------------------------------------------------- messages

# msg NAME: write stdin (a message with LF line endings) to $WORK/NAME.eml and print the path.
# "@ID@" becomes a Message-ID local part unique to this run, "@DATE@" the current date (a
# Date: in the future or past costs spam points).
MSG_SEQ=0
msg() {
    MSG_SEQ=$((MSG_SEQ + 1))
    local f=$WORK/$1.eml id
    id="$SCENARIO.$$.$MSG_SEQ.$(date +%s%N)"
    sed -e "s/@ID@/$id/g" -e "s/@DATE@/$(date -R)/g" >"$f"
    [[ $(tail -c1 "$f" | od -An -c | tr -d ' ') == '\n' ]] || fail "message $1 must end with a newline"
    printf '%s\n' "$f"
}

# ---------------------------------------------------------------- sending

# smtp_send PORT FROM TO[,TO...] FILE: submit FILE over SMTP with swaks (it sends CRLF line endings and
# adds the final dot; we append ".\n" so swaks does not add a stray blank line at the end).
# FROM may be '<>' for the null sender. Sets QUEUE_ID.
smtp_send() {
    local port=$1 from=$2 to=$3 file=$4 out
    out=$WORK/swaks.$MSG_SEQ.$RANDOM.log
    if ! { cat "$file"; printf '.\n'; } | swaks --server "127.0.0.1:$port" --from "$from" --to "$to" \
        --helo client.example.net --data - >"$out" 2>&1; then
        cat "$out" >&2
        fail "swaks could not submit $file to 127.0.0.1:$port"
    fi
    # Postfix: "250 2.0.0 Ok: queued as ID"; Sendmail: "250 2.0.0 ID Message accepted for delivery"
    QUEUE_ID=$(sed -n -e 's/.*250 2\.0\.0 Ok: queued as \([0-9A-Za-z]*\).*/\1/p' \
        -e 's/.*250 2\.0\.0 \([0-9A-Za-z]*\) Message accepted for delivery.*/\1/p' "$out" | tail -n1)
    [[ -n $QUEUE_ID ]] || { cat "$out" >&2; fail "no queue id in swaks' transcript"; }
}

# smtp_send_raw PORT FROM TO FILE [MAIL-PARAMS...]: a minimal SMTP client in bash, for what swaks
# cannot do (MAIL FROM parameters such as BODY=8BITMIME). Bytes are sent as they are, LF -> CRLF,
# with dot-stuffing. Sets QUEUE_ID.
smtp_send_raw() {
    local port=$1 from=$2 to=$3 file=$4
    shift 4
    local params=${*:+ $*} line
    exec 7<>"/dev/tcp/127.0.0.1/$port" || fail "cannot connect to 127.0.0.1:$port"
    smtp_expect() { # CODE
        local l
        while IFS= read -r -t 20 l <&7; do
            l=${l%$'\r'}
            [[ $l == "$1"-* ]] && continue
            [[ $l == "$1"* ]] && { SMTP_LAST=$l; return 0; }
            fail "SMTP: expected $1, got: $l"
        done
        fail "SMTP: no $1 reply within 20 s"
    }
    smtp_expect 220
    printf 'EHLO client.example.net\r\n' >&7
    smtp_expect 250
    printf 'MAIL FROM:<%s>%s\r\n' "$from" "$params" >&7
    smtp_expect 250
    printf 'RCPT TO:<%s>\r\n' "$to" >&7
    smtp_expect 250
    printf 'DATA\r\n' >&7
    smtp_expect 354
    while IFS= read -r line || [[ -n $line ]]; do
        [[ $line == .* ]] && line=.$line
        printf '%s\r\n' "$line"
    done <"$file" >&7
    printf '.\r\n' >&7
    smtp_expect 250
    QUEUE_ID=$(sed -n 's/.*queued as \([0-9A-Za-z]*\).*/\1/p' <<<"$SMTP_LAST")
    printf 'QUIT\r\n' >&7
    exec 7>&- 7<&-
    [[ -n $QUEUE_ID ]] || fail "no queue id in: $SMTP_LAST"
}

# sendmail_send FROM TO FILE: local submission with Postfix's sendmail (postdrop -> pickup).
sendmail_send() {
    sendmail -i -f "$1" -- "$2" <"$3" 2>&1 || fail "sendmail exited $?"
}

# ---------------------------------------------------------------- the queue

queue_empty() {
    [[ -z $(postqueue -j 2>/dev/null) ]] && [[ -z $(find "$SPOOL/maildrop" -type f 2>/dev/null) ]]
}

# settle [SECONDS]: wait until nothing is in the queue (or in the maildrop waiting for pickup).
settle() {
    local limit=${1:-30} i
    for ((i = 0; i < limit * 10; i++)); do
        queue_empty && return 0
        sleep 0.1
    done
    fail "the queue did not empty within $limit s"
}

flush_queue() { postqueue -f || fail "postqueue -f failed"; }

# wait_deferred QUEUE_ID REGEX [SECONDS]: QUEUE_ID sits in the deferred queue with a reason
# matching REGEX.
wait_deferred() {
    local id=$1 re=$2 limit=${3:-30} i listing
    for ((i = 0; i < limit * 10; i++)); do
        listing=$(postqueue -p 2>/dev/null || true)
        # "ID " is in the deferred queue; "ID*" would still be active, "ID!" on hold
        if grep -q "^$id " <<<"$listing" && grep -Eq -- "$re" <<<"$listing"; then
            QUEUE_LISTING=$listing
            return 0
        fi
        sleep 0.1
    done
    fail "message $id is not deferred with a reason matching /$re/"
}

# wait_held [SECONDS]: wait for one message on hold (the X-E2E-Hold test hook of
# scripts/postfix-stack holds pipescan's reinjected copy); sets HELD_ID.
wait_held() {
    local limit=${1:-30} i ids
    for ((i = 0; i < limit * 10; i++)); do
        ids=$(postqueue -p 2>/dev/null | sed -n 's/^\([0-9A-Za-z]*\)!.*/\1/p')
        if [[ -n $ids ]]; then
            [[ $(wc -w <<<"$ids") -eq 1 ]] || fail "expected one held message, found: $ids"
            HELD_ID=$ids
            return 0
        fi
        sleep 0.1
    done
    fail "no message was put on hold within $limit s"
}

# smtputf8_flags QUEUE_ID: Postfix's SMTPUTF8 flags of a queued message (the last number of the
# message_size record): 0 none; 1 requested; 2 UTF-8 in a header; 4 in the sender; 8 in a recipient.
smtputf8_flags() {
    postcat -e -q "$1" 2>/dev/null | awk '/^message_size:/ { print $NF }'
}

# release_held QUEUE_ID: off hold (it lands in the deferred queue) and delivered right away
release_held() {
    postsuper -H "$1" >/dev/null 2>&1 || fail "postsuper -H $1 failed"
    postqueue -i "$1" || fail "postqueue -i $1 failed"
}

# ---------------------------------------------------------------- mailboxes

# mailbox USER: the Maildir of USER@example.com (virtual(8))
mailbox() { printf '%s/%s\n' "$POSTFIX_MAILDIRS" "$1"; }
# outside_mailbox USER: the Maildir of USER@example.net, where the senders of the stories live
# (the instance delivers example.net locally too, so that DSNs and notices to them can be read)
outside_mailbox() { printf '%s/%s\n' "$POSTFIX_OUTSIDE_MAILDIRS" "$1"; }
# procmail_mailbox: where the procmail user's recipes deliver
procmail_mailbox() { printf '%s/Maildir\n' "$POSTFIX_PROCMAIL_HOME"; }

mail_files() { # MAILDIR
    { find "$1/new" "$1/cur" -type f 2>/dev/null || true; } | sort # (no Maildir yet: nothing)
}
mail_count() { mail_files "$1" | wc -l; }

# wait_mail MAILDIR N [SECONDS]: until MAILDIR holds at least N messages
wait_mail() {
    local dir=$1 n=$2 limit=${3:-30} i
    for ((i = 0; i < limit * 10; i++)); do
        (($(mail_count "$dir") >= n)) && return 0
        sleep 0.1
    done
    fail "$dir: expected $n message(s) within $limit s, found $(mail_count "$dir")"
}

# delivered_once MAILDIR: wait for the delivery, let the queue settle, then insist on exactly
# one message; sets DELIVERED to its path.
delivered_once() {
    wait_mail "$1" 1
    settle
    sleep 0.3 # a duplicate would arrive with the same ~60 ms latency
    local n
    n=$(mail_count "$1")
    [[ $n -eq 1 ]] || fail "$1: expected exactly one message, found $n"
    DELIVERED=$(mail_files "$1")
}

# nothing_delivered: no Maildir of the instance received anything (example.com, example.net, procmail)
nothing_delivered() {
    settle
    sleep 0.3
    local found
    found=$(find "$POSTFIX_MAILDIRS" "$POSTFIX_OUTSIDE_MAILDIRS" "$POSTFIX_PROCMAIL_HOME/Maildir" \
        -type f \( -path '*/new/*' -o -path '*/cur/*' \) 2>/dev/null || true)
    [[ -z $found ]] || fail "expected no delivery, found: $found"
}

# ---------------------------------------------------------------- message checks

# header FILE NAME: the unfolded values of every NAME field in FILE's header, one per line
header() {
    awk -v name="$2" '
        BEGIN { n = tolower(name) ":" }
        /^\r?$/ { flush(); exit }
        /^[ \t]/ { if (cur != "") cur = cur " " substr($0, match($0, /[^ \t]/)); next }
        { flush(); if (tolower(substr($0, 1, length(n))) == n) cur = substr($0, length(n) + 1); else cur = "" }
        function flush() { if (cur != "") { sub(/^[ \t]*/, "", cur); print cur }; cur = "" }
    ' "$1"
}

has_header() { [[ -n $(header "$1" "$2") ]]; }

expect_header() { # FILE NAME VALUE: exactly one NAME field, with this value
    local got
    got=$(header "$1" "$2")
    [[ $got == "$3" ]] || fail "$2: expected '$3', got '${got//$'\n'/ | }' in $1"
}

expect_header_match() { # FILE NAME ERE
    local got
    got=$(header "$1" "$2")
    grep -Eq -- "$3" <<<"$got" || fail "$2: expected /$3/, got '${got//$'\n'/ | }' in $1"
}

expect_no_header() { # FILE NAME
    ! has_header "$1" "$2" || fail "unexpected $2 field in $1: $(header "$1" "$2")"
}

# expect_no_header_prefix FILE PREFIX: no field whose name starts with PREFIX (e.g. X-Spam-)
expect_no_header_prefix() {
    local hit
    hit=$(sed -n '/^$/q; p' "$1" | grep -i "^$2" || true)
    [[ -z $hit ]] || fail "unexpected $2* field(s) in $1: $hit"
}

# ends_with_original SENT DELIVERED: the delivered file ends with every byte of the message as
# sent (Postfix and pipescan only prepend fields).
ends_with_original() {
    local sent=$1 got=$2 n
    n=$(stat -c %s "$sent")
    if ! tail -c "$n" "$got" | cmp -s - "$sent"; then
        diff <(cat -A "$sent") <(tail -c "$n" "$got" | cat -A) | head -n 20 >&2 || true
        fail "$got does not end with the $n bytes of $sent"
    fi
}

# added_part SENT DELIVERED: the bytes before the original message (Postfix's and pipescan's fields)
added_part() {
    local n m
    n=$(stat -c %s "$1")
    m=$(stat -c %s "$2")
    head -c $((m - n)) "$2"
}

# expect_7bit FILE: every byte is ASCII
expect_7bit() {
    if LC_ALL=C grep -qP '[^\x00-\x7f]' "$1"; then
        fail "non-ASCII bytes in $1: $(LC_ALL=C grep -nP '[^\x00-\x7f]' "$1" | head -n 3)"
    fi
}

quarantined() { find "$PIPESCAN_E2E_QUARANTINE" -type f | sort; }

# ---------------------------------------------------------------- logs

pf_log() { tail -c +$((PF_MARK + 1)) "$POSTFIX_LOG"; }
ps_log() { tail -c +$((PS_MARK + 1)) "$PIPESCAN_E2E_LOG"; }

# Postfix writes its log through postlogd, a moment after the fact (postqueue -p can show a
# deferral before the pipe line is in the log): positive checks poll, and counts and negative
# checks first wait until the log has been quiet for 0.3 s.
pf_log_quiet() {
    local i size last=-1 same=0
    for ((i = 0; i < 100; i++)); do
        size=$(stat -c %s "$POSTFIX_LOG")
        if [[ $size == "$last" ]]; then
            same=$((same + 1))
            ((same >= 3)) && return 0
        else
            same=0
        fi
        last=$size
        sleep 0.1
    done
}
expect_pf_log() {
    local i
    for ((i = 0; i < 100; i++)); do
        pf_log | grep -Eq -- "$1" && return 0
        sleep 0.1
    done
    fail "no Postfix log line matches /$1/ within 10 s"
}
expect_ps_log() { ps_log | grep -Eq -- "$1" || fail "no pipescan log line matches /$1/"; }
expect_no_pf_log() { pf_log_quiet; ! pf_log | grep -Eq -- "$1" || fail "unexpected Postfix log line: $(pf_log | grep -E -- "$1" | head -n 3)"; }
count_pf_log() { pf_log_quiet; pf_log | grep -Ec -- "$1" || true; }
count_ps_log() { ps_log | grep -Ec -- "$1" || true; }

# wait_ps_log ERE [SECONDS]: pipescan logs are written by the sink a moment after the run
wait_ps_log() {
    local limit=${2:-20} i
    for ((i = 0; i < limit * 10; i++)); do
        ps_log | grep -Eq -- "$1" && return 0
        sleep 0.1
    done
    fail "no pipescan log line matches /$1/ within $limit s"
}

# pipescan_runs: how many times Postfix ran a pipescan transport since the scenario started.
# pipe(8) logs one line per recipient of a run: the lines of one run share the delivery agent's
# pid, the queue id and the delay fields, so those identify a run.
pipescan_runs() {
    pf_log_quiet
    pf_log | sed -En 's/.* postfix\/pipe\[([0-9]+)\]: ([0-9A-Za-z]+): to=<[^>]*>, (orig_to=<[^>]*>, )?relay=pipescan(-orig)?, (delay=[^ ]+ delays=[^ ]+).*/\1 \2 \5/p' \
        | sort -u | wc -l
}

# passed: the scenario's last checks (nothing left in the queue, nothing strayed to an address
# no story uses: the catch-all Maildirs of both domains), then the PASS line.
passed() {
    settle
    local stray
    stray=$(mail_files "$(mailbox catchall)"; mail_files "$(outside_mailbox catchall)")
    [[ -z $stray ]] || fail "mail for an address no story uses (catch-all): $stray"
    awk -v a="$SCENARIO_STARTED" -v b="$(date +%s.%N)" -v s="$SCENARIO" \
        'BEGIN { printf "%s: PASS (%.1f s)\n", s, b - a }'
}
