#!/usr/bin/env python3
"""
Every catalogue is complete (issue 7).

The build (scripts/gen-pages) only warns when a text is left empty and shows
English instead; a person who chose Ukrainian or Russian must never meet an
English sentence. This test fails when, in any po/*.po:

- a message is untranslated or fuzzy, by gettext's own tools:
  `msgfmt --check --statistics` and `msgattrib --untranslated` /
  `msgattrib --only-fuzzy` (Debian's gettext);
- a msgid used by the person's pages is missing: every {{t:msgid}} of
  src/server/pages/*.html and every RF_MSGID("...") or "intake.*" literal
  of src/server/*.c (what gen-pages scans), plus every msgid of po/en.po;
- a catalogue has a msgid English does not have, or a {{v:name}}
  placeholder differs from the English text;
- a language is compiled in (LANGS of scripts/gen-pages) without a
  catalogue passed in src/server/meson.build and a picker link in
  layout.html, or a po/*.po file is not compiled in;
- the header lacks its Language or Plural-Forms (Ukrainian and Russian:
  three forms, one / few / many).

It then checks itself: a copy of po/uk.po with one message emptied, one
marked fuzzy and one deleted must be caught, each for its own reason.
"""
import glob
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import REPO, check, log, main, tempdir

PAGES = os.path.join(REPO, "src", "server", "pages")
SLAVIC_PLURALS = ("nplurals=3; plural=(n%10==1 && n%100!=11 ? 0 : n%10>=2 && n%10<=4 && "
                  "(n%100<10 || n%100>=20) ? 1 : 2);")
PLURALS = {"en": "nplurals=2; plural=(n != 1);", "ru": SLAVIC_PLURALS, "uk": SLAVIC_PLURALS}


def gettext_tool(name):
    exe = shutil.which(name)
    check(exe is not None, "%s is installed (Debian package gettext)" % name)
    return exe


def po_entries(path):
    """{msgid: msgstr} of a .po file (header dropped), read with msgcat's help:
    --no-wrap gives one line per string, so a simple parse is exact."""
    p = subprocess.run([gettext_tool("msgcat"), "--no-wrap", "--to-code=UTF-8", path],
                       capture_output=True, text=True)
    check(p.returncode == 0, "msgcat reads %s" % path, p.stderr)
    out, cur = {}, None
    for line in p.stdout.split("\n"):
        m = re.match(r'^msgid "(.*)"$', line)
        if m:
            cur = m.group(1)
            continue
        m = re.match(r'^msgstr "(.*)"$', line)
        if m and cur is not None:
            out[cur] = m.group(1).encode().decode("unicode_escape").encode("latin-1").decode()
            cur = None
    out.pop("", None)
    return out


