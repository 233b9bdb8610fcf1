#!/usr/bin/env python3
"""Writes the committed fuzz seeds under fuzz/seeds/<target>/ (see README.md).

Run once from anywhere; the output is deterministic (gzip mtime 0) and the
files are committed, so the fuzz runs need neither Python nor the shared
conformance directory:

    python3 fuzz/make_seeds.py [path/to/http1-responses.json]

The default vector file is ../shared/conformance/http1-responses.json next to
the checkout.
"""

import base64
import gzip
import json
import os
import shutil
import struct
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
SEEDS = os.path.join(HERE, "seeds")
VECTORS = os.path.join(HERE, "..", "..", "shared", "conformance", "http1-responses.json")

# Conformance cases (index into http1-responses.json) used as seeds: framing
# by length, chunked, until EOF, 1xx, 101, HEAD, lenient and must-fail heads.
HEAD_CASES = [0, 3, 7, 14, 15, 18, 21, 30, 31, 37, 39, 41, 46, 49, 60, 62]
EXCHANGE_CASES = [0, 1, 8, 11, 14, 15, 18, 26, 31, 42, 47, 59]

# Piece-size control bytes (see fuzz/src/lib.rs, Feed): 1-byte pieces,
# 2 then 52, 16 then 256, 4 then 120.
PIECES = [0x00, 0x31, 0xFF, 0x73]

HAND_MADE_HEADS = {
    "continue-then-200": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "obs-fold": b"HTTP/1.1 200 OK\r\nX-Long: a\r\n  folded\r\nContent-Length: 0\r\n\r\n",
    "bare-lf": b"HTTP/1.0 200 OK\nServer: x\n\nbody",
    "non-utf8-reason": b"HTTP/1.1 404 Nicht gef\xfcnden\r\nContent-Length: 0\r\n\r\n",
    "many-headers": b"HTTP/1.1 200 OK\r\n" + b"".join(b"H%d: %d\r\n" % (i, i) for i in range(12)) + b"\r\n",
    "leading-empty-lines": b"\r\n\r\n\nHTTP/1.1 204 No Content\r\n\r\n",
    # Valid so far, then an invalid header name, and no end of head: a parse
    # in pieces reports it only once the head ends (see h1_head.rs, `same`).
    "deferred-head-error": b"HTTP/1.1 200 OK\r\nBad Name: x\r\n",
    "early-hints-chunked": b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
}

CHUNKED_BODIES = {
    "simple": b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    "extensions": b"4;a=b\r\nwiki\r\n5 ; name = \"quo\\\"ted\" ; flag\r\npedia\r\n0;last\r\n\r\n",
    "trailers": b"3\r\nabc\r\n0\r\nExpires: never\r\nX-Checksum: 9b2\r\n\r\n",
    "next-response": b"1\r\nx\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
    "upper-hex-leading-zeros": b"000A\r\n0123456789\r\n00\r\n\r\n",
    "bare-lf-invalid": b"5\nhello\n0\n\n",
    "huge-size": b"ffffffffffffffff\r\nabc",
    "size-overflow": b"10000000000000000\r\n",
}

TEXT = b"The quick brown fox jumps over the lazy dog. " * 6 + b"\n"


def gzip_member(data, name=None, comment=None, extra=None, hcrc=False):
    """A gzip member (RFC 1952) with the chosen optional header fields."""
    flags = 0
    header = b""
    if extra is not None:
        flags |= 4
        header += struct.pack("<H", len(extra)) + extra
    if name is not None:
        flags |= 8
        header += name + b"\0"
    if comment is not None:
        flags |= 16
        header += comment + b"\0"
    if hcrc:
        flags |= 2
    fixed = bytes([0x1F, 0x8B, 8, flags, 0, 0, 0, 0, 0, 0xFF])
    head = fixed + header
    if hcrc:
        head += struct.pack("<H", zlib.crc32(head) & 0xFFFF)
    raw = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = raw.compress(data) + raw.flush()
    trailer = struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)
    return head + body + trailer


def raw_deflate(data, level=6):
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


# (coding bit, out-size index, pieces, body); coding 0 = gzip, 1 = deflate.
CONTENT = {
    "gzip-text": (0, 4, 0xFF, gzip.compress(TEXT, mtime=0)),
    "gzip-empty": (0, 3, 0x31, gzip.compress(b"", mtime=0)),
    "gzip-multi-member": (0, 2, 0x73, gzip.compress(b"first ", mtime=0) + gzip.compress(b"second", mtime=0)),
    "gzip-header-fields": (0, 0, 0x00, gzip_member(b"hello", name=b"a.txt", comment=b"c", extra=b"xy", hcrc=True)),
    "gzip-ratio": (0, 7, 0xFF, gzip.compress(b"\0" * 200000, mtime=0)),
    "gzip-truncated": (0, 3, 0x31, gzip.compress(TEXT, mtime=0)[:-5]),
    "zlib-text": (1, 4, 0xFF, zlib.compress(TEXT)),
    "zlib-stored": (1, 1, 0x31, zlib.compress(b"stored block", 0)),
    "zlib-empty": (1, 3, 0x00, zlib.compress(b"")),
    "raw-deflate-text": (1, 2, 0x73, raw_deflate(TEXT)),
    "raw-deflate-fixed": (1, 0, 0x00, raw_deflate(b"abcabcabcabc", 1)),
    "deflate-trailing-garbage": (1, 5, 0xFF, zlib.compress(b"hi") + b"junk"),
}


