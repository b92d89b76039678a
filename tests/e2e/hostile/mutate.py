#!/usr/bin/env python3
"""Mutated SIP traffic against a live proxy (tests/e2e/hostile, bench/hostile).

Seeds are real messages: sipp -trace_msg logs of a captured run (--capture) and raw message
files (--seeds, e.g. the sip_message fuzz corpus). Each message sent is a seed with fresh
transaction identifiers (branch, Call-ID, tags) and one to three mutations:

  byte flips, inserts and deletes; header lines duplicated (single-instance ones 2-3 times),
  deleted or shuffled; numbers in CSeq/Expires/Max-Forwards/Content-Length/;expires= replaced
  (negative, 2^32, huge, non-numeric); truncation; Content-Length larger or smaller than the
  body; hundreds to thousands of header lines; display names that are not valid UTF-8; Via
  parameters maddr/received/rport with junk; the method or status code changed.

A share of the messages (--backend-share) are INVITEs to the gateway's masquerade URI
(--pgw-uri), as the backend sends them for calls to phones. Messages go over UDP (several
source ports) and TCP (connections carrying 1-20 messages each), at most --rate per second.
Whatever the proxy answers is read and counted. With --pid, the proxy's process is checked
every 100 messages; when it has gone the last 500 messages sent are written to --last and the
exit status is 1. Deterministic for a given --seed and the same seed messages.
"""

import argparse
import os
import random
import re
import socket
import sys
import time
from collections import Counter, deque

SINGLE = [b"Max-Forwards", b"CSeq", b"Call-ID", b"From", b"To", b"Content-Length", b"Expires",
          b"Content-Type", b"User-Agent", b"Server", b"Subject", b"Min-Expires", b"Date"]
NUMBERED = [b"CSeq", b"Expires", b"Max-Forwards", b"Content-Length"]
BAD_NUMBERS = [b"-1", b"-4294967296", b"4294967296", b"4294967295", b"18446744073709551616",
               b"99999999999999999999999999999999", b"abc", b"", b" ", b"1e9", b"0x10",
               b"12 34", b"+5", b"0007", b"-0", b"2147483648", b"\xff", b"1.5", b"65536"]
BAD_UTF8 = [b"M\xfcller", b"\xff\xfe\xfd", b"\xc3\x28", b"\xc0\xaf", b"\xed\xa0\x80",
            b"\xf4\x90\x80\x80", b"caf\xe9", b"\xe2\x82", b"Bob\x00Nul", b"\x80\x81\x82"]
VIA_JUNK = [b";maddr=203.0.113.9", b";maddr=999.999.1.1", b";maddr=", b";maddr=::::",
            b";maddr=127.0.0.1;ttl=1", b";maddr=evil.example.com", b";received=abc",
            b";received=", b";received=256.1.1.1", b";received=::1", b";rport=-1",
            b";rport=70000", b";rport=abc", b";rport=", b";rport=4294967296",
            b";maddr=[::1]", b";branch=", b";branch", b";received=127.0.0.1;rport=0"]
METHODS = [b"INVITE", b"ACK", b"BYE", b"CANCEL", b"OPTIONS", b"REGISTER", b"INFO", b"UPDATE",
           b"PRACK", b"SUBSCRIBE", b"NOTIFY", b"MESSAGE", b"REFER", b"PUBLISH", b"FOO", b"invite",
           b"", b"INV\x00ITE"]
STATUS = [b"0", b"99", b"100", b"180", b"183", b"200", b"202", b"300", b"401", b"407", b"487",
          b"503", b"699", b"700", b"999", b"1000", b"-1", b"abc", b"2000000000000"]


def split_message(raw):
    """(start line, [header lines], body) of a message; lines without their CRLF."""
    text = raw.replace(b"\r\n", b"\n")
    head, sep, body = text.partition(b"\n\n")
    lines = head.split(b"\n")
    return lines[0], [line for line in lines[1:] if line], body.replace(b"\n", b"\r\n")


def join_message(start, headers, body):
    return start + b"\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n" + body


