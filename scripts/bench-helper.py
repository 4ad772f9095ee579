#!/usr/bin/env python3
"""Helpers for scripts/bench: fixture generation, a byte-counting TCP proxy, request counting,
start-up timing and the report. Standard library only, so the bench needs nothing from PyPI."""
import argparse
import asyncio
import gzip
import hashlib
import io
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import time

# ---------------------------------------------------------------- fixtures


def put_blob(layout, data):
    d = hashlib.sha256(data).hexdigest()
    path = os.path.join(layout, "blobs", "sha256", d)
    with open(path, "wb") as f:
        f.write(data)
    return "sha256:" + d, len(data)


def tar_bytes(members):
    """members: list of (path, bytes-or-None for a directory). Fixed metadata: reproducible."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        for path, data in members:
            ti = tarfile.TarInfo(path)
            ti.mtime = 1700000000
            ti.uid = ti.gid = 0
            if data is None:
                ti.type = tarfile.DIRTYPE
                ti.mode = 0o755
                t.addfile(ti)
            else:
                ti.mode = 0o644
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def gz(data, level):
    # mtime=0 keeps the blob digest a function of the seed alone.
    return gzip.compress(data, compresslevel=level, mtime=0)


def write_layout(layout, layer_tars, tag, level):
    os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    diff_ids, descs = [], []
    for raw in layer_tars:
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        dg, size = put_blob(layout, gz(raw, level))
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": dg, "size": size})
    config = {
        "created": "2024-01-01T00:00:00Z",
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "User": "2048",
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Entrypoint": ["/opt/engine/bin/engine"],
            "WorkingDir": "/opt/engine",
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": f"bench layer {i}"} for i in range(len(diff_ids))],
    }
    cdg, csize = put_blob(layout, json.dumps(config, separators=(",", ":")).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdg, "size": csize},
        "layers": descs,
    }
    mdg, msize = put_blob(layout, json.dumps(manifest, separators=(",", ":")).encode())
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": mdg, "size": msize,
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    }
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump(index, f)
    return sum(d["size"] for d in descs)


def cmd_seed_base(a):
    """A base of `layers` layers of incompressible bytes (seeded PRNG), ~`mb` MB compressed."""
    per_layer = a.mb * 1_000_000 // a.layers
    files_per_layer = 4
    tars = []
    for i in range(a.layers):
        rng = random.Random(a.seed * 1000 + i)
        members = [("opt/", None), ("opt/engine/", None), (f"opt/engine/lib{i}/", None)]
        for j in range(files_per_layer):
            members.append((f"opt/engine/lib{i}/part-{j}.bin", rng.randbytes(per_layer // files_per_layer)))
        tars.append(tar_bytes(members))
    # Level 1 over random bytes: the compressed size ≈ the raw size, and seeding stays quick.
    total = write_layout(a.out, tars, a.tag, 1)
    print(total)


def cmd_seed_tiny(a):
    tars = [tar_bytes([("opt/", None), ("opt/engine/", None), ("opt/engine/VERSION", b"bench\n")])]
    write_layout(a.out, tars, a.tag, 6)


WORDS = ("alpha beta gamma delta epsilon zeta theta kappa lambda sigma omega pet order user "
         "invoice status pending shipped delivered name email street city country price").split()


def json_record(rng, n):
    return {
        "id": n,
        "uuid": "%032x" % rng.getrandbits(128),
        "name": " ".join(rng.choice(WORDS) for _ in range(3)),
        "tags": [rng.choice(WORDS) for _ in range(rng.randint(1, 5))],
        "price": round(rng.random() * 1000, 2),
        "active": rng.random() < 0.5,
    }


def cmd_config_dir(a):
    """~`files` files, ~`mb` MB of JSON-like responses a REST config references; with --big-mb,
    one extra large NDJSON fixture (text, so gzip level matters for size and speed)."""
    rng = random.Random(a.seed)
    os.makedirs(os.path.join(a.out, "responses"), exist_ok=True)
    n = a.files - 1
    per = a.mb * 1_000_000 // n
    resources = []
    for i in range(n):
        recs, size, k = [], 0, 0
        while size < per:
            r = json_record(rng, k)
            recs.append(r)
            size += len(json.dumps(r)) + 2
            k += 1
        name = f"responses/item-{i:03d}.json"
        with open(os.path.join(a.out, name), "w") as f:
            json.dump(recs, f, indent=1)
        resources.append(
            f"  - method: GET\n    path: /items/{i}\n    response:\n      file: {name}\n"
            f"      headers:\n        Content-Type: application/json\n")
    with open(os.path.join(a.out, "bench-config.yaml"), "w") as f:
        f.write("plugin: rest\nresources:\n" + "".join(resources))
    if a.big_mb:
        # Lines drawn from a pool of ~3 MB of distinct records: repeats fall mostly outside
        # deflate's 32 KiB window, so the text compresses like real JSON (≈ 3–4×), and it's quick.
        os.makedirs(os.path.join(a.out, "fixtures"), exist_ok=True)
        pool = [json.dumps(json_record(rng, k)) + "\n" for k in range(20000)]
        target = a.big_mb * 1_000_000
        with open(os.path.join(a.out, "fixtures", "large-export.ndjson"), "w") as f:
            written = 0
            while written < target:
                chunk = "".join(rng.choices(pool, k=5000))
                f.write(chunk)
                written += len(chunk)


# ---------------------------------------------------------------- counting proxy


def cmd_proxy(a):
    """Forwards 127.0.0.1:listen → upstream and keeps byte totals in a JSON state file, rewritten
    (atomically) whenever a connection closes, so the bench reads exact per-run deltas."""
    up_host, up_port = a.upstream.rsplit(":", 1)
    state = {"open": 0, "up": 0, "down": 0, "conns": 0}
    dirty = [False]

    def flush():
        tmp = a.state + ".tmp"
        with open(tmp, "w") as f:
            json.dump(state, f)
        os.replace(tmp, a.state)

    async def pump(reader, writer, key):
        try:
            while True:
                data = await reader.read(1 << 18)
                if not data:
                    break
                state[key] += len(data)
                dirty[0] = True
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            try:
                writer.close()
            except Exception:
                pass

    async def handle(cr, cw):
        state["open"] += 1
        state["conns"] += 1
        flush()
        try:
            ur, uw = await asyncio.open_connection(up_host, int(up_port))
            await asyncio.gather(pump(cr, uw, "up"), pump(ur, cw, "down"))
        except (ConnectionError, OSError):
            cw.close()
        finally:
            state["open"] -= 1
            flush()

    async def ticker():
        # Clients that keep idle connections open (dockerd) still get their counts written.
        while True:
            await asyncio.sleep(0.1)
            if dirty[0]:
                dirty[0] = False
                flush()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", a.listen)
        flush()
        asyncio.ensure_future(ticker())
        loop = asyncio.get_running_loop()
        stop = loop.create_future()
        loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
        async with server:
            await stop

    asyncio.run(main())


def cmd_bytes(a):
    """Sums the proxies' totals once they are settled: no open connection, or (for clients that
    keep idle connections) counts unchanged for 0.5 s. Polls with a 15 s deadline."""
    deadline = time.monotonic() + 15
    last, stable_since = None, time.monotonic()
    while True:
        tot, open_ = [0, 0, 0], 0
        for st in a.state:
            try:
                with open(st) as f:
                    s = json.load(f)
            except (OSError, ValueError):
                continue
            tot = [tot[0] + s["up"], tot[1] + s["down"], tot[2] + s["conns"]]
            open_ += s["open"]
        now = time.monotonic()
        if tot != last:
            last, stable_since = tot, now
        if open_ == 0 or now - stable_since >= 0.5 or now > deadline:
            break
        time.sleep(0.05)
    print(*tot)


def cmd_daemon_cpu(a):
    """CPU seconds used so far by the Docker daemon and what it waited for (dockerd, containerd
    and their children, e.g. fuse-overlayfs): the docker CLI itself does almost nothing."""
    tick = os.sysconf("SC_CLK_TCK")
    procs = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                st = f.read()
        except OSError:
            continue
        comm = st[st.index("(") + 1: st.rindex(")")]
        f = st[st.rindex(")") + 2:].split()
        # fields after comm: state ppid ... utime(12) stime(13) cutime(14) cstime(15)
        procs[int(pid)] = (comm, int(f[1]), sum(int(x) for x in f[11:15]))
    roots = {p for p, (c, _, _) in procs.items() if c in ("dockerd", "containerd")}
    total, seen = 0, set()

    def under(p):
        while p in procs and p not in seen:
            if p in roots:
                return True
            p = procs[p][1]
        return False

    for p, (c, pp, t) in procs.items():
        if p in roots or under(p):
            total += t
            seen.add(p)
    print(total / tick)


# ---------------------------------------------------------------- latency series


def write_multi_layout(layout, tag, platforms=(("linux", "amd64"), ("linux", "arm64")), layers=3):
    """A 2-platform OCI index, `layers` small distinct layers per platform: round trips, not
    bytes, dominate a push of it."""
    os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    entries = []
    for p, (os_, arch) in enumerate(platforms):
        descs, diff_ids = [], []
        for i in range(layers):
            rng = random.Random(p * 100 + i)
            raw = tar_bytes([("opt/", None), (f"opt/l{i}.bin", rng.randbytes(64 << 10))])
            diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
            dg, size = put_blob(layout, gz(raw, 1))
            descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": dg, "size": size})
        config = {"created": "2024-01-01T00:00:00Z", "architecture": arch, "os": os_,
                  "config": {"Entrypoint": ["/opt/engine/bin/engine"]},
                  "rootfs": {"type": "layers", "diff_ids": diff_ids}}
        cdg, csize = put_blob(layout, json.dumps(config).encode())
        man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
               "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdg, "size": csize},
               "layers": descs}
        mdg, msize = put_blob(layout, json.dumps(man).encode())
        entries.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": mdg,
                        "size": msize, "platform": {"os": os_, "architecture": arch}})
    idx = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries}
    idg, isize = put_blob(layout, json.dumps(idx).encode())
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json", "digest": idg, "size": isize,
            "annotations": {"org.opencontainers.image.ref.name": tag}}]}, f)


class DelayProxy:
    """HTTP/1.1 proxy on loopback that waits `delay` seconds before forwarding each request (one
    simulated round trip per request) and logs (start offset, method, path, status). Every
    exchange is forced to `Connection: close`, so one connection is one request."""

    def __init__(self, upstream):
        import socket
        import threading
        self.upstream = upstream
        self.delay = 0.0
        self.up = self.down = 0
        self.log = []
        self.t0 = time.monotonic()
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def reset(self, delay):
        with self.lock:
            self.delay, self.log, self.t0 = delay, [], time.monotonic()
            # Bytes the registry received (request heads and bodies) and sent back.
            self.up = self.down = 0

    def count(self, attr, n):
        with self.lock:
            setattr(self, attr, getattr(self, attr) + n)

    def accept(self):
        import threading
        while True:
            c, _ = self.sock.accept()
            threading.Thread(target=self.handle, args=(c,), daemon=True).start()

    @staticmethod
    def head(sock):
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = sock.recv(65536)
            if not d:
                return None, b""
            buf += d
            if buf[:1] == b"\x16":  # a TLS handshake: mockimg asks whether the port speaks TLS
                sock.sendall(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
                return None, b""
        h, rest = buf.split(b"\r\n\r\n", 1)
        return h.decode("latin-1"), rest

    @staticmethod
    def closing(h):
        lines = [l for l in h.split("\r\n") if l.split(":", 1)[0].strip().lower() not in ("connection", "keep-alive")]
        return ("\r\n".join(lines) + "\r\nConnection: close\r\n\r\n").encode("latin-1")

    def handle(self, c):
        import socket
        import threading
        try:
            h, early = self.head(c)
            if h is None:
                return
            start = time.monotonic()
            method, path = (h.split("\r\n", 1)[0].split(" ") + ["", ""])[:2]
            time.sleep(self.delay)
            host, port = self.upstream.rsplit(":", 1)
            u = socket.create_connection((host, int(port)))
            u.sendall(self.closing(h) + early)
            self.count("up", len(h) + len(early))

            def up():
                try:
                    while True:
                        d = c.recv(1 << 18)
                        if not d:
                            break
                        u.sendall(d)
                        self.count("up", len(d))
                except OSError:
                    pass
            threading.Thread(target=up, daemon=True).start()
            rh, rest = self.head(u)
            status = rh.split(" ", 2)[1] if rh else "-"
            with self.lock:
                self.log.append((round((start - self.t0) * 1000), method, path.split("?", 1)[0], status))
            if rh is None:
                return
            c.sendall(self.closing(rh) + rest)
            self.count("down", len(rh) + len(rest))
            while True:
                d = u.recv(1 << 18)
                if not d:
                    break
                c.sendall(d)
                self.count("down", len(d))
            c.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            c.close()


def cmd_latency(a):
    """The latency series: mockimg through a delaying proxy at 0 and `delay` ms per request;
    serial round trips = (median T at delay − median T at 0) / delay. Writes JSON and markdown."""
    w = a.workdir
    regs = {}
    for name in ("r1", "r2"):
        d = os.path.join(w, "lat-" + name)
        os.makedirs(d, exist_ok=True)
        port = free_port()
        with open(os.path.join(d, "config.yml"), "w") as f:
            f.write(f"version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n"
                    f"  filesystem:\n    rootdirectory: {d}/data\nhttp:\n  addr: 127.0.0.1:{port}\n")
        regs[name] = (subprocess.Popen(["docker-registry", "serve", os.path.join(d, "config.yml")],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), f"127.0.0.1:{port}")
    try:
        for _, addr in regs.values():
            wait_http(int(addr.rsplit(":", 1)[1]))
        r1, r2 = regs["r1"][1], regs["r2"][1]
        layout = os.path.join(w, "lat-base")
        write_multi_layout(layout, "base")
        subprocess.run(["skopeo", "copy", "-q", "--all", "--dest-tls-verify=false",
                        f"oci:{layout}:base", f"docker://{r1}/bench/base:1"], check=True)
        p1, p2 = DelayProxy(r1), DelayProxy(r2)
        cfg = os.path.join(w, "lat-cfg")
        os.makedirs(cfg, exist_ok=True)
        with open(os.path.join(cfg, "imposter-config.yaml"), "w") as f:
            f.write("plugin: rest\nresources:\n  - path: /hello\n    response:\n      content: hi\n")
        n = [0]

        def stamp():
            n[0] += 1
            with open(os.path.join(cfg, "stamp.json"), "w") as f:
                f.write('{"n": %d}' % n[0])

        def run(target, delay, fresh_config, cache=None):
            if fresh_config:
                stamp()
            for p in (p1, p2):
                p.reset(delay / 1000)
            env = dict(os.environ, MOCKIMG_CACHE_DIR=cache or os.path.join(w, "lat-cache-%d" % n[0]),
                       MOCKIMG_JOBS=str(a.jobs))
            t = time.monotonic()
            r = subprocess.run([a.mockimg, "build", cfg, "--base", f"{p1.addr}/bench/base:1",
                                "--push", target, "--quiet"] + attach_off(a.mockimg),
                               env=env, capture_output=True, text=True)
            took = time.monotonic() - t
            if r.returncode != 0:
                sys.exit(f"latency run failed: {r.stderr}")
            return took, sorted(p1.log + p2.log)

        scenarios, moved = {}, {}
        for delay in (0, a.delay):
            for i in range(a.runs):
                # Cold: a new repository on the base's registry.
                t, log = run(f"{p1.addr}/lat/cold-{delay}-{i}:1", delay, True)
                scenarios.setdefault("cold", {}).setdefault(delay, []).append((t, log))
                # Unchanged rebuild: the same config pushed to the same tag again.
                t, log = run(f"{p1.addr}/lat/cold-{delay}-{i}:1", delay, False)
                scenarios.setdefault("unchanged", {}).setdefault(delay, []).append((t, log))
                # Another registry that holds the base blobs (an earlier push): a new config.
                run(f"{p2.addr}/lat/ci-{delay}-{i}:1", 0, True)
                t, log = run(f"{p2.addr}/lat/ci-{delay}-{i}:1", delay, True)
                scenarios.setdefault("other_registry", {}).setdefault(delay, []).append((t, log))
                # Issue 23: one mock pushed to three new repositories of the other registry,
                # which holds the base in another repository (an earlier push by the same
                # machine: one cache directory throughout). Per push: time, log, bytes.
                cache = os.path.join(w, "lat-shared-%d-%d" % (delay, i))
                run(f"{p2.addr}/lat/x-{delay}-{i}:1", 0, True, cache)
                stamp()
                for k in range(3):
                    t, log = run(f"{p2.addr}/lat/m{k}-{delay}-{i}:1", delay, False, cache)
                    scenarios.setdefault("new_repos", {}).setdefault(delay, []).append((t, log))
                    moved.setdefault(delay, []).append((p2.up, p1.down))
        out = {}
        for sc, by in scenarios.items():
            t0 = med([t for t, _ in by[0]])
            t1 = med([t for t, _ in by[a.delay]])
            out[sc] = {"t0": t0, "t_delay": t1, "round_trips": (t1 - t0) / (a.delay / 1000),
                       "requests": med([len(l) for _, l in by[a.delay]]), "log": by[a.delay][0][1],
                       "depth": med([depth(l, a.delay) for _, l in by[a.delay]])}
        # Bytes per push to a new repository (medians): received by the other registry, and
        # downloaded from the base's.
        out["new_repos"]["bytes_to_b"] = med([u for u, _ in moved[a.delay]])
        out["new_repos"]["bytes_from_a"] = med([d for _, d in moved[a.delay]])
        out["new_repos"]["base_bytes"] = base_layer_bytes(layout)
        json.dump(out, open(os.path.join(w, "latency.json"), "w"))
        print(json.dumps({k: {x: v[x] for x in ("round_trips", "requests")} for k, v in out.items()}))
        if a.md:
            with open(a.md, "w") as f:
                f.write(latency_md(out, a))
    finally:
        for proc, _ in regs.values():
            proc.terminate()
            proc.wait()


def base_layer_bytes(layout):
    """Sum of the layer sizes of every platform of the latency base."""
    def blob(d):
        return json.load(open(os.path.join(layout, "blobs", "sha256", d.split(":", 1)[1])))
    idx = blob(json.load(open(os.path.join(layout, "index.json")))["manifests"][0]["digest"])
    return sum(l["size"] for m in idx["manifests"] for l in blob(m["digest"])["layers"])


def depth(log, delay_ms):
    """Requests on the critical path as the log shows them: a request that starts a full delay
    after the wave before it began is a new wave (work between requests makes this a floor)."""
    waves, start = 0, None
    for off, *_ in sorted(log):
        if start is None or off >= start + delay_ms:
            waves, start = waves + 1, off
    return waves


def attach_off(binary):
    """The flags that leave the SBOM and provenance out, where `binary` has them: the round
    trips counted are the image's own, comparable with a mockimg that attached nothing."""
    h = subprocess.run([binary, "build", "--help"], capture_output=True, text=True).stdout
    return ["--no-sbom", "--no-provenance"] if "--no-sbom" in h else []


