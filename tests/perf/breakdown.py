#!/usr/bin/env python3
"""CPU per call, by process and by kind of work, from `mcpbus-bench direct --perf-dir DIR`.

For each `DIR/<target>.data` (perf record -e cpu-clock -g, one sample every 1/F s of CPU)
and its `DIR/<target>.json` (calls made while sampling, the pids, F), prints a Markdown table:
µs of CPU per call for each process and category. The category comes from the sampled
function (the leaf frame) for user space, and from the system call in the kernel's call
chain for kernel time. nats-server is a stripped Go binary: its addresses are resolved with
`go tool addr2line` (Go's own symbol table; `apt-get install golang-go`).

    python3 tests/perf/breakdown.py DIR [--top N]
"""

import collections
import json
import os
import re
import shutil
import subprocess
import sys

RUST = [
    (r"hyper::|httparse|http::header|hyper_util::", "HTTP/1.1 parse and encode (hyper)"),
    (r"axum::|tower::|matchit", "HTTP routing (axum, tower)"),
    (r"serde_json|serde::|ryu::|itoa::", "JSON (serde_json)"),
    (r"async_nats|nuid::", "NATS client (async-nats)"),
    (r"ring::|sha2::|jsonwebtoken|aws_lc|hmac::|digest::|sha256", "hashing and crypto"),
    (r"governor", "quotas (governor)"),
    (r"prometheus", "metrics (prometheus)"),
    (r"tracing", "tracing"),
    (r"rmcp::", "rmcp (model, transport)"),
    (r"mcpbus|bus_schema|harness::", "mcpbus code (core, routing, policy, envelope)"),
    (r"tokio::|mio::|parking_lot|crossbeam|futures_", "async runtime (tokio)"),
    (
        r"^(_int_|__libc_|malloc|free|realloc|calloc|cfree|tcache|unlink_chunk|__mem|mem(cpy|move|set|cmp)|"
        r"__strlen|strlen|__GI_|alloc::alloc|__rust_(alloc|dealloc|realloc))",
        "malloc, free, memcpy (libc)",
    ),
    (r"^(core::|alloc::|std::|<)", "Rust std/core (strings, hashing, fmt)"),
    (r"pthread|__lll_|futex|syscall|__GI___", "libc wrappers (syscalls, locks)"),
]

GO = [
    (r"\(\*fileStore\)|\(\*msgBlock\)|filestore|\(\*compressionInfo\)", "JetStream file store"),
    (r"\(\*stream\)|\(\*jsAccount\)|\(\*jetStream\)", "JetStream stream (ingest, dedup, ack reply)"),
    (r"\(\*consumer\)|\(\*waitQueue\)", "JetStream pull consumer (requests, delivery, acks)"),
    (r"\(\*Sublist\)|\(\*level\)|\(\*node\)|subjectIsLiteral|tokenize|matchLiteral", "subject matching"),
    (r"\(\*client\)\.parse|\(\*client\)\.processPub|\(\*client\)\.processHeaderPub|processMsgArgs|processHeaderMsgArgs", "NATS protocol parse"),
    (r"\(\*client\)|\(\*Server\)\.|\(\*Account\)|\(\*ipQueue|\(\*outbound", "NATS routing and delivery (client, account)"),
    (r"permissions|\(\*perm|checkPermissions|pubAllowed|canSubscribe", "permission checks"),
    (r"server\.", "nats-server: other"),
    (r"runtime\.(mallocgc|gc|scanobject|markroot|greyobject|findObject|heapBits|sweep|bgsweep|bgscavenge|memclr|wbBuf|nextFreeFast|(mspan|mheap|mcache|mcentral))", "Go GC and allocation"),
    (r"runtime\.(memmove|memeqbody|cmpbody|aeshash|mapaccess|mapassign|mapdelete|makemap|growslice|concatstring|slicebytetostring|rawstring|typedmemmove|efaceeq)", "Go maps, strings, copies"),
    (r"runtime\.|internal/", "Go runtime (scheduler, netpoll, locks)"),
    (r"syscall\.|internal/poll|net\.", "Go net and syscalls"),
    (r"encoding/json", "JSON (Go)"),
    (r"crypto|hash|sha256|highwayhash", "hashing (Go)"),
    (r"sync\.|sort\.|strings\.|bytes\.|strconv\.|time\.|fmt\.", "Go std"),
]

NATS_BASE = 0x400000

SEND = {"sendto", "sendmsg", "write", "writev", "sendmmsg"}
RECV = {"recvfrom", "recvmsg", "read", "readv", "recvmmsg"}