def set_content_length(headers, body):
    out = [h for h in headers if not re.match(rb"(?i)(content-length|l)\s*:", h)]
    out.append(b"Content-Length: %d" % len(body))
    return out


def parse_sipp_log(path):
    """The messages of a sipp -trace_msg file (separated by lines of dashes)."""
    with open(path, "rb") as f:
        data = f.read()
    out = []
    for chunk in re.split(rb"\n-{20,}[^\n]*\n", b"\n" + data):
        # "UDP message sent (n bytes):" / "TCP message received [n] bytes :", a blank line.
        m = re.match(rb"\s*[A-Z]+ message (sent|received)[^\n]*\n\n?", chunk)
        if not m:
            continue
        msg = chunk[m.end():].strip(b"\r\n")
        if re.match(rb"^([A-Z]+ \S+ SIP/2\.0|SIP/2\.0 \d{3})", msg):
            start, headers, body = split_message(msg + b"\n\n")
            body = body.rstrip(b"\r\n") + (b"\r\n" if body.strip() else b"")
            out.append(join_message(start, set_content_length(headers, body), body))
    return out


def is_request(start):
    return not start.startswith(b"SIP/")


class Mutator:
    def __init__(self, rng):
        self.r = rng

    def token(self, n=10):
        return "".join(self.r.choice("0123456789abcdef") for _ in range(n)).encode()

    def freshen(self, raw):
        """New branch, Call-ID and From tag: each message is a new transaction."""
        t = self.token()
        raw = re.sub(rb"branch=z9hG4bK[^;,\s>]*", b"branch=z9hG4bK-h" + t, raw, count=1)
        raw = re.sub(rb"(?im)^(Call-ID|i)\s*:\s*\S+", rb"Call-ID: h" + t + b"@hostile", raw,
                     count=1)
        raw = re.sub(rb"(?im)^((?:From|f)\s*:[^\r\n]*;tag=)[^;\s\r\n]+", rb"\g<1>h" + t, raw,
                     count=1)
        return raw

    # --- byte level
    def flip(self, raw):
        b = bytearray(raw)
        for _ in range(self.r.randint(1, 8)):
            if b:
                b[self.r.randrange(len(b))] ^= 1 << self.r.randrange(8)
        return bytes(b)

    def insert(self, raw):
        junk = self.r.choice([b"\x00", b"\r", b"\n", b"\r\n", b":", b";", b"<", b">", b",",
                              b"\"", b" ", b"\t", b"\xff", b"%", b"=", b"@", b"\r\n\r\n",
                              bytes(self.r.randrange(256) for _ in range(self.r.randint(1, 16)))])
        i = self.r.randrange(len(raw) + 1)
        return raw[:i] + junk * self.r.randint(1, 4) + raw[i:]

    def delete(self, raw):
        if not raw:
            return raw
        i = self.r.randrange(len(raw))
        return raw[:i] + raw[i + self.r.randint(1, 32):]

    def truncate(self, raw):
        return raw[:self.r.randrange(len(raw) + 1)] if raw else raw

    # --- header level
    def dup_header(self, raw):
        start, headers, body = split_message(raw)
        if not headers:
            return raw
        singles = [i for i, h in enumerate(headers)
                   if any(h.lower().startswith(s.lower() + b":") for s in SINGLE)]
        i = self.r.choice(singles) if singles and self.r.random() < 0.7 else \
            self.r.randrange(len(headers))
        line = headers[i]
        if self.r.random() < 0.3:  # a second instance with another value
            name = line.split(b":", 1)[0]
            line = name + b": " + self.r.choice([b"1", b"0", b"70", b"x", b"2 INVITE",
                                                 b"<sip:other@example.org>", b"a"])
        for _ in range(self.r.randint(1, 2)):
            headers.insert(self.r.randrange(len(headers) + 1), line)
        return join_message(start, headers, body)

    def del_header(self, raw):
        start, headers, body = split_message(raw)
        if headers:
            del headers[self.r.randrange(len(headers))]
        return join_message(start, headers, body)

    def shuffle(self, raw):
        start, headers, body = split_message(raw)
        self.r.shuffle(headers)
        return join_message(start, headers, body)

    def number(self, raw):
        start, headers, body = split_message(raw)
        bad = self.r.choice(BAD_NUMBERS)
        choices = [i for i, h in enumerate(headers)
                   if any(h.lower().startswith(n.lower() + b":") for n in NUMBERED)
                   or re.search(rb"(?i);expires=", h)]
        if not choices:
            headers.append(self.r.choice(NUMBERED) + b": " + bad)
            return join_message(start, headers, body)
        i = self.r.choice(choices)
        name, _, value = headers[i].partition(b":")
        if re.search(rb"(?i);expires=", value) and self.r.random() < 0.5:
            value = re.sub(rb"(?i);expires=[^;>,\s]*", b";expires=" + bad, value, count=1)
        elif name.strip().lower() == b"cseq":
            parts = value.split()
            value = b" " + bad + (b" " + parts[-1] if len(parts) > 1 else b"")
        else:
            value = b" " + bad
        headers[i] = name + b":" + value
        return join_message(start, headers, body)

    def content_length(self, raw):
        start, headers, body = split_message(raw)
        if not body or self.r.random() < 0.5:
            body = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
                    b"t=0 0\r\nm=audio 4000 RTP/AVP 0\r\n")
            headers = [h for h in headers if not h.lower().startswith(b"content-type:")]
            headers.append(b"Content-Type: application/sdp")
        n = len(body) + self.r.choice([1, 10, 1000, 100000, -1, -10, -len(body)])
        headers = [h for h in headers if not re.match(rb"(?i)(content-length|l)\s*:", h)]
        headers.append(b"Content-Length: %d" % max(0, n))
        return join_message(start, headers, body)

    def many_headers(self, raw, limit):
        start, headers, body = split_message(raw)
        kind = self.r.randrange(4)
        n = self.r.choice([100, 500, 2000, 8000])
        if kind == 0:
            extra = [b"X-H%d: %d" % (i, i) for i in range(n)]
        elif kind == 1:
            extra = [b"a:b"] * n
        elif kind == 2:
            vias = [h for h in headers if h.lower().startswith(b"via:")] or [
                b"Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-x"]
            extra = [vias[0]] * n
        else:
            extra = [b"Record-Route: <sip:127.0.0.%d;lr>" % (i % 250 + 1) for i in range(n)]
        at = self.r.randrange(len(headers) + 1)
        headers[at:at] = extra
        msg = join_message(start, headers, body)
        return msg[:limit] if len(msg) > limit else msg

    def bad_utf8(self, raw):
        start, headers, body = split_message(raw)
        names = [i for i, h in enumerate(headers)
                 if re.match(rb"(?i)(from|to|contact|f|t|m)\s*:", h)]
        if not names:
            return raw
        i = self.r.choice(names)
        name, _, value = headers[i].partition(b":")
        value = value.strip()
        m = re.match(rb'("[^"]*"\s*)?(.*)', value, re.S)
        junk = self.r.choice(BAD_UTF8)
        quoted = b'"' + junk + b'" ' if self.r.random() < 0.7 else junk + b" "
        headers[i] = name + b": " + quoted + (m.group(2) if m else value)
        return join_message(start, headers, body)

    def via_junk(self, raw):
        start, headers, body = split_message(raw)
        vias = [i for i, h in enumerate(headers) if re.match(rb"(?i)(via|v)\s*:", h)]
        junk = b"".join(self.r.choice(VIA_JUNK) for _ in range(self.r.randint(1, 3)))
        if vias:
            headers[vias[0]] += junk
        else:
            headers.insert(0, b"Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-" + self.token() +
                           junk)
        return join_message(start, headers, body)

    def start_line(self, raw):
        start, headers, body = split_message(raw)
        if is_request(start):
            parts = start.split(b" ", 1)
            method = self.r.choice(METHODS)
            start = method + b" " + (parts[1] if len(parts) > 1 else b"")
            headers = [re.sub(rb"(?i)^(CSeq\s*:\s*\d+\s+)\S+", rb"\g<1>" + method, h)
                       if self.r.random() < 0.8 else h for h in headers]
        else:
            parts = start.split(b" ", 2)
            parts[1:2] = [self.r.choice(STATUS)]
            start = b" ".join(parts)
        return join_message(start, headers, body)

    def mutate(self, raw, limit):
        ops = [(self.flip, 8), (self.insert, 8), (self.delete, 6), (self.truncate, 5),
               (self.dup_header, 14), (self.del_header, 7), (self.shuffle, 4), (self.number, 14),
               (self.content_length, 7), (self.bad_utf8, 8), (self.via_junk, 8),
               (self.start_line, 6), (None, 2)]
        funcs = [f for f, _ in ops]
        weights = [w for _, w in ops]
        applied = []
        for _ in range(self.r.choice([1, 1, 1, 2, 2, 3])):
            f = self.r.choices(funcs, weights)[0]
            if f is None:
                raw = self.many_headers(raw, limit)
                applied.append("many_headers")
            else:
                raw = f(raw)
                applied.append(f.__name__)
        return raw, applied


