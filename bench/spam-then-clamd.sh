#!/bin/sh
# The shell glue a site writes when it extends pf-spamfilt with a virus scanner: spamc, then
# clamdscan on spamc's output, then sendmail -- one scanner after the other. Invoked as
# pf-spamfilt is (SENDER RECIPIENT...). SPAMC, CLAMDSCAN and SENDMAIL come from the environment.
SPAMC=${SPAMC:-/usr/bin/spamc}
CLAMDSCAN=${CLAMDSCAN:-"clamdscan --no-summary"}
SENDMAIL=${SENDMAIL:-/usr/sbin/sendmail}
sender=$1
shift
tmp=$(mktemp) || exit 75
trap 'rm -f "$tmp"' 0 1 2 3 15
if [ "$#" -eq 1 ]; then
  $SPAMC -u "$1"
else
  $SPAMC
fi > "$tmp" || exit 75
$CLAMDSCAN - < "$tmp" > /dev/null
case $? in
  0) ;;
  1) echo "5.7.0 message rejected: virus found"; exit 69 ;;
  *) exit 75 ;;
esac
$SENDMAIL -i -f "$sender" -- "$@" < "$tmp"
