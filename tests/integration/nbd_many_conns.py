#!/usr/bin/python3
"""Opens N connections at once to an NBD server on a Unix socket, each doing the fixed
newstyle handshake with the raw protocol (NBD_OPT_EXPORT_NAME, no zeroes) while all are
held open, then one 4 KiB READ and a DISC on each. Prints one line; exit 0 when every
connection got through, 1 otherwise. Bounded: every socket operation times out, and the
whole run stops after --seconds.
  nbd_many_conns.py SOCKET EXPORT [--connections N] [--seconds S]
"""
import argparse
import socket
import struct
import sys
import time

NBDMAGIC = 0x4E42444D41474943
IHAVEOPT = 0x49484156454F5054
REPLY_MAGIC = 0x67446698
REQUEST_MAGIC = 0x25609513
FLAG_FIXED_NEWSTYLE, FLAG_NO_ZEROES = 1, 2
OPT_EXPORT_NAME = 1
CMD_READ, CMD_DISC = 0, 2


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def handshake(s, export):
    magic, opt, flags = struct.unpack(">QQH", recv_exact(s, 18))
    if magic != NBDMAGIC or opt != IHAVEOPT or not flags & FLAG_FIXED_NEWSTYLE:
        raise ValueError(f"bad greeting {magic:x} {opt:x} {flags:x}")
    s.sendall(struct.pack(">I", FLAG_FIXED_NEWSTYLE | (flags & FLAG_NO_ZEROES)))
    name = export.encode()
    s.sendall(struct.pack(">QII", IHAVEOPT, OPT_EXPORT_NAME, len(name)) + name)
    size, _tflags = struct.unpack(">QH", recv_exact(s, 10))
    if not flags & FLAG_NO_ZEROES:
        recv_exact(s, 124)
    return size


def read_and_disconnect(s, handle):
    s.sendall(struct.pack(">IHHQQI", REQUEST_MAGIC, 0, CMD_READ, handle, 0, 4096))
    magic, err, got = struct.unpack(">IIQ", recv_exact(s, 16))
    if magic != REPLY_MAGIC or err != 0 or got != handle:
        raise ValueError(f"bad reply {magic:x} error {err} handle {got}")
    recv_exact(s, 4096)
    s.sendall(struct.pack(">IHHQQI", REQUEST_MAGIC, 0, CMD_DISC, handle + 1, 0, 0))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("socket")
    ap.add_argument("export")
    ap.add_argument("--connections", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=60)
    a = ap.parse_args()
    deadline = time.monotonic() + a.seconds
    socks, errors = [], []
    try:
        # All connected first, so that the server holds every one of them at once.
        for i in range(a.connections):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(max(0.1, min(20, deadline - time.monotonic())))
            s.connect(a.socket)
            socks.append(s)
        sizes = set()
        for i, s in enumerate(socks):
            try:
                s.settimeout(max(0.1, min(20, deadline - time.monotonic())))
                sizes.add(handshake(s, a.export))
            except Exception as e:  # noqa: BLE001 - reported, counted
                errors.append(f"handshake {i}: {e}")
        for i, s in enumerate(socks):
            try:
                s.settimeout(max(0.1, min(20, deadline - time.monotonic())))
                read_and_disconnect(s, 2 * i + 1)
            except Exception as e:  # noqa: BLE001
                errors.append(f"read {i}: {e}")
    except Exception as e:  # noqa: BLE001
        errors.append(f"connect {len(socks)}: {e}")
    finally:
        for s in socks:
            s.close()
    failed = {e.split(":")[0].split()[-1] for e in errors}
    ok = len(socks) - len(failed & {str(i) for i in range(len(socks))})
    print(f"{ok} of {a.connections} connections: handshake and a 4 KiB read"
          + (f"; errors: {errors[:5]}" if errors else ""))
    return 0 if not errors and len(socks) == a.connections else 1


if __name__ == "__main__":
    sys.exit(main())
