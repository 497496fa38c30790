"""
codename_kdf.py - a person's keys from their codename, in pure Python
(standard library only), as docs/codename.md "From codename to keys" says
byte by byte: Argon2id v1.3 (RFC 9106; p = 1, tag 64 bytes, no secret, no
AD), then lookup_id = BLAKE2b-256 keyed with the instance's lookup key over
k[0..32], sk = SHA-512(k[32..64])[0..32], pk = X25519(sk, 9).

Slow (a few seconds at the 8 MiB the tests use) but exact: self_check()
runs the first vector of docs/codename.md. A test that knows a person's
codename can thus know their secret key, and look for it in the server's
memory (tests/e2e/test_session_expiry.py).
"""
import hashlib
import struct

from lib import check, x25519_public

M64 = (1 << 64) - 1
M32 = 0xFFFFFFFF


def _blake2b_long(out_len, data):
    """H' of RFC 9106 3.3."""
    pre = struct.pack("<I", out_len)
    if out_len <= 64:
        return hashlib.blake2b(pre + data, digest_size=out_len).digest()
    r = (out_len + 31) // 32 - 2
    v = hashlib.blake2b(pre + data, digest_size=64).digest()
    out = [v[:32]]
    for _ in range(1, r):
        v = hashlib.blake2b(v, digest_size=64).digest()
        out.append(v[:32])
    out.append(hashlib.blake2b(v, digest_size=out_len - 32 * r).digest())
    return b"".join(out)


def _perm(v, i0, i1, i2, i3, i4, i5, i6, i7, i8, i9, i10, i11, i12, i13, i14, i15):
    """The BLAKE2 round without message (RFC 9106 3.6) on 16 words of v, in place."""
    def g(a, b, c, d):
        x, y = v[a], v[b]
        x = (x + y + 2 * (x & M32) * (y & M32)) & M64
        w = v[d] ^ x
        w = ((w >> 32) | (w << 32)) & M64
        z = v[c]
        z = (z + w + 2 * (z & M32) * (w & M32)) & M64
        y ^= z
        y = ((y >> 24) | (y << 40)) & M64
        x = (x + y + 2 * (x & M32) * (y & M32)) & M64
        w ^= x
        w = ((w >> 16) | (w << 48)) & M64
        z = (z + w + 2 * (z & M32) * (w & M32)) & M64
        y ^= z
        y = ((y >> 63) | (y << 1)) & M64
        v[a], v[b], v[c], v[d] = x, y, z, w
    g(i0, i4, i8, i12)
    g(i1, i5, i9, i13)
    g(i2, i6, i10, i14)
    g(i3, i7, i11, i15)
    g(i0, i5, i10, i15)
    g(i1, i6, i11, i12)
    g(i2, i7, i8, i13)
    g(i3, i4, i9, i14)


_ROWS = [tuple(range(16 * i, 16 * i + 16)) for i in range(8)]
_COLS = [tuple(j for k in range(8) for j in (2 * i + 16 * k, 2 * i + 16 * k + 1))
         for i in range(8)]


def _compress(x, y):
    """G(X, Y) of RFC 9106 3.5 on blocks of 128 words."""
    r = [a ^ b for a, b in zip(x, y)]
    q = list(r)
    for idx in _ROWS:
        _perm(q, *idx)
    for idx in _COLS:
        _perm(q, *idx)
    return [a ^ b for a, b in zip(q, r)]


def _words(b):
    return list(struct.unpack("<128Q", b))


def argon2id(password, salt, t, m_kib, tag_len=64):
    """Argon2id v1.3 with one lane."""
    h0 = hashlib.blake2b(
        struct.pack("<IIIIII", 1, tag_len, m_kib, t, 0x13, 2) +
        struct.pack("<I", len(password)) + password + struct.pack("<I", len(salt)) + salt +
        struct.pack("<I", 0) + struct.pack("<I", 0), digest_size=64).digest()
    q = (m_kib // 4) * 4  # m' with p = 1: the lane's length
    seg = q // 4
    mem = [None] * q
    mem[0] = _words(_blake2b_long(1024, h0 + struct.pack("<II", 0, 0)))
    mem[1] = _words(_blake2b_long(1024, h0 + struct.pack("<II", 1, 0)))
    zero = [0] * 128
    for p in range(t):
        for sl in range(4):
            indep = p == 0 and sl < 2
            addr = None
            counter = 0
            start = 2 if (p == 0 and sl == 0) else 0
            if indep:
                def next_addr(c):
                    z = [p, 0, sl, q, t, 2, c] + [0] * 121
                    return _compress(zero, _compress(zero, z))
                if start == 2:
                    counter += 1
                    addr = next_addr(counter)
            for i in range(start, seg):
                cur = sl * seg + i
                prev = cur - 1 if cur > 0 else q - 1
                if indep:
                    if i % 128 == 0:
                        counter += 1
                        addr = next_addr(counter)
                    rnd = addr[i % 128]
                else:
                    rnd = mem[prev][0]
                j1 = rnd & M32
                if p == 0:
                    area = (i - 1) if sl == 0 else (sl * seg + i - 1)
                    begin = 0
                else:
                    area = 3 * seg + i - 1
                    begin = ((sl + 1) * seg) % q if sl != 3 else 0
                x = (j1 * j1) >> 32
                rel = area - 1 - ((area * x) >> 32)
                ref = (begin + rel) % q
                nb = _compress(mem[prev], mem[ref])
                if p > 0:
                    nb = [a ^ b for a, b in zip(nb, mem[cur])]
                mem[cur] = nb
    return _blake2b_long(tag_len, struct.pack("<128Q", *mem[q - 1]))


def derive(codename, salt, lookup_key, opslimit, memlimit):
    """(lookup_id, pk, sk) of an already normalized codename (str)."""
    k = argon2id(codename.encode("utf-8"), bytes(salt), opslimit, memlimit // 1024)
    lookup_id = hashlib.blake2b(k[:32], digest_size=32, key=bytes(lookup_key)).digest()
    sk = hashlib.sha512(k[32:]).digest()[:32]
    return lookup_id, x25519_public(sk), sk


def instance_kdf(datadir):
    """(opslimit, memlimit, salt, lookup_key) of an instance's "instance.kdf"
    setting (srv_main.c), read from its database."""
    import lib  # the database on either backend
    con = lib.open_db(datadir, readonly=True)
    try:
        row = con.execute("SELECT value FROM settings WHERE key = 'instance.kdf'").fetchone()
    finally:
        con.close()
    v = bytes(row[0])
    check(len(v) == 65 and v[0] == 1, "instance.kdf is v1, 65 bytes", v[:2])
    ops, mem = struct.unpack(">QQ", v[1:17])
    return ops, mem, v[17:33], v[33:65]


def self_check():
    """docs/codename.md, first vector."""
    lid, pk, sk = derive("aged dramatize jinx myth pursuit splatter worrisome",
                         b"refuge-vector-01", bytes(range(32)), 1, 8388608)
    check(lid.hex() == "9b16212f2997609d395629d6df3496200264969a15edbe3b29975168a061da7f",
          "pure-python derivation: lookup_id of docs/codename.md's first vector", lid.hex())
    check(sk.hex() == "6f91bbd9367e24d958afaa25630479db61a5ef2ef96f9f3b5b771316313fc935",
          "pure-python derivation: sk of docs/codename.md's first vector", sk.hex())
    check(pk.hex() == "5f4159ad500833041295983540a36e6b4e73c05b735a31e5c3dd0853fd195e07",
          "pure-python derivation: pk of docs/codename.md's first vector", pk.hex())
