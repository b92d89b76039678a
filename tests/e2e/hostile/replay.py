#!/usr/bin/env python3
"""Replays messages written by mutate.py (--last or --dump) against a proxy, to find and
minimize an input that crashes it.

  replay.py FILE --target 127.0.0.1:5060 --pid PID [--from N] [--to N] [--delay SECONDS]

FILE holds records "=== udp" or "=== tcp <connection>", each followed by one message and a
newline. UDP messages are sent one datagram each; TCP messages of one connection number go over
one connection, in order (a message can depend on the one before it on a stream: a
Content-Length beyond its body swallows the next). After each record the proxy's process is
checked; when it has gone the script prints the record's index, writes the record (with the
earlier ones of its TCP connection) to FILE.crash and exits 1.
"""

import argparse
import os
import re
import socket
import sys
import time


def read_records(path):
    with open(path, "rb") as f:
        data = f.read()
    parts = re.split(rb"(?:^|\n)=== (udp|tcp \d+)\n", data)
    return [(parts[i].decode(), parts[i + 1]) for i in range(1, len(parts), 2)]


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("file")
    ap.add_argument("--target", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--from", dest="first", type=int, default=0)
    ap.add_argument("--to", dest="last", type=int, default=-1)
    ap.add_argument("--delay", type=float, default=0.02)
    args = ap.parse_args()
    host, port = args.target.rsplit(":", 1)
    addr = (host, int(port))
    records = read_records(args.file)
    end = len(records) if args.last < 0 else min(args.last + 1, len(records))
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    conns = {}  # connection number -> (socket, [messages sent on it])
    for i in range(args.first, end):
        where, msg = records[i]
        if where == "udp":
            udp.sendto(msg[:65507], addr)
            sent = [(where, msg)]
        else:
            if where not in conns:
                conns[where] = (socket.create_connection(addr, timeout=2), [])
            sock, history = conns[where]
            try:
                sock.sendall(msg)
            except OSError:
                pass
            history.append((where, msg))
            sent = history
        time.sleep(args.delay)
        if not alive(args.pid):
            with open(args.file + ".crash", "wb") as f:
                for w, m in sent:
                    f.write(b"=== " + w.encode() + b"\n" + m + b"\n")
            print("replay.py: the proxy died after record %d (%s); written to %s.crash"
                  % (i, where, args.file))
            sys.exit(1)
    print("replay.py: the proxy survived records %d..%d" % (args.first, end - 1))


if __name__ == "__main__":
    main()