def kernel_category(frames):
    for sym, _dso in frames:
        m = re.match(r"__x64_sys_(\w+)|__(?:se|do)_sys_(\w+)", sym)
        if m:
            name = m.group(1) or m.group(2)
            if name in SEND:
                return "kernel: socket/file write (loopback TCP send, wakes the reader)"
            if name in RECV:
                return "kernel: socket/file read"
            if name.startswith("epoll"):
                return "kernel: epoll"
            if name == "futex":
                return "kernel: futex (thread park/wake)"
            if name in {"fsync", "fdatasync", "pwrite64", "pread64", "lseek", "openat", "close"}:
                return "kernel: file I/O"
            if name in {"sched_yield", "nanosleep", "clock_nanosleep"}:
                return "kernel: sleep/yield"
            return f"kernel: syscall {name}"
    for sym, _dso in frames:
        if re.search(r"irq|softirq|net_rx|do_softirq", sym):
            return "kernel: interrupts and softirq (loopback delivery)"
        if re.search(r"schedule|finish_task_switch|__switch_to|pick_next", sym):
            return "kernel: context switches"
    return "kernel: other"


def categorize(table, sym):
    for pattern, name in table:
        if re.search(pattern, sym):
            return name
    return None


def read_samples(data):
    """Yields (pid, frames) per sample; frames leaf first, each (symbol, dso)."""
    out = subprocess.run(
        ["perf", "script", "-i", data, "-F", "pid,ip,sym,dso"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pid, frames = None, []
    for line in out.splitlines():
        if not line.strip():
            continue
        header = re.match(r"\s*(\d+)\s*$", line)
        if header:
            if pid is not None:
                yield pid, frames
            pid, frames = int(header.group(1)), []
            continue
        m = re.match(r"\s*([0-9a-f]+)\s+(.*?)\s+\((.*)\)\s*$", line)
        if m:
            ip, sym, dso = m.groups()
            sym = re.sub(r"\+0x[0-9a-f]+$", "", sym)
            if sym == "[unknown]" and dso.endswith("nats-server"):
                # perf script prints an unresolved ip relative to the binary's base; the
                # executable is not position-independent and loads at 0x400000.
                sym = hex(int(ip, 16) + NATS_BASE)
            elif sym == "[unknown]":
                sym = "0x" + ip
            frames.append((sym, dso))
    if pid is not None:
        yield pid, frames


def go_symbols(binary, addrs):
    if not addrs or not shutil.which("go"):
        return {}
    addrs = sorted(addrs)
    out = subprocess.run(
        ["go", "tool", "addr2line", binary],
        input="".join(a + "\n" for a in addrs),
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    # Two lines per address: function, then file:line.
    return {a: out[2 * i] for i, a in enumerate(addrs) if 2 * i < len(out)}


def breakdown(directory, target, top):
    meta = json.load(open(os.path.join(directory, f"{target}.json")))
    data = os.path.join(directory, f"{target}.data")
    names = {pid: name for name, pid in meta["procs"].items()}
    us_per_sample = 1e6 / meta["freq"] / meta["calls"]
    samples = [(names.get(pid, "other"), frames) for pid, frames in read_samples(data) if frames]
    go_addrs = {
        f[0][0] for n, f in samples if n == "nats-server" and f[0][0].startswith("0x")
    }
    nats_bin = shutil.which("nats-server") or "/usr/sbin/nats-server"
    go = go_symbols(nats_bin, go_addrs)
    cats = collections.Counter()
    syms = collections.Counter()
    for name, frames in samples:
        leaf, dso = frames[0]
        if "kernel" in dso:
            cat = kernel_category(frames)
        elif name == "nats-server":
            sym = go.get(leaf, leaf)
            leaf = sym
            cat = categorize(GO, sym) or "nats-server: other"
        else:
            cat = categorize(RUST, leaf) or f"other ({dso.split('/')[-1]})"
        cats[(name, cat)] += 1
        syms[(name, leaf[:90])] += 1
    total = sum(cats.values())
    print(f"\n### {target}: {meta['calls']} calls, {total} samples at {meta['freq']} Hz, "
          f"{total * us_per_sample:.1f} µs CPU per call sampled\n")
    print("| Process | Work | µs per call | share |")
    print("|---|---|---|---|")
    per_proc = collections.Counter()
    for (name, _), n in cats.items():
        per_proc[name] += n
    for proc in sorted(per_proc, key=lambda p: -per_proc[p]):
        print(f"| **{proc}** | **all** | **{per_proc[proc] * us_per_sample:.1f}** | "
              f"**{100 * per_proc[proc] / total:.0f} %** |")
        for (name, cat), n in cats.most_common():
            if name == proc and n * us_per_sample >= 0.5:
                print(f"| {proc} | {cat} | {n * us_per_sample:.1f} | {100 * n / total:.1f} % |")
    if top:
        print(f"\nTop {top} functions:\n")
        print("| Process | Function | µs per call |")
        print("|---|---|---|")
        for (name, sym), n in syms.most_common(top):
            print(f"| {name} | `{sym}` | {n * us_per_sample:.2f} |")


def main():
    args = sys.argv[1:]
    top = 0
    if "--top" in args:
        i = args.index("--top")
        top = int(args[i + 1])
        del args[i : i + 2]
    directory = args[0]
    for target in sorted(f[:-5] for f in os.listdir(directory) if f.endswith(".json")):
        breakdown(directory, target, top)


if __name__ == "__main__":
    main()
