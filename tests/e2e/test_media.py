#!/usr/bin/env python3
"""
A person sends a photo with GPS coordinates and a camera serial number in its
EXIF (a JPEG made here by hand: JFIF, EXIF APP1 with a GPS IFD, an ICC APP2,
one baseline scan), a PNG named .jpg and a PDF named .png. The caseworker:
  - `refuge files CASE --check` names each file's type by its content (the
    PNG named .jpg is a PNG, the PDF named .png a PDF) and warns of the GPS
    position and the serial number, writing nothing;
  - `refuge files CASE --strip --out DIR` writes a copy of the photo without
    EXIF, byte for byte the original less its APP1 segment, and of the PNG
    without its Author text; the PDF is not written (cannot be stripped);
  - a canary scan of the caseworker's home, the temporary directory the
    client ran with and the server's data finds no decrypted byte of the
    files there: the serial number nowhere at all, the bytes that the
    stripped copy keeps only in DIR.
"""
import os
import secrets
import struct
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (Person, Server, Staff, case_ids, check, encodings, log, main, search_tree,
                 tempdir)


def seg(marker, payload):
    return b"\xff" + bytes([marker]) + struct.pack(">H", len(payload) + 2) + payload


def exif_tiff(serial):
    """Big-endian TIFF: IFD0 {Make, ExifIFD, GPSInfo}, Exif IFD {BodySerialNumber},
    GPS IFD {VersionID, LatitudeRef, Latitude}. serial: 9 ASCII bytes."""
    def entry(tag, typ, count, val):
        return struct.pack(">HHII", tag, typ, count, val)
    t = b"MM\x00\x2a" + struct.pack(">I", 8)
    t += struct.pack(">H", 3) + entry(0x010F, 2, 6, 50) + entry(0x8769, 4, 1, 56) + \
        entry(0x8825, 4, 1, 84) + struct.pack(">I", 0)
    t += b"Canon\x00"                                               # 50
    t += struct.pack(">H", 1) + entry(0xA431, 2, 10, 74) + struct.pack(">I", 0)  # 56
    t += serial + b"\x00"                                           # 74
    t += struct.pack(">H", 3) + entry(0x0000, 1, 4, 0x02020000) + \
        entry(0x0001, 2, 2, 0x4E000000) + entry(0x0002, 5, 3, 126) + struct.pack(">I", 0)  # 84
    t += struct.pack(">6I", 50, 1, 27, 1, 1234, 100)                # 126
    assert len(t) == 150
    return t


def make_jpeg(serial, icc_canary):
    """A 16x16 grey baseline JPEG: one-code Huffman tables (DC category 0,
    AC end-of-block), four blocks of two zero bits each."""
    out = b"\xff\xd8"
    out += seg(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    app1 = seg(0xE1, b"Exif\x00\x00" + exif_tiff(serial))
    out += app1
    out += seg(0xE2, b"ICC_PROFILE\x00\x01\x01" + icc_canary)
    out += seg(0xDB, b"\x00" + b"\x01" * 64)
    out += seg(0xC0, b"\x08\x00\x10\x00\x10\x01\x01\x11\x00")
    counts = b"\x01" + b"\x00" * 15
    out += seg(0xC4, b"\x00" + counts + b"\x00")
    out += seg(0xC4, b"\x10" + counts + b"\x00")
    out += seg(0xDA, b"\x01\x01\x00\x00\x3f\x00")
    out += b"\x00"  # 4 blocks x (DC "0", EOB "0")
    out += b"\xff\xd9"
    return out, app1


def png_chunk(typ, data):
    return struct.pack(">I", len(data)) + typ + data + \
        struct.pack(">I", zlib.crc32(typ + data) & 0xFFFFFFFF)


def make_pdf(pages=1, catalog_extra=b"", info=None, count=None):
    """A valid PDF (true xref offsets) of `pages` pages of 200 x 100 points,
    each a black square and a line of Helvetica (not embedded: drawn with a
    system font). catalog_extra goes into the catalog (actions ...), info
    is the document information dictionary's body, count the page count the
    page tree claims (default: the truth)."""
    objs = [b"<</Type/Catalog/Pages 2 0 R" + catalog_extra + b">>"]
    kids = b" ".join(b"%d 0 R" % (5 + i) for i in range(pages))
    objs.append(b"<</Type/Pages/Kids[%s]/Count %d>>" % (kids, pages if count is None else count))
    content = b"0 0 0 rg 10 10 80 80 re f BT /F1 12 Tf 100 40 Td (Page) Tj ET\n"
    objs.append(b"<</Length %d>>stream\n" % len(content) + content + b"endstream")
    objs.append(b"<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>")
    for _ in range(pages):
        objs.append(b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 100]/Contents 3 0 R"
                    b"/Resources<</Font<</F1 4 0 R>>>>>>")
    if info is not None:
        objs.append(b"<<" + info + b">>")
    out, offs = b"%PDF-1.4\n", []
    for i, o in enumerate(objs):
        offs.append(len(out))
        out += b"%d 0 obj" % (i + 1) + o + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offs)
    out += b"trailer<</Size %d/Root 1 0 R" % (len(objs) + 1)
    if info is not None:
        out += b"/Info %d 0 R" % len(objs)
    return out + b">>\nstartxref\n%d\n%%%%EOF\n" % xref


