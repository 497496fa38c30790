#!/usr/bin/env python3
"""
The desk's file pages (issue 9): a file is decrypted on demand and streamed
to the browser, never written to disk by the desk; images are previewed as a
PNG the sandboxed child re-encoded; identifying metadata is warned of, and a
copy without it can be saved, the original untouched.

A person sends, in one message: a JPEG with GPS coordinates and a camera
serial number in its EXIF (built here as in test_media.py), a text file with
a hostile name (HTML, quotes, an RTL override, very long), an SVG with a
script named .jpg, an HTML page named .png, a PNG with a <script> in a tEXt
chunk, a PDF with JavaScript, and two random files of several envelope chunks.
Alice's desk:

- lists each file on the case page as a link to its file page;
- the photo's page warns of the location and the serial number (in English
  and Russian) and offers "save a copy without this metadata" (POST + CSRF:
  refused without the token);
- the download is byte-exact with what the person sent, streamed
  (Transfer-Encoding: chunked), application/octet-stream, attachment, nosniff,
  a sandboxing CSP; the stripped copy is the original less its EXIF APP1
  segment, byte for byte (no GPS, no serial); the original still warns;
- the preview is image/png, a PNG, with no byte of the metadata;
- the hostile name is escaped in the page and its Content-Disposition is
  printable ASCII with no quote, separator, CR/LF or RTL override;
- none of the hostile files is ever served inline or under its claimed type:
  every response carrying file bytes is application/octet-stream +
  attachment + nosniff + CSP "sandbox"; the SVG, HTML and PDF get no preview
  (their preview URL answers 422 text/plain, not their bytes); the PNG's
  preview has no trace of its script; no desk page contains a script element;
- a file of several chunks downloads byte-exact; one whose cached ciphertext
  is damaged near its end is cut (no final chunk: the browser marks the
  download failed) after its authenticated first chunks, and its page says
  it is damaged;
- after the downloads, the desk locked: no decrypted byte (the serial, the
  script canaries, the text file's content, slices of the random files) in
  the caseworker's home, the temporary directory or /dev/shm (canary scan,
  as test_media.py).
"""
import html
import http.client
import os
import re
import secrets
import sqlite3
import struct
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (Browser, Person, Server, Staff, cached_object, check, encodings, free_port, log,
                 main, sanitizer_report, search_tree, tempdir)
from test_desk import start_desk
from test_media import make_jpeg, make_pdf, png_chunk

FILE_CT = "application/octet-stream"


def make_script_png(canary):
    raw = b"".join(b"\x00" + bytes([x * 60 for x in range(4)]) for _ in range(4))
    return (b"\x89PNG\r\n\x1a\n" +
            png_chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 0, 0, 0, 0)) +
            png_chunk(b"tEXt", b"Comment\x00<script>alert('" + canary + b"')</script>") +
            png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b""))


def file_links(body, cid):
    """{name: seq} of the case page's file links."""
    out = {}
    for seq, name in re.findall(r'<a href="/case/%s/file/(\d+)\?lang=[a-z]+">([^<]*)</a>' % cid,
                                body):
        out[html.unescape(name)] = seq
    return out


def served_safely(resp, what):
    """A response carrying a file's bytes (or made from them)."""
    check(resp.header("x-content-type-options") == "nosniff", "%s: nosniff" % what)
    csp = resp.header("content-security-policy") or ""
    check("sandbox" in csp and "default-src 'none'" in csp and "script-src" not in csp,
          "%s: a sandboxing CSP with no script" % what, csp)
    check(resp.header("cache-control") == "no-store", "%s: no-store" % what)


def downloaded(resp, what):
    check(resp.status == 200, "%s answers 200, not %d" % (what, resp.status), resp.body[:300])
    served_safely(resp, what)
    check(resp.header("content-type") == FILE_CT,
          "%s is %s, never the claimed type" % (what, FILE_CT), resp.header("content-type"))
    cd = resp.header("content-disposition") or ""
    check(cd.startswith("attachment; filename=\""), "%s is an attachment" % what, cd)
    check(all(0x20 <= ord(c) < 0x7f for c in cd), "%s: the header is printable ASCII" % what, cd)
    return cd