def backend_invite(seed, pgw_uri):
    """An INVITE toward a masqueraded contact, as the backend relays a call to a phone."""
    start, headers, body = split_message(seed)
    return join_message(b"INVITE " + pgw_uri + b" SIP/2.0", headers, body)


class Sender:
    def __init__(self, target, rng, udp_sockets=8):
        host, port = target.rsplit(":", 1)
        self.addr = (host, int(port))
        self.r = rng
        self.udp = []
        for _ in range(udp_sockets):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setblocking(False)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
            s.bind((host, 0))
            self.udp.append(s)
        self.tcp = None
        self.tcp_left = 0
        self.stats = Counter()

    def drain(self):
        for s in self.udp + ([self.tcp] if self.tcp else []):
            while True:
                try:
                    data = s.recv(70000)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    self.stats["recv_errors"] += 1
                    break
                if not data:
                    break
                self.stats["bytes_received"] += len(data)
                self.stats["answers"] += data.count(b"SIP/2.0 ")

    def close_tcp(self):
        if self.tcp:
            try:
                self.tcp.close()
            except OSError:
                pass
        self.tcp = None

    def send(self, msg, transport):
        if transport == "udp":
            try:
                self.r.choice(self.udp).sendto(msg[:65507], self.addr)
                self.stats["udp"] += 1
            except OSError:
                self.stats["udp_errors"] += 1
            return
        if self.tcp is None or self.tcp_left <= 0:
            self.close_tcp()
            try:
                self.tcp = socket.create_connection(self.addr, timeout=2)
                self.tcp.setblocking(False)
                self.tcp_left = self.r.randint(1, 20)
                self.stats["tcp_connections"] += 1
            except OSError:
                self.stats["tcp_connect_errors"] += 1
                self.tcp = None
                return
        self.tcp_left -= 1
        view = memoryview(msg)
        deadline = time.monotonic() + 2
        while view:
            try:
                n = self.tcp.send(view)
                view = view[n:]
            except (BlockingIOError, InterruptedError):
                self.drain()
                if time.monotonic() > deadline:
                    break
                time.sleep(0.001)
            except OSError:  # the proxy closed it (a message too large, a parse error)
                self.stats["tcp_closed_by_peer"] += 1
                self.close_tcp()
                return
        self.stats["tcp"] += 1