def make_png(author):
    raw = b"".join(b"\x00" + bytes([x * 60 for x in range(4)]) for _ in range(4))
    return (b"\x89PNG\r\n\x1a\n" +
            png_chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 0, 0, 0, 0)) +
            png_chunk(b"tEXt", b"Author\x00" + author) +
            png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b""))


def blocks(text):
    """`--check` output: {name: [lines]} for each '#seq  name  (...)' block."""
    out, cur = {}, None
    for line in text.splitlines():
        if line.startswith("#"):
            parts = line.split("  ")
            cur = parts[1] if len(parts) > 1 else line
            out[cur] = [line]
        elif cur is not None and line.startswith("    "):
            out[cur].append(line.strip())
    return out


def test():
    scan_tmp = tempdir("refuge-media-tmp-")
    os.environ["TMPDIR"] = scan_tmp  # the server's temporary files land where we search
    srv = Server().init().start()
    alice = Staff("Alice")
    alice.env["TMPDIR"] = scan_tmp
    alice.run("init", "--server", srv.url, "--token", srv.token, "--name", "Alice")

    serial = secrets.token_hex(8)[:9].encode()
    icc = ("iccCanary" + secrets.token_hex(12)).encode()
    author = ("Author" + secrets.token_hex(10)).encode()
    jpeg, app1 = make_jpeg(serial, icc)
    png = make_png(author)
    pdf = (b"%PDF-1.4\n1 0 obj\n<< /Author (" + author + b") /Producer (x) >>\nendobj\n"
           b"trailer << /Info 1 0 R >>\n%%EOF\n")

    person = Person(srv)
    person.new_codename()
    resp, _ = person.send("photos of the flat", files=[
        ("flat.jpg", "image/jpeg", jpeg),
        ("scan.jpg", "image/jpeg", png),
        ("letter.png", "image/png", pdf)])
    check(resp.status == 200, "POST /send with three files answered %d" % resp.status,
          resp.text[:1000])
    alice.run("sync")
    ids = case_ids(alice.json("cases", "--json"))
    check(len(ids) == 1, "one case", ids)
    case = ids[0]

    p = alice.run("files", case, "--check")
    got = blocks(p.out)
    log("--check:\n" + p.out)
    check(set(got) == {"flat.jpg", "scan.jpg", "letter.png"}, "--check lists the three files",
          p.out)
    check("JPEG image" in got["flat.jpg"][0], "the photo is a JPEG", got["flat.jpg"])
    check("PNG image" in got["scan.jpg"][0], "scan.jpg is found to be a PNG (by content)",
          got["scan.jpg"])
    check("PDF document" in got["letter.png"][0], "letter.png is found to be a PDF",
          got["letter.png"])
    check("! location (GPS coordinates)" in got["flat.jpg"], "--check warns of the GPS position",
          got["flat.jpg"])
    check("! camera or lens serial number" in got["flat.jpg"],
          "--check warns of the serial number", got["flat.jpg"])
    check("! author's name" in got["scan.jpg"], "--check warns of the PNG's Author",
          got["scan.jpg"])
    check("! author's name" in got["letter.png"], "--check warns of the PDF's Author",
          got["letter.png"])
    # the labels in the caseworker's language (LANGUAGE, LC_ALL, LC_MESSAGES, LANG)
    for env, gps, auth in ((("LANG", "ru_RU.UTF-8"), "! место (координаты GPS)", "! имя автора"),
                           (("LC_ALL", "uk_UA.UTF-8"), "! місце (координати GPS)",
                            "! ім'я автора"),
                           (("LANGUAGE", "uk:ru"), "! місце (координати GPS)", "! ім'я автора"),
                           (("LANG", "C.UTF-8"), "! location (GPS coordinates)",
                            "! author's name")):
        saved = dict(alice.env)
        for k in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
            alice.env.pop(k, None)
        alice.env[env[0]] = env[1]
        q = alice.run("files", case, "--check")
        alice.env.clear()
        alice.env.update(saved)
        tr = blocks(q.out)
        check(gps in tr["flat.jpg"] and auth in tr["letter.png"],
              "--check's labels with %s=%s" % env, q.out)
    log("--check: labels in en, ru, uk by the environment")
    for secret in (serial, icc, author):
        check(secret.decode() not in p.out + p.err, "--check never prints a metadata value")
    usage = alice.run("files", case, "--check", "--out", scan_tmp, ok=False)
    check(usage.returncode == 2, "--check with --out is a usage error", usage.err)

    out = tempdir("refuge-stripped-")
    p = alice.run("files", case, "--strip", "--out", out)
    log("--strip:\n" + p.out)
    names = sorted(os.listdir(out))
    check(names == ["flat.jpg", "scan.jpg"], "--strip wrote the two images, not the PDF", names)
    check("not written" in p.out and "letter.png" in p.out, "--strip says the PDF was not written",
          p.out)
    with open(os.path.join(out, "flat.jpg"), "rb") as f:
        stripped = f.read()
    check(stripped == jpeg.replace(app1, b""),
          "the stripped photo is the original less its EXIF segment, byte for byte",
          (len(stripped), len(jpeg), len(app1)))
    with open(os.path.join(out, "scan.jpg"), "rb") as f:
        spng = f.read()
    check(author not in spng and b"IDAT" in spng, "the stripped PNG has no Author text")
    p = alice.run("files", case, "--check")
    check("! location (GPS coordinates)" in blocks(p.out)["flat.jpg"],
          "the original in the case still has its GPS (evidence kept)", p.out)

    # no decrypted byte anywhere but DIR
    roots = [alice.home, scan_tmp, srv.data]
    if os.path.isdir("/dev/shm"):
        roots.append("/dev/shm")
    needles = []
    for what, value in (("serial", serial), ("icc canary", icc), ("author", author)):
        for label, pat in encodings(value.decode()):
            needles.append((what, label, pat))
    hits, files, total = search_tree(roots, needles)
    log("canary scan: %d files, %d bytes" % (files, total))
    check(not hits, "no decrypted byte in the home, temp or data directories", hits[:10])
    hits, _, _ = search_tree([out], [n for n in needles if n[0] == "serial"])
    check(not hits, "the serial number is not in the stripped copies either", hits)
    hits, _, _ = search_tree([out], [n for n in needles if n[0] == "icc canary"])
    check(hits, "the bytes the stripped copy keeps are in DIR (the scan finds them)")
    srv.check_sanitizers()


if __name__ == "__main__":
    main(test)