def header(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    m = re.search(r'msgid ""\nmsgstr ""\n((?:".*"\n)+)', text)
    return "".join(re.findall(r'"(.*)"', m.group(1))).replace("\\n", "\n") if m else ""


def used_msgids():
    used = set()
    for path in glob.glob(os.path.join(PAGES, "*.html")):
        with open(path, encoding="utf-8") as f:
            used.update(re.findall(r"\{\{t:([a-z0-9_.]+)\}\}", f.read()))
    for path in glob.glob(os.path.join(REPO, "src", "server", "*.c")):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        used.update(re.findall(r'RF_MSGID\(\s*"([^"]+)"\s*\)', text))
        used.update(re.findall(r'"(intake\.[a-z0-9_.]+)"', text))
    return used


def placeholders(s):
    return sorted(re.findall(r"\{\{v:([a-z0-9_]+)\}\}", s))


def problems(path, lang, en, used):
    """Every reason the catalogue at path is not complete, as strings."""
    found = []
    p = subprocess.run([gettext_tool("msgfmt"), "--check", "--statistics", "-o", os.devnull,
                        path], capture_output=True, text=True)
    if p.returncode != 0:
        found.append("msgfmt --check refuses it: " + p.stderr.strip()[-400:])
    stats = p.stderr
    if re.search(r"\d+ (fuzzy|untranslated) (translation|message)", stats):
        found.append("msgfmt --statistics: " + stats.strip().splitlines()[-1])
    for flag in ("--untranslated", "--only-fuzzy"):
        q = subprocess.run([gettext_tool("msgattrib"), flag, "--no-wrap", path],
                           capture_output=True, text=True)
        ids = [i for i in re.findall(r'^msgid "(.*)"$', q.stdout, re.M) if i]
        if q.returncode != 0:
            found.append("msgattrib %s failed: %s" % (flag, q.stderr.strip()))
        elif ids:
            found.append("msgattrib %s lists %s" % (flag, ", ".join(ids)))
    cat = po_entries(path)
    for msgid in sorted(used | set(en)):
        if msgid not in cat:
            found.append("missing msgid %s" % msgid)
        elif cat[msgid] == "":
            found.append("empty text for %s" % msgid)
        elif msgid in en and placeholders(cat[msgid]) != placeholders(en[msgid]):
            found.append("placeholders of %s differ from English" % msgid)
    for msgid in sorted(set(cat) - set(en)):
        found.append("msgid %s is not in en.po" % msgid)
    h = header(path)
    if "Language: %s\n" % lang not in h:
        found.append("header: no 'Language: %s'" % lang)
    want = PLURALS.get(lang)
    if want and "Plural-Forms: %s\n" % want not in h:
        found.append("header: Plural-Forms is not '%s'" % want)
    if cat.get("meta.lang") != lang:
        found.append("meta.lang is %r, not %r" % (cat.get("meta.lang"), lang))
    return found


def compiled_langs():
    with open(os.path.join(REPO, "scripts", "gen-pages"), encoding="utf-8") as f:
        m = re.search(r"^LANGS = \[([^\]]*)\]", f.read(), re.M)
    check(m is not None, "scripts/gen-pages has a LANGS list")
    return re.findall(r'"([a-z]+)"', m.group(1))


def test():
    langs = compiled_langs()
    check(langs[:1] == ["en"] and "uk" in langs and "ru" in langs,
          "en, ru and uk are compiled in", langs)
    files = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(REPO, "po", "*.po")))
    check(files == sorted(langs), "one po/*.po per compiled language, no more", (files, langs))
    with open(os.path.join(REPO, "src", "server", "meson.build"), encoding="utf-8") as f:
        meson = f.read()
    with open(os.path.join(PAGES, "layout.html"), encoding="utf-8") as f:
        layout = f.read()
    used = used_msgids()
    check(len(used) > 50, "the pages use msgids", len(used))
    en = po_entries(os.path.join(REPO, "po", "en.po"))
    for lang in langs:
        check("'%s=' + (meson.project_source_root() / 'po/%s.po')" % (lang, lang) in meson,
              "src/server/meson.build passes po/%s.po to gen-pages" % lang)
        check('href="?lang=%s"' % lang in layout and "{{t:lang.%s}}" % lang in layout,
              "the language picker in layout.html offers %s" % lang)
        path = os.path.join(REPO, "po", lang + ".po")
        found = problems(path, lang, en, used)
        check(not found, "po/%s.po is complete" % lang, "\n    ".join(found))
        log("po/%s.po: %d messages, complete" % (lang, len(po_entries(path))))

    # The checker catches what it must: break a copy of po/uk.po three ways.
    tmp = tempdir("refuge-po-")
    with open(os.path.join(REPO, "po", "uk.po"), encoding="utf-8") as f:
        good = f.read()
    cases = {
        "untranslated": (good.replace('msgid "landing.heading"\nmsgstr "Конфіденційна допомога"',
                                      'msgid "landing.heading"\nmsgstr ""'),
                         "landing.heading"),
        "fuzzy": (good.replace('msgid "login.submit"', '#, fuzzy\nmsgid "login.submit"'),
                  "--only-fuzzy lists login.submit"),
        "missing": (re.sub(r'msgid "compose.send"\nmsgstr "[^"]*"\n', "", good),
                    "missing msgid compose.send"),
    }
    for name, (text, want) in cases.items():
        check(text != good, "the %s case changes the catalogue" % name)
        path = os.path.join(tmp, "uk.po")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        found = problems(path, "uk", en, used)
        check(any(want in x for x in found), "a %s message is caught" % name, found)
        log("%s message caught: %s" % (name, "; ".join(found)[:200]))


if __name__ == "__main__":
    main(test)