def latency_md(out, a):
    names = {
        "cold": ("cold push, new repository, same registry", "8", "≤ 10 (≤ 30 requests)"),
        "unchanged": ("unchanged rebuild", "5", "≤ 6"),
        "other_registry": ("push to another registry holding the base blobs", "8", "≤ 10"),
        "new_repos": ("mock to a new repository of another registry that holds the base elsewhere (per push, 3 repositories)", "8", "≤ 8"),
    }
    before = json.load(open(a.before)) if a.before else {}
    lines = [f"Delaying proxy ({a.delay} ms per request) in front of each registry; medians of {a.runs}; "
             f"`--jobs {a.jobs}`. Serial round trips = (T at {a.delay} ms − T at 0) / {a.delay} ms; "
             "waves = requests on the critical path as the proxy log shows them (a request starting a "
             "full delay after the previous wave began starts a new one). The difference of times "
             "reads low where CPU work at 0 ms (the layer build) is hidden behind waits at 25 ms.", "",
             "| scenario | serial round trips | waves | requests | before (round trips / waves / requests) "
             "| paper floor | target | T at 0 | T at %d ms |" % a.delay,
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for k, (label, floor, target) in names.items():
        v = out.get(k)
        if v is None:
            continue
        b = before.get(k)
        was = f"{b['round_trips']:.1f} / {b['depth']:.0f} / {b['requests']:.0f}" if b else "–"
        lines.append(f"| {label} | {v['round_trips']:.1f} | {v['depth']:.0f} | {v['requests']:.0f} | {was} "
                     f"| {floor} | {target} | {v['t0']:.2f} s | {v['t_delay']:.2f} s |")
    nr, bnr = out.get("new_repos"), before.get("new_repos")
    if nr:
        kb = lambda x: f"{x / 1000:.0f} kB"
        was = (f"{kb(bnr['bytes_to_b'])} / {kb(bnr['bytes_from_a'])}" if bnr and "bytes_to_b" in bnr else "–")
        lines += ["", f"Bytes per push of a mock to a new repository of the other registry (base layers "
                  f"{kb(nr['base_bytes'])}; medians): received by that registry / downloaded from the base's: "
                  f"**{kb(nr['bytes_to_b'])} / {kb(nr['bytes_from_a'])}** (before: {was}).",
                  "", f"Request log of one such push (at {a.delay} ms per request):", "", "```"]
        for off, m, path, st in nr["log"]:
            lines.append(f"{off:6d}  {m:5s} {path} {st}")
        lines += ["```"]
    lines += ["", f"Request log of one cold push (start offset in ms at {a.delay} ms per request, method, path, status):",
              "", "```"]
    for off, m, path, st in out["cold"]["log"]:
        lines.append(f"{off:6d}  {m:5s} {path} {st}")
    lines += ["```", ""]
    return "\n".join(lines)


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_http(port, timeout=30):
    import urllib.request
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
            return
        except Exception:
            time.sleep(0.1)
    sys.exit(f"registry on {port} did not answer")



# ---------------------------------------------------------------- registry log


def parse_requests(log, offset):
    with open(log, "rb") as f:
        f.seek(offset)
        text = f.read().decode("utf-8", "replace")
    reqs = []
    for line in text.splitlines():
        q = line.find('"')
        if q < 0:
            continue
        rest = line[q + 1:]
        e = rest.find(" HTTP/")
        if e < 0:
            continue
        req = rest[:e]
        m = req.split(" ", 1)
        if len(m) == 2 and m[0] in ("GET", "HEAD", "PUT", "POST", "PATCH", "DELETE"):
            # The status follows the closing quote in the combined log format.
            status = rest[e:].split('"', 1)[1].split()[0] if '"' in rest[e:] else "?"
            reqs.append((m[0], m[1], status))
    return reqs


def cmd_reqcount(a):
    """Requests in the registry access log after byte `offset`, grouped by blob digest."""
    reqs = parse_requests(a.log, a.offset)
    layers = set()
    if a.layout:
        # The base's layer digests: GETs of these would be base layer bodies moving.
        idx = json.load(open(os.path.join(a.layout, "index.json")))
        for m in idx["manifests"]:
            man = json.load(open(os.path.join(a.layout, "blobs", *m["digest"].split(":"))))
            layers.update(l["digest"] for l in man["layers"])
    per_blob, blob_bodies, layer_gets, other = {}, 0, 0, []
    for method, uri, status in reqs:
        path = uri.split("?", 1)[0]
        if "/blobs/sha256:" in path:
            dg = path.rsplit("/", 1)[1]
            per_blob.setdefault(dg, []).append(method)
            if method == "GET" and status.startswith("2"):
                blob_bodies += 1
                layer_gets += dg in layers
        elif "/blobs/uploads/" in path:
            per_blob.setdefault("upload", []).append(method)
        else:
            other.append(f"{method} {path}")
    out = {
        "requests": len(reqs),
        "blobs": len([k for k in per_blob if k != "upload"]),
        "max_per_blob": max((len(v) for k, v in per_blob.items() if k != "upload"), default=0),
        "uploads": len(per_blob.get("upload", [])),
        "blob_gets": blob_bodies,
        "layer_gets": layer_gets,
        "per_blob": {k[:19]: v for k, v in per_blob.items()},
        "other": other,
    }
    print(json.dumps(out))


# ---------------------------------------------------------------- start-up


def cmd_startup(a):
    """Wall time of `mockimg --version` over n runs (fork+exec included), median and minimum,
    next to the same for /bin/true: the floor of spawning anything from here."""
    def series(argv):
        ts = []
        for _ in range(a.n):
            t0 = time.perf_counter()
            subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)
            ts.append(time.perf_counter() - t0)
        return ts
    v, t = series([a.bin, "--version"]), series(["/bin/true"])
    print(json.dumps({"version_ms": statistics.median(v) * 1e3, "version_min_ms": min(v) * 1e3,
                      "true_ms": statistics.median(t) * 1e3, "true_min_ms": min(t) * 1e3}))