def proxy_alive(pid):
    try:
        os.kill(pid, 0)
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--target", required=True, help="host:port of the proxy (UDP and TCP)")
    ap.add_argument("--seed", type=int, default=1313)
    ap.add_argument("--count", type=int, default=20000)
    ap.add_argument("--rate", type=float, default=2000, help="messages per second at most")
    ap.add_argument("--tcp-share", type=float, default=0.4)
    ap.add_argument("--backend-share", type=float, default=0.15)
    ap.add_argument("--pgw-uri", default="", help="masqueraded contact (backend-side INVITEs)")
    ap.add_argument("--pid", type=int, default=0, help="the proxy's pid (stop when it dies)")
    ap.add_argument("--last", default="", help="file for the last messages when the proxy died")
    ap.add_argument("--capture", nargs="*", default=[], help="sipp -trace_msg logs")
    ap.add_argument("--seeds", nargs="*", default=[], help="files holding one message each")
    ap.add_argument("--dump", default="", help="write every message sent to this file")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    seeds = []
    for path in args.capture:
        seeds += parse_sipp_log(path)
    captured = len(seeds)
    for path in args.seeds:
        with open(path, "rb") as f:
            seeds.append(f.read())
    if not seeds:
        sys.exit("mutate.py: no seed message")
    invites = [s for s in seeds if s.startswith(b"INVITE ")]
    print("mutate.py: seed %d, %d seed messages (%d captured, %d INVITEs)"
          % (args.seed, len(seeds), captured, len(invites)), flush=True)

    mutator = Mutator(rng)
    sender = Sender(args.target, rng)
    last = deque(maxlen=500)
    ops = Counter()
    dump = open(args.dump, "wb") if args.dump else None
    t0 = time.monotonic()
    i = -1
    # --count messages actually sent (a TCP message the proxy refused by closing the connection
    # does not count); at most twice as many attempts.
    while sender.stats["udp"] + sender.stats["tcp"] < args.count and i < 2 * args.count:
        i += 1
        backend = bool(args.pgw_uri and invites and rng.random() < args.backend_share)
        if backend:
            seed = backend_invite(rng.choice(invites), args.pgw_uri.encode())
        else:
            seed = rng.choice(seeds)
        if rng.random() < 0.95:
            seed = mutator.freshen(seed)
        transport = "tcp" if rng.random() < args.tcp_share else "udp"
        msg, applied = mutator.mutate(seed, 65507 if transport == "udp" else 80000)
        ops.update(applied)
        ops["backend_invite" if backend else "phone_side"] += 1
        sender.send(msg, transport)
        # "udp", or "tcp <connection>": a replay (replay.py) sends it the same way.
        where = ("tcp %d" % sender.stats["tcp_connections"]) if transport == "tcp" else "udp"
        last.append((where, msg))
        if dump:
            dump.write(b"=== " + where.encode() + b"\n" + msg + b"\n")
        if i % 50 == 0:
            sender.drain()
        if i % 100 == 0 and args.pid and not proxy_alive(args.pid):
            if args.last:
                with open(args.last, "wb") as f:
                    for t, m in last:
                        f.write(b"=== " + t.encode() + b"\n" + m + b"\n")
            print("mutate.py: the proxy (pid %d) died after %d messages (seed %d)"
                  % (args.pid, i + 1, args.seed), flush=True)
            sys.exit(1)
        ahead = (i + 1) / args.rate - (time.monotonic() - t0)
        if ahead > 0.005:
            time.sleep(ahead)
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        sender.drain()
        time.sleep(0.05)
    sender.close_tcp()
    elapsed = time.monotonic() - t0
    s = sender.stats
    print("mutate.py: sent %d messages in %.1f s: udp %d, tcp %d over %d connections "
          "(%d closed by the proxy, %d connect errors); %d answers read"
          % (s["udp"] + s["tcp"], elapsed, s["udp"], s["tcp"], s["tcp_connections"],
             s["tcp_closed_by_peer"], s["tcp_connect_errors"], s["answers"]), flush=True)
    print("mutate.py: mutations " + ", ".join("%s %d" % kv for kv in sorted(ops.items())),
          flush=True)
    if args.pid and not proxy_alive(args.pid):
        print("mutate.py: the proxy (pid %d) died (seed %d)" % (args.pid, args.seed), flush=True)
        if args.last:
            with open(args.last, "wb") as f:
                for t, m in last:
                    f.write(b"=== " + t.encode() + b"\n" + m + b"\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