def ws_frame(b0, payload, mask=None):
    """A WebSocket frame (RFC 6455 §5.2): first byte b0, shortest length
    form, masked with the 4-byte key `mask` if given."""
    n = len(payload)
    mask_bit = 0x80 if mask else 0
    if n <= 125:
        head = bytes([b0, mask_bit | n])
    elif n <= 0xFFFF:
        head = bytes([b0, mask_bit | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, mask_bit | 127]) + struct.pack(">Q", n)
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        head += mask
    return head + payload


def ws_deflate(data, fresh=True, compressor=None):
    """A permessage-deflate payload (RFC 7692 §7.2.1): raw DEFLATE, sync
    flushed, the trailing 00 00 ff ff removed."""
    c = compressor or zlib.compressobj(6, zlib.DEFLATED, -15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


# ws_frame: raw frame headers (and a little payload), no control bytes.
WS_FRAMES = {
    "text-hello": ws_frame(0x81, b"Hello"),
    "masked-rfc6455": ws_frame(0x81, b"Hello", mask=b"\x37\xfa\x21\x3d"),
    "binary-126": ws_frame(0x82, bytes(126))[:8],
    "binary-65535": ws_frame(0x82, bytes(65535))[:8],
    "binary-65536": ws_frame(0x82, bytes(65536))[:12],
    "close-masked": ws_frame(0x88, b"\x03\xe8", mask=b"\x01\x02\x03\x04"),
    "continuation-no-fin": ws_frame(0x00, b"abc"),
    "non-minimal-16": b"\x82\x7e\x00\x05hello",
    "non-minimal-64": b"\x82\x7f\x00\x00\x00\x00\x00\x00\xff\xff",
    "length-top-bit": b"\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x00",
    "ping-too-long": b"\x89\x7e\x00\x7e",
    "fragmented-ping": b"\x09\x00",
    "unknown-opcode": b"\x83\x00",
    "rsv-bits": b"\xf1\x00",
}

EURO = "\u20ac".encode()
HELLO_DEFLATED = b"\xf2\x48\xcd\xc9\xc9\x07\x00"  # RFC 7692 §7.2.3.1
CHATTY = b"compress me, compress me, compress me " * 4
_shared = zlib.compressobj(6, zlib.DEFLATED, -15)
CHATTY_1 = ws_deflate(CHATTY, compressor=_shared)
CHATTY_2 = ws_deflate(CHATTY, compressor=_shared)  # refers back to message 1

# ws_read: (flags, pieces, server bytes). Flags: bit 0 deflate, bit 1 tight
# limits, bit 2 close first, bit 3 server_no_context_takeover, bits 4-6
# server_max_window_bits - 8 (see fuzz_targets/ws_read.rs).
WS_READ = {
    "messages-then-close": (0x00, 0x31, ws_frame(0x81, b"hello") + ws_frame(0x82, b"\x00\xff")
                            + ws_frame(0x89, b"ping") + ws_frame(0x8A, b"pong")
                            + ws_frame(0x88, b"\x03\xe8bye")),
    "fragments-with-ping": (0x00, 0x00, ws_frame(0x01, b"Hel") + ws_frame(0x89, b"p")
                            + ws_frame(0x00, b"") + ws_frame(0x80, b"lo")),
    "utf8-split-across-fragments": (0x00, 0x73, ws_frame(0x01, EURO[:1]) + ws_frame(0x00, EURO[1:2])
                                    + ws_frame(0x80, EURO[2:])),
    "invalid-utf8-first-fragment": (0x00, 0xFF, ws_frame(0x01, b"ok\xff") + ws_frame(0x80, b"more")),
    "close-no-status": (0x00, 0x00, ws_frame(0x88, b"")),
    "close-invalid-code": (0x00, 0x31, ws_frame(0x88, b"\x03\xed")),
    "close-bad-reason": (0x00, 0x31, ws_frame(0x88, b"\x03\xe8\xff")),
    "frame-after-close": (0x00, 0x73, ws_frame(0x88, b"\x03\xe8") + ws_frame(0x81, b"late")),
    "we-close-first": (0x04, 0x00, ws_frame(0x81, b"late") + ws_frame(0x89, b"")
                       + ws_frame(0x88, b"\x03\xe8")),
    "tight-limits-fragments": (0x02, 0x73, b"".join(ws_frame(0x02 if i == 0 else 0x00, bytes(60)) for i in range(5))
                               + ws_frame(0x80, b"")),
    "tight-limits-oversized-header": (0x02, 0x00, b"\x82\x7e\x01\x00"),
    "masked-server-frame": (0x00, 0x31, ws_frame(0x81, b"Hello", mask=b"\x37\xfa\x21\x3d")),
    "rsv1-without-deflate": (0x00, 0x00, ws_frame(0xC1, HELLO_DEFLATED)),
    "eof-mid-frame": (0x00, 0xFF, b"\x82\x7e\x01\x00" + bytes(100)),
    "deflate-hello": (0x01, 0x00, ws_frame(0xC1, HELLO_DEFLATED) + ws_frame(0x88, b"")),
    "deflate-context-takeover": (0x01 | 0x70, 0x31, ws_frame(0xC1, CHATTY_1) + ws_frame(0x89, b"")
                                 + ws_frame(0x42, CHATTY_2[:9]) + ws_frame(0x80, CHATTY_2[9:])),
    "deflate-no-context-takeover": (0x01 | 0x08 | 0x70, 0x73, ws_frame(0xC1, ws_deflate(CHATTY))
                                    + ws_frame(0xC1, ws_deflate(CHATTY))),
    "deflate-window-9": (0x01 | 0x10, 0xFF, ws_frame(0xC2, ws_deflate(bytes(range(256)) * 3))),
    "deflate-bomb-tight-limits": (0x03, 0x31, ws_frame(0xC2, ws_deflate(bytes(100000)))),
    "deflate-corrupt": (0x01, 0x00, ws_frame(0xC1, b"\xff\xff\xff\xff")),
    "deflate-invalid-utf8": (0x01, 0x31, ws_frame(0xC1, ws_deflate(b"ok\xc3"))),
    "deflate-rsv1-on-continuation": (0x01, 0x00, ws_frame(0x41, ws_deflate(b"ab")) + ws_frame(0xC0, b"")),
}

# ws_unmask: key (4 bytes), offset, split, payload.
WS_UNMASK = {
    "empty": b"\x37\xfa\x21\x3d\x00\x00",
    "rfc6455-hello": b"\x37\xfa\x21\x3d\x00\x02Hello",
    "offset-3-odd-length": b"\xde\xad\xbe\xef\x03\x11" + bytes(range(37)),
    "long-tail": b"\x01\x02\x03\x04\x05\xff" + bytes(range(256)) + bytes(range(45)),
}


def write(target, name, data):
    path = os.path.join(SEEDS, target, name)
    with open(path, "wb") as f:
        f.write(data)


def main():
    vectors_path = sys.argv[1] if len(sys.argv) > 1 else VECTORS
    with open(vectors_path) as f:
        vectors = json.load(f)
    for target in ["h1_head", "h1_chunked", "h1_exchange", "content_decode", "ws_frame", "ws_read", "ws_unmask"]:
        shutil.rmtree(os.path.join(SEEDS, target), ignore_errors=True)
        os.makedirs(os.path.join(SEEDS, target))

    def raw(i):
        return base64.b64decode(vectors[i]["raw_b64"])

    # h1_head: the raw bytes, no control bytes.
    for i in HEAD_CASES:
        write("h1_head", "conformance-%02d" % i, raw(i))
    for name, data in HAND_MADE_HEADS.items():
        write("h1_head", name, data)

    # h1_exchange: flags (bit 0 = HEAD), piece control, then the response.
    for n, i in enumerate(EXCHANGE_CASES):
        flags = 1 if vectors[i]["request_method"] == "HEAD" else 0
        write("h1_exchange", "conformance-%02d" % i, bytes([flags, PIECES[n % len(PIECES)]]) + raw(i))
    for n, (name, data) in enumerate(sorted(HAND_MADE_HEADS.items())):
        write("h1_exchange", name, bytes([0, PIECES[n % len(PIECES)]]) + data)
    write("h1_exchange", "head-with-length", bytes([1, 0x31]) + b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
    write("h1_exchange", "tight-limits-headers", bytes([2, 0xFF]) + HAND_MADE_HEADS["many-headers"])

    # h1_chunked: piece control, flags (bit 0 = tight limits), then the body.
    for n, (name, data) in enumerate(CHUNKED_BODIES.items()):
        write("h1_chunked", name, bytes([PIECES[n % len(PIECES)], 0]) + data)
    write("h1_chunked", "tight-limits-trailers", bytes([0x31, 1]) + CHUNKED_BODIES["trailers"])

    # content_decode: flags (bit 0 = deflate, bits 1-3 = output size), piece control, body.
    for name, (coding, out_size, pieces, data) in CONTENT.items():
        write("content_decode", name, bytes([coding | out_size << 1, pieces]) + data)

    # ws_frame: the bytes; ws_read: flags, piece control, the server's bytes;
    # ws_unmask: key, offset, split, payload.
    for name, data in WS_FRAMES.items():
        write("ws_frame", name, data)
    for name, (flags, pieces, data) in WS_READ.items():
        write("ws_read", name, bytes([flags, pieces]) + data)
    for name, data in WS_UNMASK.items():
        write("ws_unmask", name, data)


if __name__ == "__main__":
    main()