def cmd_firstreq(a):
    """Time from spawning `mockimg build … --push 127.0.0.1:PORT/…` to the first HTTP request bytes
    arriving on a listening socket. The socket answers nothing; the process is killed after.
    On a shared machine the minimum is the better estimate of the intrinsic cost; both are given."""
    times, failed = [], 0
    for _ in range(a.n):
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        port = srv.getsockname()[1]
        # The base lives on the listener too: the first request is the one that fetches it.
        cmd = [a.bin, "build", a.config, "--base", f"127.0.0.1:{port}/bench/base:1",
               "--push", f"127.0.0.1:{port}/bench/first:1", "--quiet", "--no-cache", "--retries", "0"]
        env = dict(os.environ, MOCKIMG_CACHE_DIR=a.cache)
        srv.settimeout(10)
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        try:
            c, _ = srv.accept()
            c.settimeout(10)
            c.recv(1)
            times.append(time.perf_counter() - t0)
            c.close()
        except OSError:
            failed += 1
        finally:
            p.kill()
            p.wait()
            srv.close()
    print(json.dumps({"first_request_ms": statistics.median(times) * 1e3 if times else None,
                      "first_request_min_ms": min(times) * 1e3 if times else None,
                      "runs": len(times), "failed": failed}))


def cmd_port(a):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    s.close()


