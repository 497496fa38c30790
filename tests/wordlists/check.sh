#!/bin/sh
# check.sh - verifies the codename word lists (data/wordlist-*.txt):
#   - exactly 7776 lines, all unique, sorted by code point, UTF-8, LF endings;
#   - only the list's letters (English a-z, Russian а-я without ё,
#     Ukrainian а-я without ё ъ ы э, plus є і ї ґ, no apostrophe);
#   - no word is a prefix of another;
#   - Russian and Ukrainian: no two words one typo apart (one letter
#     substituted, inserted or deleted, or two adjacent letters swapped);
#   - Ukrainian: no word starts with a blocked stem or holds a blocked root
#     (UK_BLOCKED_STEMS, UK_BLOCKED_INFIXES of scripts/make-wordlists: war,
#     weapons, prison, drugs, obscenities...);
#   - scripts/make-wordlists rebuilds the three files byte for byte from the
#     installed Debian packages (diceware, hunspell-ru, fortunes-ru,
#     mueller7-dict, mythes-ru, hunspell-uk, mythes-uk, manpages-uk,
#     tesseract-ocr, tesseract-ocr-ukr).
# Exit 0 when all hold, 1 otherwise (with the reason on stderr).
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0

python3 - "$root/data" "$root/scripts/make-wordlists" <<'PY' || status=1
import importlib.machinery, importlib.util, re, sys
ok = True
loader = importlib.machinery.SourceFileLoader("make_wordlists", sys.argv[2])
spec = importlib.util.spec_from_loader("make_wordlists", loader)
mw = importlib.util.module_from_spec(spec)
loader.exec_module(mw)


def typo_pairs(words):
    """Pairs one substitution, insertion, deletion or adjacent swap apart."""
    found, by_del = [], {}
    ws = set(words)
    for w in words:
        for i in range(len(w)):
            d = w[:i] + w[i + 1:]
            if d in ws:
                found.append((d, w))  # insertion / deletion
            by_del.setdefault((i, d), []).append(w)  # substitution at i
        for i in range(len(w) - 1):
            s = w[:i] + w[i + 1] + w[i] + w[i + 2:]
            if s != w and s in ws and w < s:
                found.append((w, s))
    for group in by_del.values():
        if len(group) > 1:
            found.append((group[0], group[1]))
    return found


for lang, letters in (("en", "a-z"), ("ru", "а-я"), ("uk", mw.UK_LETTERS)):
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
    if lang in ("ru", "uk"):
        tp = typo_pairs(words)
        if tp:
            print("%s: %d pairs one typo apart, e.g. %s ~ %s" % ((path, len(tp)) + tp[0]),
                  file=sys.stderr); ok = False
    if lang == "uk":
        if "ё" in letters or "ы" in letters or "'" in letters:
            print("UK_LETTERS is wrong", file=sys.stderr); ok = False
        blocked = [w for w in words if mw.uk_blocked(w)]
        if blocked:
            print("%s: %d words start with a blocked stem, e.g. %s" % (path, len(blocked), blocked[0]),
                  file=sys.stderr); ok = False
sys.exit(0 if ok else 1)
PY

if "$root/scripts/make-wordlists" --outdir "$tmp"; then
    for lang in en ru uk; do
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
