#!/usr/bin/env python3
"""
A person who reads Ukrainian (issue 7).

1. The language is chosen the three ways Russian is: ?lang=uk (and the
   cookie it sets carries it to the next page), Accept-Language (uk-UA),
   and the picker on every page offers "Українська" linking to ?lang=uk.
2. Every page they see is Ukrainian: landing, codename, login, the inbox
   with the intake questions, error pages (not found, wrong codename).
3. Their codename is 7 words of the Ukrainian list (data/wordlist-uk.txt).
   Logging back in accepts it however it is typed: capitals (Є Ї І),
   tabs and no-break spaces, ї as і + combining diaeresis.
4. The caseworker sees the message tagged "lang": "uk", with the text exactly.
"""
import os
import re
import sys
import unicodedata

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (REPO, Browser, Person, Server, Staff, case_ids, check, json_strings, log,
                 main)


def po_msgs(lang):
    with open(os.path.join(REPO, "po", lang + ".po"), encoding="utf-8") as f:
        return dict(re.findall(r'msgid "(.*)"\nmsgstr "(.*)"', f.read()))


def html_lang(resp):
    m = re.search(r'<html lang="([^"]*)"', resp.text)
    return m.group(1) if m else None


def in_text(resp, msg):
    """True if the catalogue text msg is on the page (HTML-escaped as gen-pages does)."""
    esc = (msg.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
           .replace('"', "&quot;").replace("'", "&#39;"))
    return esc in resp.text


def test():
    uk, en = po_msgs("uk"), po_msgs("en")
    with open(os.path.join(REPO, "data", "wordlist-uk.txt"), encoding="utf-8") as f:
        uk_words = set(f.read().split())
    check(len(uk_words) == 7776, "the Ukrainian list has 7776 words", len(uk_words))

    srv = Server()
    srv.init()
    srv.start()
    alice = Staff("Alice")
    alice.run("init", "--server", srv.url, "--token", srv.token, "--name", "Alice")

    # 1. choosing the language
    b = Browser(srv.url)
    r = b.get("/")
    check(html_lang(r) == "en", "an English browser gets English", html_lang(r))
    check('href="?lang=uk"' in r.text and in_text(r, "Українська"),
          "the language picker offers Українська", r.text[:2000])
    r = b.get("/?lang=uk")
    check(html_lang(r) == "uk" and in_text(r, uk["landing.heading"]),
          "?lang=uk gives the Ukrainian landing page", r.text[:1500])
    r = b.get("/login")
    check(html_lang(r) == "uk" and in_text(r, uk["login.heading"]),
          "the language cookie keeps the next page Ukrainian", r.text[:1500])
    b2 = Browser(srv.url)
    r = b2.request("GET", "/", headers={"Accept-Language": "uk-UA,uk;q=0.9,en;q=0.5"})
    check(html_lang(r) == "uk", "Accept-Language uk-UA gives Ukrainian", html_lang(r))
    r = b2.request("GET", "/no-such-page", headers={"Accept-Language": "uk-UA"})
    check(r.status == 404 and in_text(r, uk["err.notfound.title"]),
          "the not-found page is Ukrainian", (r.status, r.text[:1000]))

    # 2-3. the journey in Ukrainian
    p = Person(srv, lang="uk")
    r = p.b.get("/new")
    check(in_text(r, uk["new.heading"]) and in_text(r, uk["new.warn.write"]),
          "the codename page is Ukrainian", r.text[:1500])
    p.new_codename()
    words = p.codename.split(" ")
    log("Ukrainian codename: %d words" % len(words))  # never the words themselves
    check(len(words) == 7 and all(w in uk_words for w in words),
          "the codename is 7 words of the Ukrainian list")
    r = p.inbox()
    for msgid in ("inbox.heading", "intake.heading", "intake.need.label", "intake.docs.label",
                  "intake.urgency.label", "compose.send", "nav.exit"):
        check(in_text(r, uk[msgid]), "the inbox shows %s in Ukrainian" % msgid, r.text[:3000])
    check(not in_text(r, en["intake.need.label"]), "no English question on the Ukrainian inbox")
    message = "Мені потрібна допомога з документами. Ґудзик, їжак, єнот — усе гаразд."
    r, _ = p.send(message)
    check(r.status == 200 and in_text(r, uk["inbox.sent"]),
          "the message is sent, and the thank-you is Ukrainian", (r.status, r.text[:1500]))

    # logging back in, typed every way a phone may type it
    r = p.login(codename=words[0] + " wrong " + " ".join(words[2:]))
    check(in_text(r, uk["login.error"]), "a wrong codename is refused in Ukrainian",
          r.text[:1500])
    typed = [
        p.codename.upper(),
        "\t " + "\u00a0".join(words) + "  ",
        unicodedata.normalize("NFD", p.codename),
        "  ".join(w.capitalize() for w in words),
    ]
    for i, t in enumerate(typed):
        r = p.login(codename=t)
        check(r.status == 200 and in_text(r, uk["inbox.heading"]),
              "log-in variant %d of the Ukrainian codename is accepted" % i, r.text[:1500])
    if any(c in p.codename for c in "їй"):
        check(unicodedata.normalize("NFD", p.codename) != p.codename,
              "the NFD variant really differs from what was shown")

    # 4. the caseworker
    alice.run("sync")
    cases = case_ids(alice.json("cases", "--json"))
    check(len(cases) == 1, "the caseworker sees one case", cases)
    shown = alice.json("show", cases[0], "--json")
    check(message in json_strings(shown), "the caseworker reads the Ukrainian text exactly")
    check('"lang": "uk"' in __import__("json").dumps(shown), "the message is tagged lang uk",
          str(shown)[:1500])
    srv.stop_clean()


if __name__ == "__main__":
    main(test)
