#!/bin/sh
# check.sh - verifies the codename word lists (data/wordlist-*.txt):
#   - exactly 7776 lines, all unique, sorted by code point, UTF-8, LF endings;
#   - only the list's letters (English a-z, Russian а-я without ё);
#   - no word is a prefix of another;
#   - scripts/make-wordlists rebuilds both files byte for byte from the
#     installed Debian packages (diceware, hunspell-ru, fortunes-ru,
#     mueller7-dict, mythes-ru).
# Exit 0 when all hold, 1 otherwise (with the reason on stderr).
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0

python3 - "$root/data" <<'PY' || status=1
import re, sys
ok = True
for lang, letters in (("en", "a-z"), ("ru", "а-я")):
    path = "%s/wordlist-%s.txt" % (sys.argv[1], lang)
    raw = open(path, "rb").read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        print("%s: not UTF-8" % path, file=sys.stderr); ok = False; continue
    if "\r" in text or not text.endswith("\n"):
        print("%s: want LF-terminated lines" % path, file=sys.stderr); ok = False
    words = text.rstrip("\n").split("\n")
    if len(words) != 7776 or len(set(words)) != 7776:
        print("%s: %d words, %d unique (want 7776)" % (path, len(words), len(set(words))),
              file=sys.stderr); ok = False
    if words != sorted(words):
        print("%s: not sorted by code point" % path, file=sys.stderr); ok = False
    bad = [w for w in words if not re.fullmatch("[" + letters + "]+", w)]
    if bad:
        print("%s: %d words with letters outside %s" % (path, len(bad), letters),
              file=sys.stderr); ok = False
    s = sorted(words)
    pre = [(a, b) for a, b in zip(s, s[1:]) if b.startswith(a)]
    if pre:
        print("%s: %d words are prefixes of others, e.g. %s < %s" % ((path, len(pre)) + pre[0]),
              file=sys.stderr); ok = False
sys.exit(0 if ok else 1)
PY

if "$root/scripts/make-wordlists" --outdir "$tmp"; then
    for lang in en ru; do
        if ! cmp -s "$tmp/wordlist-$lang.txt" "$root/data/wordlist-$lang.txt"; then
            echo "data/wordlist-$lang.txt differs from what scripts/make-wordlists builds" >&2
            status=1
        fi
    done
else
    echo "scripts/make-wordlists failed (are the Debian packages installed? scripts/deps.sh check)" >&2
    status=1
fi
[ $status -eq 0 ] && echo "wordlists: ok"
exit $status