def cmd_wait_tcp(a):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", a.port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)
    sys.exit(f"nothing listens on 127.0.0.1:{a.port} after 20 s")


def cmd_wait_http(a):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", a.port), timeout=1) as s:
                s.sendall(b"GET /v2/ HTTP/1.0\r\n\r\n")
                if s.recv(12).startswith(b"HTTP/1."):
                    return
        except OSError:
            pass
        time.sleep(0.02)
    sys.exit(f"nothing answers HTTP on 127.0.0.1:{a.port} after 20 s")


# ---------------------------------------------------------------- report


def load_results(path):
    rows = []
    with open(path) as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    return rows


def med(xs):
    return statistics.median(xs) if xs else None


def summarise(rows):
    """(scenario, tool) → medians over the timed runs, plus the separate byte-count run."""
    out = {}
    for r in rows:
        key = (r["scenario"], r["tool"])
        s = out.setdefault(key, {"wall": [], "cpu": [], "rss": [], "up": None, "down": None, "order": len(out)})
        if r.get("kind") == "bytes":
            s["up"], s["down"] = r["up"], r["down"]
            continue
        s["wall"].append(r["wall"])
        s["cpu"].append(r["user"] + r["sys"] + r.get("daemon_cpu", 0.0))
        s["rss"].append(r["rss_kb"])
        if "daemon_cpu" in r:
            s["daemon"] = True
    res = {}
    for k, s in out.items():
        res[k] = {
            "runs": len(s["wall"]),
            "wall": med(s["wall"]),
            "wall_min": min(s["wall"]) if s["wall"] else None,
            "wall_max": max(s["wall"]) if s["wall"] else None,
            "cpu": med(s["cpu"]),
            "rss_mb": med(s["rss"]) / 1024 if s["rss"] else None,
            "up": s["up"], "down": s["down"],
            "daemon": s.get("daemon", False),
            "order": s["order"],
        }
    return res


