#!/usr/bin/env python3
"""Hostile traffic beside the valid load of bench/hostile, until SIGTERM (or --seconds).

At --rate messages per second in all, by kind (shares of the total):
  flood         0.40  valid-looking REGISTERs from ONE source address (--flood-source,
                      127.0.0.2): the per-source rate limiter's case
  malformed     0.30  REGISTERs and corpus messages mutated as in tests/e2e/hostile/mutate.py
  oversized     0.15  a 65,000-byte datagram, or a 100 KB message over TCP (above the 64 KiB
                      maximum message size)
  many_headers  0.15  datagrams of about 64 KB made of thousands of short header lines
Every kind but the flood comes from many source addresses (127.0.1.1-127.0.1.250, round
robin): broken phones each under the rate limit, so their messages reach the parser. At the end
one line: "hostile_load: sent N (flood F, malformed M, oversized O, many_headers H) in S s".
"""

import argparse
import os
import random
import signal
import socket
import sys
import time
from collections import Counter

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests",
                                "e2e", "hostile"))
import mutate  # noqa: E402  (tests/e2e/hostile/mutate.py)

KINDS = [("flood", 0.40), ("malformed", 0.30), ("oversized", 0.15), ("many_headers", 0.15)]


def register(user, via_host, via_port, branch, transport="UDP"):
    return ("REGISTER sip:example.org SIP/2.0\r\n"
            "Via: SIP/2.0/%s %s:%d;branch=z9hG4bK-%s;rport\r\n"
            "From: <sip:%s@example.org>;tag=%s\r\n"
            "To: <sip:%s@example.org>\r\n"
            "Call-ID: %s@hostile\r\n"
            "CSeq: 1 REGISTER\r\n"
            "Contact: <sip:%s@%s:%d;pn-provider=apns;pn-prid=0f3e9a7c41d2b8e6;"
            "pn-param=ABCD123456.org.example.phone.voip>\r\n"
            "Max-Forwards: 70\r\nExpires: 3600\r\nUser-Agent: hostile\r\n"
            "Content-Length: 0\r\n\r\n"
            % (transport, via_host, via_port, branch, user, branch, user, branch, user, via_host,
               via_port)).encode()


def with_header_lines(msg, lines, size):
    start, headers, body = mutate.split_message(msg)
    extra = []
    total = len(msg)
    i = 0
    while total < size:
        line = lines[i % len(lines)] % i if b"%d" in lines[i % len(lines)] else lines[i % len(lines)]
        extra.append(line)
        total += len(line) + 2
        i += 1
    return mutate.join_message(start, headers[:1] + extra + headers[1:], body)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--target", required=True, help="host:port of the proxy (UDP and TCP)")
    ap.add_argument("--rate", type=float, required=True, help="hostile messages per second")
    ap.add_argument("--seconds", type=float, default=3600)
    ap.add_argument("--seed", type=int, default=1313)
    ap.add_argument("--flood-source", default="127.0.0.2")
    ap.add_argument("--seeds", nargs="*", default=[], help="extra seed messages (files)")
    ap.add_argument("--only", default="", help="send only this kind (diagnosis)")
    args = ap.parse_args()
    host, port = args.target.rsplit(":", 1)
    addr = (host, int(port))
    rng = random.Random(args.seed)
    mutator = mutate.Mutator(rng)

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))

    def udp_from(ip):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setblocking(False)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        s.bind((ip, 0))
        return s

    flood = udp_from(args.flood_source)
    crowd = [udp_from("127.0.1.%d" % i) for i in range(1, 251)]
    seeds = []
    for path in args.seeds:
        with open(path, "rb") as f:
            seeds.append(f.read())
    sent = Counter()
    errors = 0
    kinds = [k for k, _ in KINDS if not args.only or k == args.only]
    weights = [w for k, w in KINDS if not args.only or k == args.only]
    t0 = time.monotonic()
    i = 0
    while not stop and time.monotonic() - t0 < args.seconds:
        kind = rng.choices(kinds, weights)[0]
        token = "%x%x" % (i, rng.getrandbits(32))
        sock = crowd[i % len(crowd)]
        src_host, src_port = sock.getsockname()
        try:
            if kind == "flood":
                fh, fp = flood.getsockname()
                flood.sendto(register("flood%d" % (i % 1000), fh, fp, token), addr)
            elif kind == "malformed":
                base = register("broken%d" % (i % 5000), src_host, src_port, token)
                if seeds and rng.random() < 0.3:
                    base = mutator.freshen(rng.choice(seeds))
                msg, _ = mutator.mutate(base, 65000)
                sock.sendto(msg[:65507], addr)
            elif kind == "oversized":
                base = register("big%d" % (i % 5000), src_host, src_port, token)
                if rng.random() < 0.5:
                    sock.sendto(with_header_lines(base, [b"Subject: " + b"x" * 900], 65000)[:65507],
                                addr)
                else:
                    with socket.create_connection(addr, timeout=1,
                                                  source_address=(src_host, 0)) as tcp:
                        tcp.setblocking(False)
                        try:
                            tcp.send(with_header_lines(
                                register("big%d" % (i % 5000), src_host, src_port, token, "TCP"),
                                [b"Subject: " + b"x" * 900], 100000))
                        except OSError:
                            pass
            else:
                base = register("many%d" % (i % 5000), src_host, src_port, token)
                lines = rng.choice([[b"X-H: %d"], [b"a:b"], [b"Route: <sip:127.0.0.1;lr>"]])
                sock.sendto(with_header_lines(base, lines, 64000)[:65507], addr)
            sent[kind] += 1
        except OSError:
            errors += 1
        i += 1
        ahead = i / args.rate - (time.monotonic() - t0)
        if ahead > 0.002:
            time.sleep(ahead)
        if i % 200 == 0:  # answers are not read: drop them
            for s in [flood] + crowd[:8]:
                try:
                    while s.recv(70000):
                        pass
                except OSError:
                    pass
    elapsed = time.monotonic() - t0
    print("hostile_load: sent %d (flood %d, malformed %d, oversized %d, many_headers %d) in %.1f s,"
          " %d send errors" % (sum(sent.values()), sent["flood"], sent["malformed"],
                               sent["oversized"], sent["many_headers"], elapsed, errors),
          flush=True)


if __name__ == "__main__":
    main()