def test():
    scan_tmp = tempdir("refuge-deskfiles-tmp-")
    os.environ["TMPDIR"] = scan_tmp
    srv = Server().init().start()
    alice = Staff("Alice")
    alice.env["TMPDIR"] = scan_tmp
    alice.run("init", "--server", srv.url, "--token", srv.token, "--name", "Alice")

    serial = secrets.token_hex(8)[:9].encode()
    icc = ("iccCanary" + secrets.token_hex(12)).encode()
    jpeg, app1 = make_jpeg(serial, icc)
    c_svg, c_html, c_png, c_pdf, c_txt = (("canary" + w + secrets.token_hex(8)).encode()
                                          for w in ("Svg", "Html", "Png", "Pdf", "Txt"))
    svg = (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)">'
           b"<script>alert('" + c_svg + b"')</script></svg>")
    page = b"<!DOCTYPE html><html><body><script>alert('" + c_html + b"')</script></body></html>"
    spng = make_script_png(c_png)
    pdf = (b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /OpenAction 2 0 R >>\nendobj\n"
           b"2 0 obj\n<< /S /JavaScript /JS (app.alert('" + c_pdf + b"')) >>\nendobj\n"
           b"trailer << /Root 1 0 R >>\n%%EOF\n")
    # a real PDF of 3 pages: an author (in #-escaped names, which only a real
    # PDF parser reads), JavaScript on open, a /Launch action on close, a URI
    # link action: previewed as pictures, nothing run or followed
    c_js = ("canaryJs" + secrets.token_hex(8)).encode()
    report = make_pdf(3, catalog_extra=(b"/OpenAction<</S/JavaScript/JS(app.alert('" + c_js +
                                        b"'))>>/AA<</WC<</S/Launch/F(/bin/sh)>>>>"),
                      info=b"/Au#74hor(Jane Roe)/Cr#65ationDate(D:20240102030405Z)")
    # hostile PDFs: a page tree claiming a million pages; a malformed xref
    many = make_pdf(2, count=1000000)
    broken = make_pdf(1)
    x = broken.index(b"xref")
    broken = broken[:x + 5] + b"9" * (len(broken) - x - 5 - 30) + broken[-30:]
    # the server keeps what follows the last path separator (pages_inbox.c)
    sent_name = ("..\\..\\x/../'><img src=x onerror=alert(2)><script>alert(1)<script> %0D%0A;"
                 "\u202egpj." + "A" * 150 + ".txt")
    hostile = sent_name.rsplit("/", 1)[1]
    check(len(hostile.encode()) <= 255, "the hostile name fits the file metadata")
    text = b"text file " + c_txt + b"\n"
    # several envelope chunks (64 KiB): one whole, one to damage in the cache
    big = os.urandom(5 * 65536 + 1234)
    tampered = os.urandom(5 * 65536 + 777)

    person = Person(srv)
    person.new_codename()
    resp, _ = person.send("my files", files=[
        ("flat.jpg", "image/jpeg", jpeg),
        (sent_name, "text/html", text),
        ("picture.jpg", "image/jpeg", svg),
        ("page.png", "image/png", page),
        ("script.png", "text/html", spng),
        ("letter.pdf", "application/pdf", pdf),
        ("report.pdf", "application/pdf", report),
        ("many.pdf", "application/pdf", many),
        ("broken.pdf", "application/pdf", broken),
        ("big.bin", "application/octet-stream", big),
        ("tampered.bin", "application/octet-stream", tampered)])
    check(resp.status == 200, "the person's files are sent", resp.text[:600])

    port = free_port()
    proc, url, out_path, err_path = start_desk(alice, port)
    base = "http://127.0.0.1:%d" % port
    b = Browser(base)
    r = b.get(url[len(base):])
    check(r.status == 200, "the desk opens with its link", r.text[:500])
    r = b.submit(r.page.form("/sync"))
    check("Synced" in r.text, "the desk syncs", r.text[:1000])
    cid = re.findall(r'href="/case/([a-z0-9]+)', r.text)[0]
    r = b.get("/case/" + cid)
    links = file_links(r.text, cid)
    check(len(links) == 11, "the case page links each of the eleven files",
          (links, r.text[-4000:]))
    check(hostile in links, "the hostile name is shown (escaped) as the link's text",
          list(links))
    check("<script" not in r.text.lower(), "no script element in the case page")

    # ---- the photo: warning, download, preview, stripped copy
    seq = links["flat.jpg"]
    fp = "/case/%s/file/%s" % (cid, seq)
    r = b.get(fp)
    check(r.status == 200, "the photo's file page answers", r.text[:800])
    check("identifying information" in r.text and "location (GPS coordinates)" in r.text and
          "camera or lens serial number" in r.text,
          "the page warns of the location and the serial number", r.text[-3000:])
    check("JPEG image" in r.text, "the type by content is shown")
    check(serial.decode() not in r.text, "the page never shows a metadata value")
    check('<img src="%s/preview.png"' % fp in r.text, "the page shows the preview")
    csp = r.header("content-security-policy") or ""
    check("img-src 'self'" in csp and "script-src" not in csp and "default-src 'none'" in csp,
          "the page's CSP allows images from the desk only, no script", csp)
    strip_form = r.page.form(fp + "/strip")
    check(strip_form is not None, "the page has the 'save a copy without this metadata' button")
    ru = b.get(fp + "?lang=ru")
    check("место (координаты GPS)" in ru.text and "Сохранить копию без этих данных" in ru.text,
          "the warning and the button in Russian", ru.text[-3000:])
    uk = b.get(fp + "?lang=uk")
    check("місце (координати GPS)" in uk.text, "the warning in Ukrainian")

    d = b.get(fp + "/download")
    cd = downloaded(d, "the photo's download")
    check(d.body == jpeg, "the download is byte-exact with what the person sent",
          (len(d.body), len(jpeg)))
    check((d.header("transfer-encoding") or "").lower() == "chunked",
          "the download is streamed (chunked), not buffered whole", d.headers)
    check(cd == "attachment; filename=\"flat.jpg\"; filename*=UTF-8''flat.jpg",
          "the photo's Content-Disposition", cd)

    pv = b.get(fp + "/preview.png")
    check(pv.status == 200 and pv.header("content-type") == "image/png",
          "the preview is image/png", (pv.status, pv.headers))
    served_safely(pv, "the preview")
    check(pv.body.startswith(b"\x89PNG\r\n\x1a\n") and serial not in pv.body and
          b"Exif" not in pv.body and icc not in pv.body,
          "the preview is a fresh PNG with none of the file's metadata")

    no_csrf = b.submit(strip_form, drop=("csrf",), follow=False)
    check(no_csrf.status == 403 and serial not in no_csrf.body and b"\xff\xd8" not in no_csrf.body,
          "the strip button without the CSRF token is refused", no_csrf.status)
    s = b.submit(strip_form, follow=False)
    cd = downloaded(s, "the stripped copy")
    check(s.body == jpeg.replace(app1, b""),
          "the stripped copy is the original less its EXIF APP1, byte for byte",
          (len(s.body), len(jpeg), len(app1)))
    check(serial not in s.body and b"Exif" not in s.body and b"\x88\x25" not in s.body,
          "the stripped copy has no GPS IFD and no serial")
    check("flat-clean.jpg" in cd, "the stripped copy is named as a copy", cd)
    r = b.get(fp)
    check("location (GPS coordinates)" in r.text, "the original still warns (evidence kept)")
    d2 = b.get(fp + "/download")
    check(d2.body == jpeg, "the original still downloads byte-exact after the strip")
    log("photo: warning (en, ru, uk), byte-exact streamed download, preview, stripped copy")

    # ---- the hostile name
    seq = links[hostile]
    fp = "/case/%s/file/%s" % (cid, seq)
    r = b.get(fp)
    check(r.status == 200, "the hostile name's page answers", r.text[:500])
    low = r.text.lower()
    check("<script" not in low and "<img src=x" not in low and "onerror=alert" not in low,
          "the hostile name is escaped in the page")
    check("&lt;script&gt;" in r.text, "the hostile name is shown as text")
    check("text/html" in r.text and "other (not an image or PDF)" in r.text,
          "the claimed type is shown as a claim, the type by content is 'other'")
    check("preview.png" not in r.text, "a text file is not previewed")
    d = b.get(fp + "/download")
    cd = downloaded(d, "the hostile name's download")
    check(d.body == text, "its bytes are the person's")
    fallback = cd.split('"')[1]
    check(re.fullmatch(r"[A-Za-z0-9._+() -]+", fallback) is not None,
          "the ASCII fallback name has only safe characters", fallback)
    check("%E2%80%AE" not in cd and "%0D" not in cd.upper().replace("%250D", "") and
          "/" not in cd and "\\" not in cd and "<" not in cd,
          "no RTL override, CR/LF, separator or markup in Content-Disposition", cd)
    check(len(cd) < 1200, "Content-Disposition stays bounded", len(cd))
    log("hostile name: escaped in the page, safe in Content-Disposition")

    # ---- hostile images and PDF
    for name, data, canary, kind in (("picture.jpg", svg, c_svg, "other"),
                                     ("page.png", page, c_html, "other"),
                                     ("script.png", spng, c_png, "png"),
                                     ("letter.pdf", pdf, c_pdf, "pdf")):
        fp = "/case/%s/file/%s" % (cid, links[name])
        r = b.get(fp)
        check(r.status == 200, "%s: the file page answers" % name, r.text[:500])
        check("<script" not in r.text.lower() and canary.decode() not in r.text,
              "%s: no script and none of the file's bytes in the page" % name)
        check(r.header("content-type") == "text/html; charset=utf-8",
              "%s: the page is the desk's own HTML" % name)
        d = b.get(fp + "/download")
        downloaded(d, "%s's download" % name)
        check(d.body == data, "%s: the download is byte-exact" % name)
        pv = b.get(fp + "/preview.png")
        if kind == "png":
            check("preview.png" in r.text, "%s: a real PNG is previewed" % name)
            check(pv.status == 200 and pv.header("content-type") == "image/png" and
                  canary not in pv.body and b"script" not in pv.body,
                  "%s: its preview is re-encoded, without the script" % name, pv.status)
            check("comments or text" in r.text, "%s: the text chunk is warned of" % name)
        elif kind == "pdf":
            # no page tree: poppler cannot draw it, the page says so
            check("No preview" in r.text and "preview.png" not in r.text,
                  "%s: no page to draw, 'no preview'" % name, r.text[-2000:])
            check(pv.status == 422 and pv.header("content-type").startswith("text/plain") and
                  canary not in pv.body,
                  "%s: the preview URL answers 422 text/plain, never the bytes" % name,
                  (pv.status, pv.headers, pv.body[:200]))
            served_safely(pv, "%s's refused preview" % name)
        else:
            check("preview.png" not in r.text, "%s: not previewed" % name)
            check(pv.status == 422 and pv.header("content-type").startswith("text/plain") and
                  canary not in pv.body,
                  "%s: the preview URL answers 422 text/plain, never the bytes" % name,
                  (pv.status, pv.headers, pv.body[:200]))
            served_safely(pv, "%s's refused preview" % name)
        if kind == "pdf":
            check("PDF document" in r.text, "%s: found to be a PDF" % name)
    for resp in b.history:
        ct = resp.header("content-type") or ""
        if any(c in resp.body for c in (c_svg, c_html, c_png, c_pdf, c_txt, serial)):
            check(ct == FILE_CT and
                  (resp.header("content-disposition") or "").startswith("attachment"),
                  "a response with a file's bytes is always an octet-stream attachment",
                  (resp.url, ct))
    log("hostile SVG, HTML, PNG and PDF: never inline, never under their claimed type")

    # ---- a real PDF: its pages previewed as pictures, its author warned of
    fp = "/case/%s/file/%s" % (cid, links["report.pdf"])
    r = b.get(fp)
    check(r.status == 200 and "PDF document" in r.text, "report.pdf: the page answers",
          r.text[:800])
    check('<img src="%s/preview.png?page=1"' % fp in r.text and "Page 1 of 3" in r.text,
          "report.pdf: page 1 of 3 is previewed", r.text[-3000:])
    check('href="%s?page=2&amp;lang=en" rel="next"' % fp in r.text and 'rel="prev"' not in r.text,
          "report.pdf: a link to the next page, none to a previous one")
    check("author's name" in html.unescape(r.text) and "date and time it was taken, created or changed" in r.text,
          "report.pdf: the author and date (#-escaped names) are warned of", r.text[-3000:])
    check(r.page.form(fp + "/strip") is None and "cannot remove metadata from a PDF" in r.text,
          "report.pdf: no strip button, and the page says why")
    check("<script" not in r.text.lower() and c_js.decode() not in r.text,
          "report.pdf: no script and none of its JavaScript in the page")
    for lang, author in (("ru", "имя автора"), ("uk", "ім'я автора")):
        t = b.get(fp + "?lang=" + lang)
        check(author in html.unescape(t.text), "report.pdf: the author warned of in %s" % lang)
    check("Страница 1 из 3" in b.get(fp + "?lang=ru").text, "the page count in Russian")
    check("Сторінка 1 з 3" in b.get(fp + "?lang=uk").text, "the page count in Ukrainian")
    for k in (1, 2, 3):
        pv = b.get(fp + "/preview.png?page=%d" % k)
        check(pv.status == 200 and pv.header("content-type") == "image/png" and
              pv.body.startswith(b"\x89PNG\r\n\x1a\n"),
              "report.pdf: page %d is a PNG" % k, (pv.status, pv.body[:100]))
        served_safely(pv, "report.pdf's page %d" % k)
        w, h = struct.unpack(">II", pv.body[16:24])
        check((w, h) == (1600, 800), "report.pdf: page %d drawn at 1600 x 800" % k, (w, h))
        check(c_js not in pv.body and b"Jane Roe" not in pv.body,
              "report.pdf: the picture carries none of the file's text")
    r3 = b.get(fp + "?page=3")
    check("Page 3 of 3" in r3.text and 'rel="next"' not in r3.text and
          'href="%s?page=2&amp;lang=en" rel="prev"' % fp in r3.text,
          "report.pdf: the last page links back, not on", r3.text[-2000:])
    for bad in ("4", "0", "21", "abc", "1e3", "-1", "99999999999999999999"):
        pv = b.get(fp + "/preview.png?page=" + bad)
        check(pv.status == 422 and pv.header("content-type").startswith("text/plain"),
              "report.pdf: preview of page %r is refused" % bad, pv.status)
    d = b.get(fp + "/download")
    downloaded(d, "report.pdf's download")
    check(d.body == report, "report.pdf: the download is byte-exact")
    log("real PDF: 3 pages previewed as PNGs, author warned of (en, ru, uk), no strip")

    # ---- hostile PDFs: the desk stays up, the page says what it can
    for name in ("many.pdf", "broken.pdf"):
        fp = "/case/%s/file/%s" % (cid, links[name])
        r = b.get(fp)
        check(r.status == 200 and "PDF document" in r.text, "%s: the page answers" % name,
              (r.status, r.text[:800]))
        check(("No preview" in r.text) != ("preview.png?page=1" in r.text),
              "%s: either a preview or 'no preview'" % name, r.text[-2000:])
        pv = b.get(fp + "/preview.png?page=1")
        check(pv.status in (200, 422), "%s: its preview answers 200 or 422" % name, pv.status)
        if pv.status == 200:
            check(pv.header("content-type") == "image/png", "%s: a PNG" % name)
        log("%s: %s" % (name, "previewed" if pv.status == 200 else "no preview"))
    check(b.get("/").status == 200, "the desk is still up after the hostile PDFs")

    # ---- a big file streams byte-exact; a damaged one is cut, never completed
    d = b.get("/case/%s/file/%s/download" % (cid, links["big.bin"]))
    downloaded(d, "a file of several chunks")
    check(d.body == big, "a file of several chunks downloads byte-exact", (len(d.body), len(big)))
    tseq = int(links["tampered.bin"])
    check(cached_object(alice, tseq, flip_at=300) is not None, "the damaged file is in the cache")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", "/case/%s/file/%d/download" % (cid, tseq), headers={
        "Cookie": "; ".join("%s=%s" % kv for kv in b.cookies.items())})
    resp = conn.getresponse()
    check(resp.status == 200, "the damaged file's download starts (its first chunks are good)")
    got, cut = b"", False
    try:
        while True:
            piece = resp.read(65536)
            if not piece:
                break
            got += piece
    except (http.client.IncompleteRead, ConnectionError) as e:
        cut = True
        if isinstance(e, http.client.IncompleteRead):
            got += e.partial
    conn.close()
    check(cut, "the damaged file's download is cut, not completed (%d bytes)" % len(got))
    check(len(got) >= 65536 and tampered.startswith(got) and len(got) < len(tampered),
          "what arrived before the cut is the file's authenticated beginning (streamed)",
          (len(got), len(tampered)))
    r = b.get("/case/%s/file/%d" % (cid, tseq))
    check(r.status == 500 and "damaged" in r.text, "the damaged file's page says so",
          (r.status, r.text[:600]))
    log("several chunks: streamed byte-exact; a damaged file: cut after its good chunks")

    # ---- what is not a file of this case
    for path in ("/case/%s/file/999999" % cid, "/case/%s/file/0" % cid,
                 "/case/%s/file/abc" % cid, "/case/%s/file/%s/other" % (cid, links["flat.jpg"]),
                 "/case/%s/file/1%%2f..%%2f2" % cid):
        check(b.get(path).status == 404, "%s is 404" % path)
    seqs = {int(v) for v in links.values()}
    msg_seq = min(seqs) - 1
    if msg_seq > 0:
        check(b.get("/case/%s/file/%d" % (cid, msg_seq)).status == 404,
              "a message's seq is not a file")

    # ---- lock, then the canary scan
    r = b.get("/")
    b.submit(r.page.form("/lock"), follow=False)
    rc = proc.wait(timeout=30)
    err = open(err_path, errors="replace").read()
    check(rc == 0, "the desk exits after Lock", err[-1500:])
    rep = sanitizer_report(err)
    check(rep is None, "no sanitizer report from the desk", rep)
    out = open(out_path, errors="replace").read()
    for c in (serial, c_svg, c_html, c_png, c_pdf, c_txt, c_js):
        check(c.decode() not in out + err, "the terminal shows no byte of the files")
    check("a download stopped: the file does not decrypt" in err,
          "the terminal says the damaged download stopped", err[-1500:])
    roots = [alice.home, scan_tmp]
    if os.path.isdir("/dev/shm"):
        roots.append("/dev/shm")
    needles = []
    for what, value in (("serial", serial), ("icc canary", icc), ("svg", c_svg),
                        ("html", c_html), ("png", c_png), ("pdf", c_pdf), ("text", c_txt)):
        for label, pat in encodings(value.decode()):
            needles.append((what, label, pat))
    needles.append(("big file", "raw", big[200000:200032]))
    needles.append(("damaged file", "raw", tampered[100000:100032]))
    hits, files, total = search_tree(roots, needles)
    log("canary scan: %d files, %d bytes" % (files, total))
    check(not hits, "no decrypted byte in the home, temp or shared-memory directories", hits[:10])
    srv.check_sanitizers()


if __name__ == "__main__":
    main(test)