def fmt_s(x):
    if x is None:
        return "–"
    return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s"


def fmt_mb(b):
    if b is None:
        return "–"
    return f"{b / 1e6:.2f} MB" if b >= 10_000 else f"{b / 1e3:.1f} kB"


SCEN_TITLES = {
    "1-push-same": "(1) build + push, same registry, new repo, new config (cold)",
    "1-push-same-warm": "(1′) the same with the base already pulled / stored locally",
    "2-rebuild": "(2) rebuild + push, unchanged input",
    "3-push-other": "(3) build + push to a second (empty) registry",
    "4-export-cold": "(4) export to a tarball, empty cache",
    "4-export-warm": "(4) export to a tarball, warm cache",
    "5-layer": "(5) layer for the 100 MB fixture (tiny base, OCI layout out)",
}


def cmd_report(a):
    rows = load_results(a.results)
    meta = json.load(open(a.meta))
    S = summarise(rows)
    scen = sorted({k[0] for k in S}, key=lambda s: min(v["order"] for k, v in S.items() if k[0] == s))
    lines = []
    lines.append("| scenario | tool | runs | wall (median, min–max) | CPU | peak RSS | bytes up / down | vs fastest peer |")
    lines.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
    ratios = {}
    for sc in scen:
        tools = sorted([k[1] for k in S if k[0] == sc], key=lambda t: S[(sc, t)]["order"])
        peers = [t for t in tools if not t.startswith("mockimg") and S[(sc, t)]["wall"]]
        fastest = min(peers, key=lambda t: S[(sc, t)]["wall"]) if peers else None
        for t in tools:
            v = S[(sc, t)]
            ratio = ""
            # "mockimg -6" is compared with the peers at the same level ("tar+gzip -6") if any.
            lvl = t.rsplit(" ", 1)[-1] if t.startswith("mockimg ") else None
            same = [p for p in peers if lvl and p.endswith(" " + lvl)]
            ref = min(same, key=lambda p: S[(sc, p)]["wall"]) if same else fastest
            if t.startswith("mockimg") and ref and v["wall"]:
                r = S[(sc, ref)]["wall"] / v["wall"]
                fastest_for_t = ref
                ratios[(sc, t)] = (r, fastest_for_t)
                ratio = f"**{r:.2f}×** faster than {ref}" if r >= 1 else f"**{1 / r:.2f}×** slower than {ref}"
            cpu = fmt_s(v["cpu"]) + (" ¹" if v["daemon"] else "")
            rss = f"{v['rss_mb']:.0f} MB" if v["rss_mb"] is not None else "–"
            rng = f"{fmt_s(v['wall'])} ({fmt_s(v['wall_min'])}–{fmt_s(v['wall_max'])})" if v["runs"] > 1 else fmt_s(v["wall"])
            by = f"{fmt_mb(v['up'])} / {fmt_mb(v['down'])}" if v["up"] is not None else "–"
            lines.append(f"| {SCEN_TITLES.get(sc, sc)} | {t} | {v['runs']} | {rng} | {cpu} | {rss} | {by} | {ratio} |")
    table = "\n".join(lines)

    extra = meta.get("extra", {})
    base = meta["base_bytes"]
    targets = []

    def row(name, target, measured, ok):
        targets.append(f"| {name} | {target} | {measured} | {'met' if ok else '**missed**'} |")

    def get(sc, t):
        return S.get((sc, t))

    r = ratios.get(("1-push-same", "mockimg"))
    if r:
        row("(1) speed", "≥ 20× the fastest peer", f"{r[0]:.1f}× ({r[1]})", r[0] >= 20)
    m1 = get("1-push-same", "mockimg")
    if m1 and m1["up"] is not None:
        moved = m1["up"] + m1["down"] - extra.get("layer_bytes_1", 0)
        row("(1) base bytes on the wire", f"≤ 1 % of the base ({fmt_mb(base / 100)})",
            f"{fmt_mb(max(moved, 0))} besides the {fmt_mb(extra.get('layer_bytes_1', 0))} new layer "
            f"({100 * max(moved, 0) / base:.3f} %)", moved <= base / 100)
    rc = extra.get("rebuild_requests")
    if rc:
        row("(2) requests", "≤ 2 per blob, no blob body moved",
            f"max {rc['max_per_blob']} per blob over {rc['blobs']} blobs, {rc['uploads']} upload requests, "
            f"{rc['layer_gets']} layer GETs ({rc['blob_gets'] - rc['layer_gets']} config GETs: the base config is "
            f"read to derive the new one); {rc['requests']} requests in all",
            rc["max_per_blob"] <= 2 and rc["uploads"] == 0 and rc["layer_gets"] == 0)
    m3, s3 = get("3-push-other", "mockimg"), get("3-push-other", "skopeo-copy")
    if m3 and s3:
        q = m3["wall"] / s3["wall"]
        row("(3) speed", "within 1.3× of skopeo copy", f"{q:.2f}× skopeo's time", q <= 1.3)
        row("(3) peak RSS", "< 64 MB", f"{m3['rss_mb']:.0f} MB", m3["rss_mb"] < 64)
    mw, cp = get("4-export-warm", "mockimg"), get("4-export-warm", "cp-blobs")
    if mw and cp:
        q = mw["wall"] / cp["wall"]
        row("(4) warm export", "within 1.5× of cp", f"{q:.2f}× cp's time", q <= 1.5)
    cps = get("4-export-warm", "cp-blobs+fsync")
    if mw and cps:
        q = mw["wall"] / cps["wall"]
        row("(4) warm export (context)", "the same against a durable copy (cp + fsync; mockimg fsyncs its archive)",
            f"{q:.2f}× the time of cp + fsync", q <= 1.5)
    mc, sc4 = get("4-export-cold", "mockimg"), get("4-export-cold", "skopeo-oci-archive")
    if mc and sc4:
        q = mc["wall"] / sc4["wall"]
        row("(4) cold export", "within 1.2× of skopeo → oci-archive:", f"{q:.2f}× skopeo's time", q <= 1.2)
    st = extra.get("startup")
    if st:
        row("start-up", "`--version` ≤ 5 ms",
            f"median {st['version_ms']:.1f} ms, best {st['version_min_ms']:.1f} ms "
            f"(spawning /bin/true: {st['true_ms']:.1f} / {st['true_min_ms']:.1f} ms)", st["version_ms"] <= 5)
    fr = extra.get("firstreq")
    if fr and fr["first_request_ms"] is not None:
        row("start-up", "first request ≤ 20 ms",
            f"median {fr['first_request_ms']:.1f} ms, best {fr['first_request_min_ms']:.1f} ms over {fr['runs']} runs",
            fr["first_request_ms"] <= 20)

    lv = extra.get("levels", [])
    level_lines = []
    if lv:
        level_lines.append("| gzip level | wall (median) | CPU | layer size | size / input | MB/s of input per wall s | per CPU s | GNU gzip size (same tar) |")
        level_lines.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
        gzs = extra.get("gzip_sizes", {})
        for l in lv:
            v = get("5-layer", f"mockimg -{l['level']}")
            if not v:
                continue
            level_lines.append(
                f"| {l['level']} | {fmt_s(v['wall'])} | {fmt_s(v['cpu'])} | {fmt_mb(l['size'])} | "
                f"{l['size'] / extra['fixture_input_bytes']:.3f} | {extra['fixture_input_bytes'] / 1e6 / v['wall']:.0f} | "
                f"{extra['fixture_input_bytes'] / 1e6 / v['cpu']:.0f} | {fmt_mb(gzs.get(str(l['level'])))} |")

    md = []
    md.append(f"_Generated by `scripts/bench` on {meta['date']} ({meta['mode']}; mockimg {meta['version']})._\n")
    md.append("### Machine\n")
    for k in ("cpu", "nproc", "memory", "disk", "kernel", "tools"):
        md.append(f"- {k}: {meta['machine'][k]}")
    md.append(f"- base: {fmt_mb(base)} compressed in {meta['layers']} layers; config dir: {meta['config_files']} files, "
              f"{fmt_mb(meta['config_bytes'])}; fixture variant: + {fmt_mb(extra.get('fixture_bytes', 0))}")
    md.append(f"- bench wall time (after the release build): {meta['elapsed']:.0f} s\n")
    md.append("### Results\n")
    md.append(table)
    md.append("\n¹ docker: the CLI does no work; CPU includes the daemon's (`dockerd` and its children), "
              "read from /proc before and after, and its peak RSS is not measured (only the CLI's).\n")
    md.append("### Targets\n")
    md.append("| target | wanted | measured | |")
    md.append("| --- | --- | --- | --- |")
    md.extend(targets)
    if level_lines:
        md.append("\n### Layer compression (100 MB fixture)\n")
        md.extend(level_lines)
    if rc:
        md.append("\n### Requests of an unchanged rebuild (registry access log)\n")
        md.append("```")
        for k, v in rc["per_blob"].items():
            md.append(f"{k}…  {' '.join(v)}")
        for o in rc["other"]:
            md.append(o)
        md.append("```")
    gen = "\n".join(md)

    text = open(a.md).read() if os.path.exists(a.md) else ""
    begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"
    if begin in text and end in text:
        text = text[: text.index(begin) + len(begin)] + "\n" + gen + "\n" + text[text.index(end):]
    else:
        text = text + f"\n{begin}\n{gen}\n{end}\n"
    with open(a.md, "w") as f:
        f.write(text)
    print(table)
    print()
    print("\n".join(["| target | wanted | measured | |", "| --- | --- | --- | --- |"] + targets))
    if level_lines:
        print()
        print("\n".join(level_lines))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("seed-base"); s.add_argument("out"); s.add_argument("--mb", type=int, default=300)
    s.add_argument("--layers", type=int, default=5); s.add_argument("--seed", type=int, default=1)
    s.add_argument("--tag", default="base"); s.set_defaults(f=cmd_seed_base)
    s = sub.add_parser("seed-tiny"); s.add_argument("out"); s.add_argument("--tag", default="base"); s.set_defaults(f=cmd_seed_tiny)
    s = sub.add_parser("config-dir"); s.add_argument("out"); s.add_argument("--files", type=int, default=200)
    s.add_argument("--mb", type=int, default=3); s.add_argument("--big-mb", type=int, default=0)
    s.add_argument("--seed", type=int, default=7); s.set_defaults(f=cmd_config_dir)
    s = sub.add_parser("proxy"); s.add_argument("listen", type=int); s.add_argument("upstream"); s.add_argument("state")
    s.set_defaults(f=cmd_proxy)
    s = sub.add_parser("bytes"); s.add_argument("state", nargs="+"); s.set_defaults(f=cmd_bytes)
    s = sub.add_parser("daemon-cpu"); s.set_defaults(f=cmd_daemon_cpu)
    s = sub.add_parser("wait-tcp"); s.add_argument("port", type=int); s.set_defaults(f=cmd_wait_tcp)
    s = sub.add_parser("reqcount"); s.add_argument("log"); s.add_argument("offset", type=int)
    s.add_argument("--layout", help="OCI layout of the base (its layer digests)"); s.set_defaults(f=cmd_reqcount)
    s = sub.add_parser("startup"); s.add_argument("bin"); s.add_argument("--n", type=int, default=30); s.set_defaults(f=cmd_startup)
    s = sub.add_parser("firstreq"); s.add_argument("bin"); s.add_argument("--config", required=True)
    s.add_argument("--cache", required=True)
    s.add_argument("--n", type=int, default=10); s.set_defaults(f=cmd_firstreq)
    s = sub.add_parser("port"); s.set_defaults(f=cmd_port)
    s = sub.add_parser("latency"); s.add_argument("mockimg"); s.add_argument("workdir")
    s.add_argument("--delay", type=int, default=25); s.add_argument("--runs", type=int, default=3)
    s.add_argument("--jobs", type=int, default=4); s.add_argument("--md")
    s.add_argument("--before", help="latency.json of an earlier binary, shown beside"); s.set_defaults(f=cmd_latency)
    s = sub.add_parser("wait-http"); s.add_argument("port", type=int); s.set_defaults(f=cmd_wait_http)
    s = sub.add_parser("report"); s.add_argument("results"); s.add_argument("meta"); s.add_argument("md")
    s.set_defaults(f=cmd_report)
    a = p.parse_args()
    a.f(a)


if __name__ == "__main__":
    main()
