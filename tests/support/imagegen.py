#!/ usr / bin / env python3
"""imagegen: deterministic synthetic OCI images for silo's integration tests and benchmarks.

Generates realistic-looking images (gzip tar layers with incompressible "binary" files and
compressible text files, OCI image configs, OCI manifests, multi-arch OCI image indexes for
linux/amd64 + linux/arm64) into one OCI image layout, then pushes every image into a
registry with skopeo. Standard library only.

Everything is seeded: the same arguments give byte-identical blobs (fixed tar mtimes,
owners and entry order, gzip header mtime 0), so digests are stable across runs on one
machine (the gzip bytes depend on the zlib version).

Image sets (see catalog()):
  --set 1   base distro images (debian: 3 base layers, alpine: 1), language runtimes built
            on them (python, a JDK), and apps built on those, so the base layers are shared
            by many images;
both multi - arch indexes(linux / amd64 + linux / arm64) and single - arch manifests;
arch - independent layers(source, jars)
shared inside an index;
one image with two tags;
a whiteout; symlinks.
  --set 2   the "next day" of set 1 for incremental air-gap tests: the same bases and
            runtimes, unchanged images under the same tags (same digests), new versions of
            some apps under new tags (dependency layers identical to set 1, app layers
            changed a little), and a few new images. Set 2 never re-points a tag of set 1
            at other content, so both sets can live in one registry.
Sizes:
  --size small  8 (set 1) / 10 (set 2) references, about 4 MiB of blobs, gzip level 6
                (zlib throughout);
well under a second to generate.--size large 28 / 32 references,
    about 1.1 / 1.2 GiB of unique compressed blobs.Layers are generated in parallel(--jobs);
text is deflated at level 1 and
    random bytes go into deflate stored blocks directly(zlib would spend ~25 MB / s failing to compress them and
                                                        then store them anyway)
    : one ordinary gzip member either way.

      Output : one reference per line(HOST
                                      : PORT / REPO
                                      : TAG, or REPO
                                      : TAG with-- no - push and no-- registry) on stdout,
and into-- list FILE.Progress and totals go to stderr.--summary FILE writes JSON with each image
                                  's digest, platforms and blobs, and every blob' s size,
so a test can tell which blobs set 2 adds to set 1.

    The OCI
    layout(kept with-- oci - dir DIR or --work DIR, else made in a temporary directory and removed) names each image
    "REPO:TAG"(annotation org.opencontainers.image.ref.name),
so
`skopeo copy oci : DIR : apps / python - app : 1.0 ...` and `umoci unpack-- image DIR : REPO
    : TAG` work.Generating into a layout that already holds layers reuses them(imagegen - cache.json),
so set 2 after set 1 into the same-- oci - dir only generates the new layers; index.json then
names the images of both sets.
"""

import argparse
import hashlib
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zlib
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

KIB = 1024
MIB = 1024 * KIB

GENERATOR_VERSION = 1  # bump when the bytes a layer spec produces change (invalidates caches)
TAR_MTIME = 1704067200  # 2024-01-01T00:00:00Z, every tar entry
CREATED = {1: "2024-01-01T00:00:00Z", 2: "2024-02-01T00:00:00Z"}

MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"

ARCH_DIRS = {"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}

WORDS = (
    "alpha beta gamma delta epsilon config server client request response handler buffer "
    "stream chunk object digest manifest index layer registry blob upload download retry "
    "timeout socket connect listen accept thread worker queue task result status error "
    "warning info debug trace module package import export function return value string "
    "number array object true false null default option setting path file directory "
    "mount volume network route table column record cache store commit rollback begin "
    "transaction lock unlock read write open close flush sync seek offset length size "
    "count total limit quota user group owner permission mode access token secret key "
    "certificate verify sign encrypt decrypt hash compress decompress encode decode parse "
    "format template render document section header footer title version release build "
    "install remove update upgrade service daemon process signal event callback promise "
    "future async await yield lambda closure class struct interface method property field "
    "library binary source target output input environment variable argument parameter"
).split()
#-- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- --
#Layer specifications
#-- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- --

class Layer:
    """A layer: an ordered list of entries, each (path, kind, size, seed, target).

    kind: "dir", "file" (incompressible bytes), "text" (compressible text),
    "symlink" (target), "whiteout" (an empty .wh. file). The content of a file is
    derived from its seed alone, so a derived layer that keeps a file's seed keeps
    its bytes.
    """

    def __init__(self, key, entries, created_by, level, fast):
        self.key = key
        self.entries = entries
        self.created_by = created_by
        self.level = level
        self.fast = fast

    def fingerprint(self):
        body = json.dumps([self.entries, self.level, self.fast, GENERATOR_VERSION],
                          separators=(",", ":"))
        return hashlib.sha256(body.encode()).hexdigest()

    def uncompressed_estimate(self):
        return sum(e[2] for e in self.entries)


def _split(rng, total, count):
    """Splits total bytes into count sizes with a heavy tail (a few big files)."""
    if total <= 0 or count <= 0:
        return []
    weights = [rng.paretovariate(1.2) for _ in range(count)]
    s = sum(weights)
    sizes = [int(total * w / s) for w in weights]
    sizes[0] += total - sum(sizes)
    return sizes


def make_layer(key, created_by, level, fast, *, binary=0, text=0, bin_dir="usr/lib",
               text_dir="usr/share/doc", symlinks=(), whiteouts=()):
    """A layer of about `binary` incompressible and `text` compressible bytes."""
    rng = random.Random("files:" + key)
    entries = []
    nbin = min(48, max(1, int(math.sqrt(binary / 4096)))) if binary else 0
    for i, size in enumerate(_split(rng, binary, nbin)):
        name = "%s/lib%s%s-%d.so.%d" % (bin_dir, rng.choice(WORDS), rng.choice(WORDS), i,
                                        rng.randrange(1, 9))
        entries.append([name, "file", size, "%s:%s" % (key, name), ""])
    ntext = min(400, max(1, int(math.sqrt(text / 256)))) if text else 0
    for i, size in enumerate(_split(rng, text, ntext)):
        ext = rng.choice([".txt", ".conf", ".py", ".md", ".json", ".h"])
        name = "%s/%s/%s-%d%s" % (text_dir, rng.choice(WORDS), rng.choice(WORDS), i, ext)
        entries.append([name, "text", size, "%s:%s" % (key, name), ""])
    for link, target in symlinks:
        entries.append([link, "symlink", 0, "", target])
    for path in whiteouts:
        d, b = os.path.split(path)
        entries.append([os.path.join(d, ".wh." + b), "whiteout", 0, "", ""])
    return Layer(key, _with_dirs(entries), created_by, level, fast)


def derive_layer(parent, key, created_by, change=0.3, grow=0.05):
    """A new version of `parent`: most files keep their bytes, `change` of them get new
    content (sizes moved by up to 10%), and about `grow` more bytes of new files."""
    rng = random.Random("derive:" + key)
    entries = []
    total = 0
    for path, kind, size, seed, target in parent.entries:
        if kind in ("file", "text") and rng.random() < change:
            size = max(1, int(size * rng.uniform(0.9, 1.1)))
            seed = "%s:%s" % (key, path)
        if kind != "dir":
            entries.append([path, kind, size, seed, target])
        if kind in ("file", "text"):
            total += size
    files = [e for e in entries if e[1] in ("file", "text")]
    if files and grow > 0:
        like = files[rng.randrange(len(files))]
        d = os.path.dirname(like[0])
        name = "%s/%s-new-%s%s" % (d, rng.choice(WORDS), key.replace("/", "-"),
                                   os.path.splitext(like[0])[1])
        entries.append([name, like[1], max(1, int(total * grow)), "%s:%s" % (key, name), ""])
    return Layer(key, _with_dirs(entries), created_by, parent.level, parent.fast)


def _with_dirs(entries):
    """Adds every parent directory and sorts by path (parents sort before children)."""
    have = {e[0] for e in entries}
    dirs = set()
    for e in entries:
        d = os.path.dirname(e[0])
        while d and d not in have and d not in dirs:
            dirs.add(d)
            d = os.path.dirname(d)
    out = [[d, "dir", 0, "", ""] for d in dirs] + [list(e) for e in entries]
    out.sort(key=lambda e: e[0])
    return out

#-- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- --
#Content and tar / gzip writing(runs in worker processes)
#-- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- --

def _make_line_pool():
    rng = random.Random("imagegen-line-pool")
    pool = []
    for _ in range(2048):
        indent = "    " * rng.randrange(0, 3)
        kind = rng.random()
        if kind < 0.3:
            line = "%s%s = %s" % (indent, rng.choice(WORDS),
                                  " ".join(rng.choices(WORDS, k=rng.randrange(1, 4))))
        elif kind < 0.6:
            line = "%s%s(%s)" % (indent, "_".join(rng.choices(WORDS, k=2)),
                                 ", ".join(rng.choices(WORDS, k=rng.randrange(0, 4))))
        else:
            line = indent + " ".join(rng.choices(WORDS, k=rng.randrange(4, 14))).capitalize() + "."
        if rng.random() < 0.2:
            line += " # %d" % rng.randrange(100000)
        pool.append(line + "\n")
    return pool


LINE_POOL = _make_line_pool()  # about 130 KiB of lines; files pick lines from it


def _text_chunks(seed, size):
    """Compressible text (gzip -6 leaves about 25%, -1 about 30%), a function of the seed alone."""
    rng = random.Random(seed)
    remaining = size
    while remaining > 0:
        k = min(4096, remaining // 16 + 1)
        piece = "".join(rng.choices(LINE_POOL, k=k)).encode()[:min(remaining, 256 * KIB)]
        remaining -= len(piece)
        yield piece


def _random_chunks(seed, size):
    """Incompressible bytes, a function of the seed alone."""
    rng = random.Random(seed)
    remaining = size
    while remaining > 0:
        n = min(remaining, MIB)
        remaining -= n
        yield rng.randbytes(n)


class _Sink:
    """Hashes the tar stream (diff_id), gzips it, hashes and writes the blob.

    Normal mode: one zlib gzip stream at `level`. Fast mode (large sets): incompressible
    data is written as deflate stored blocks (what zlib itself emits for random bytes, but
    without spending 40 ns a byte failing to find matches) and everything else is deflated
    at `level`; the result is one ordinary single-member gzip stream.
    """

    def __init__(self, out, level, fast):
        self.out = out
        self.level = level
        self.fast = fast
        self.diff = hashlib.sha256()
        self.blob = hashlib.sha256()
        self.size = 0
        if fast:
            self.crc = 0
            self.isize = 0
            self.z = None  # raw deflate of the current compressible run
#gzip header as zlib writes it : no name, mtime 0, XFL 4(fastest)at level 1, OS unix
            self._emit(b"\x1f\x8b\x08\x00\x00\x00\x00\x00" + (b"\x04" if level == 1 else b"\x00") + b"\x03")
        else:
#wbits 31 : gzip wrapper with mtime 0, no file name.
            self.z = zlib.compressobj(level, zlib.DEFLATED, 31)

    def write(self, data, incompressible=False):
        self.diff.update(data)
        if not self.fast:
            self._emit(self.z.compress(data))
            return
        self.crc = zlib.crc32(data, self.crc)
        self.isize += len(data)
        if not incompressible:
            if self.z is None:
                self.z = zlib.compressobj(self.level, zlib.DEFLATED, -15)
            self._emit(self.z.compress(data))
            return
        if self.z is not None:
#Ends the compressed run on a byte boundary(an empty stored block follows).
            self._emit(self.z.flush(zlib.Z_SYNC_FLUSH))
            self.z = None
        view = memoryview(data)
        for off in range(0, len(view), 65535):
            block = view[off:off + 65535]
            n = len(block)
            self._emit(bytes((0, n & 0xFF, n >> 8, ~n & 0xFF, (~n >> 8) & 0xFF)))
            self._emit(block)

    def _emit(self, c):
        if c:
            self.blob.update(c)
            self.out.write(c)
            self.size += len(c)

    def close(self):
        if not self.fast:
            self._emit(self.z.flush())
            return
        if self.z is not None:
            self._emit(self.z.flush(zlib.Z_FINISH))  # final block
        else:
            self._emit(b"\x01\x00\x00\xff\xff")  # empty final stored block
        self._emit(self.crc.to_bytes(4, "little") + (self.isize & 0xFFFFFFFF).to_bytes(4, "little"))


def _tar_header(path, kind, size, target):
    ti = tarfile.TarInfo(path)
    ti.mtime = TAR_MTIME
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    if kind == "dir":
        ti.type, ti.mode = tarfile.DIRTYPE, 0o755
    elif kind == "symlink":
        ti.type, ti.mode, ti.linkname = tarfile.SYMTYPE, 0o777, target
    else:
        ti.type, ti.size = tarfile.REGTYPE, size
        ti.mode = 0o755 if kind == "file" and "/bin/" in "/" + path else 0o644
    return ti.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def write_layer(entries, level, fast, blobs_dir):
    """Writes one gzip tar layer into blobs_dir; returns (digest, size, diff_id)."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-layer-", dir=blobs_dir)
    try:
        with os.fdopen(fd, "wb", buffering=MIB) as out:
            sink = _Sink(out, level, fast)
            written = 0
            for path, kind, size, seed, target in entries:
                if kind == "whiteout":
                    size = 0
                hdr = _tar_header(path, kind, size if kind in ("file", "text", "whiteout") else 0, target)
                sink.write(hdr)
                written += len(hdr)
                if kind in ("file", "text") and size > 0:
                    if kind == "file":
                        for chunk in _random_chunks(seed, size):
                            sink.write(chunk, incompressible=True)
                    else:
                        for chunk in _text_chunks(seed, size):
                            sink.write(chunk)
                    pad = (-size) % 512
                    if pad:
                        sink.write(b"\0" * pad)
                    written += size + pad
#End of archive : two zero blocks, then pad to a 10 KiB record like tar(1).
            end = 1024 + (-(written + 1024)) % tarfile.RECORDSIZE
            sink.write(b"\0" * end)
            sink.close()
        digest = "sha256:" + sink.blob.hexdigest()
        final = os.path.join(blobs_dir, sink.blob.hexdigest())
        os.replace(tmp, final)
        return digest, sink.size, "sha256:" + sink.diff.hexdigest()
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _write_layer_task(args):
    key, entries, level, fast, blobs_dir = args
    return key, write_layer(entries, level, fast, blobs_dir)

#-- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- --
#The catalog : which images each set holds
#-- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- --

class Image:
    """A tagged image: one arch gives a manifest, two give an index of manifests."""

    def __init__(self, repo, tags, arches, layers_for, config, created):
        self.repo = repo
        self.created = created
        self.tags = tags
        self.arches = arches
        self.layers_for = layers_for  # arch -> [Layer]
        self.config = config          # Env/Cmd/WorkingDir/Labels


def catalog(set_no, size):
    """The images of one set. Layers are shared by object identity and by key."""
    small = size == "small"
    u = KIB if small else 64 * KIB  # size unit
    level = 6 if small else 1
    layers = {}

    def L(key, created_by, **kw):
        if key not in layers:
            layers[key] = make_layer(key, created_by, level, not small, **{
                k: (v * u if k in ("binary", "text") else v) for k, v in kw.items()})
        return layers[key]

    def D(parent, key, created_by, **kw):
        if key not in layers:
            layers[key] = derive_layer(parent, key, created_by, **kw)
        return layers[key]

#Base distro layers, one set per architecture.
    def debian(a):
        ad = ARCH_DIRS[a]
        return [
            L("debian12-rootfs/" + a, "ADD rootfs.tar.xz / # debian 12", binary=300, text=200,
              bin_dir="usr/lib/" + ad, text_dir="usr/share",
              symlinks=[("bin", "usr/bin"), ("lib", "usr/lib"), ("sbin", "usr/sbin")]),
            L("debian12-libs/" + a, "RUN apt-get install -y ca-certificates libssl3 tzdata",
              binary=400, text=60, bin_dir="usr/lib/" + ad, text_dir="usr/share/zoneinfo"),
            L("debian12-locales/" + a, "RUN apt-get install -y locales && locale-gen",
              binary=40, text=120, bin_dir="usr/lib/locale", text_dir="usr/share/i18n"),
        ]

    def alpine(a):
        return [L("alpine319-rootfs/" + a, "ADD alpine-minirootfs.tar.gz /", binary=150, text=30,
                  bin_dir="lib", text_dir="etc")]

    def python(a):
        return debian(a) + [
            L("python311/" + a, "RUN install python 3.11.7", binary=250, text=350,
              bin_dir="usr/local/lib/python3.11/lib-dynload", text_dir="usr/local/lib/python3.11")]

    def jdk(a):
        return debian(a) + [
            L("jdk17/" + a, "ADD openjdk-17 /opt/java", binary=700, text=20,
              bin_dir="opt/java/lib", text_dir="opt/java/conf")]

    def cfg(cmd, workdir="/", labels=None, env=()):
        return {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] + list(env),
                "Cmd": cmd, "WorkingDir": workdir, "Labels": labels or {}}

    both = ["amd64", "arm64"]
    images = []

    def img(repo, tags, arches, layers_for, config, created=CREATED[1]):
#Images that set 2 adds carry set 2's date; the others are identical in both sets.
        images.append(Image(repo, tags, arches, layers_for, config, created))

#-- - Set 1 layers of the apps(set 2 derives some from them) -- -
    pyapp_code_10 = L("pyapp-code/1.0", "COPY app/ /app", text=60, text_dir="app")
    pyapp_deps = {a: L("pyapp-deps/1.0/" + a, "RUN pip install -r requirements.txt", binary=100,
                       text=50, bin_dir="usr/local/lib/python3.11/site-packages/_native",
                       text_dir="usr/local/lib/python3.11/site-packages") for a in both}
    worker_code = L("pyworker-code/1.0", "COPY worker/ /srv/worker", text=40, text_dir="srv/worker")
    worker_cleanup = L("pyworker-cleanup/1.0", "RUN rm -rf /usr/local/lib/python3.11/test", text=1,
                       text_dir="etc/worker", whiteouts=["usr/local/lib/python3.11/test"])
    java_deps = L("javasvc-deps/1.0", "COPY lib/*.jar /app/lib/", binary=200, bin_dir="app/lib")
    java_app_10 = L("javasvc-app/1.0", "COPY app.jar /app/app.jar", binary=30, text=5,
                    bin_dir="app", text_dir="app/config")
    tool_bin_10 = {a: L("tool-bin/1.0/" + a, "COPY tool /usr/local/bin/tool", binary=120,
                        bin_dir="usr/local/bin") for a in both}

#Images that both sets hold unchanged.
    img("library/debian", ["12"], both, debian, cfg(["bash"]))
    img("library/alpine", ["3.19"], both, alpine, cfg(["/bin/sh"]))
    img("library/python", ["3.11"], both, python, cfg(["python3"], env=["PYTHON_VERSION=3.11.7"]))
    img("apps/python-worker", ["1.0"], ["amd64"],
        lambda a: python(a) + [worker_code, worker_cleanup],
        cfg(["python3", "-m", "worker"], "/srv/worker", {"app": "python-worker"}))
    img("apps/tool", ["1.0"], both, lambda a: alpine(a) + [tool_bin_10[a]],
        cfg(["/usr/local/bin/tool"], labels={"app": "tool", "version": "1.0"}))

    if set_no == 1:
        img("apps/python-app", ["1.0", "latest"], both,
            lambda a: python(a) + [pyapp_deps[a], pyapp_code_10],
            cfg(["python3", "/app/main.py"], "/app", {"app": "python-app", "version": "1.0"}))
        img("apps/java-svc", ["1.0"], ["amd64"], lambda a: jdk(a) + [java_deps, java_app_10],
            cfg(["java", "-jar", "/app/app.jar"], "/app", {"app": "java-svc", "version": "1.0"}))
    else:
#New versions under new tags : unchanged dependency layers, app layers changed a little.
        pyapp_code_11 = D(pyapp_code_10, "pyapp-code/1.1", "COPY app/ /app")
        img("apps/python-app", ["1.1"], both,
            lambda a: python(a) + [pyapp_deps[a], pyapp_code_11],
            cfg(["python3", "/app/main.py"], "/app", {"app": "python-app", "version": "1.1"}), CREATED[2])
        java_app_11 = D(java_app_10, "javasvc-app/1.1", "COPY app.jar /app/app.jar")
        img("apps/java-svc", ["1.1"], ["amd64"], lambda a: jdk(a) + [java_deps, java_app_11],
            cfg(["java", "-jar", "/app/app.jar"], "/app", {"app": "java-svc", "version": "1.1"}), CREATED[2])
        tool_bin_11 = {a: D(tool_bin_10[a], "tool-bin/1.1/" + a, "COPY tool /usr/local/bin/tool",
                            change=0.5) for a in both}
        img("apps/tool", ["1.1", "stable"], both, lambda a: alpine(a) + [tool_bin_11[a]],
            cfg(["/usr/local/bin/tool"], labels={"app": "tool", "version": "1.1"}), CREATED[2])
#A brand - new image on a shared base.
        goapi = {a: L("goapi-bin/1.0/" + a, "COPY go-api /usr/local/bin/go-api", binary=180,
                      text=10, bin_dir="usr/local/bin", text_dir="etc/go-api") for a in both}
        img("apps/go-api", ["1.0"], both, lambda a: alpine(a) + [goapi[a]],
            cfg(["/usr/local/bin/go-api"], labels={"app": "go-api"}), CREATED[2])

    if not small:
#Many services on the shared bases : the bulk of the large set's bytes.
        rng = random.Random("catalog-large")
        bases = [("debian", debian), ("python", python), ("jdk", jdk), ("alpine", alpine)]
        for n in range(1, 21):
            base_name, base = bases[rng.randrange(len(bases))]
            arches = both if rng.random() < 0.4 else ["amd64"]
            binary = rng.randrange(250, 900)
            text = rng.randrange(10, 120)
            name = "svc-%02d" % n
            neutral = base_name in ("python", "jdk")  # code and jars are arch-independent
            app = {}
            for a in arches:
                k = "%s/1.0" % name if neutral else "%s/1.0/%s" % (name, a)
                app[a] = L(k, "COPY %s /srv/%s" % (name, name), binary=binary, text=text,
                           bin_dir="srv/%s/lib" % name, text_dir="srv/%s/conf" % name)
            conf = L("%s-conf/1.0" % name, "COPY conf /etc/%s" % name, text=8,
                     text_dir="etc/" + name)
            version = "1.0"
            if set_no == 2 and n % 4 == 0:
                version = "1.1"
                app = {a: D(app[a], app[a].key.replace("/1.0", "/1.1"),
                            "COPY %s /srv/%s" % (name, name), change=0.2) for a in arches}
            img("apps/" + name, [version], arches,
                lambda a, base=base, app=app, conf=conf: base(a) + [app[a], conf],
                cfg(["/srv/%s/run" % name], "/srv/" + name, {"app": name, "version": version}),
                CREATED[1] if version == "1.0" else CREATED[2])
        if set_no == 2:
            for n in (21, 22):
                name = "svc-%02d" % n
                app = {a: L("%s/1.0/%s" % (name, a), "COPY %s /srv/%s" % (name, name),
                            binary=300, text=40, bin_dir="srv/%s/lib" % name,
                            text_dir="srv/%s/conf" % name) for a in both}
                img("apps/" + name, ["1.0"], both,
                    lambda a, app=app: debian(a) + [app[a]],
                    cfg(["/srv/%s/run" % name], "/srv/" + name, {"app": name}), CREATED[2])
    return images

#-- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- --
#OCI layout writing
#-- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- --

def canonical(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


class Layout:
    def __init__(self, path):
        self.path = path
        self.blobs = os.path.join(path, "blobs", "sha256")
        os.makedirs(self.blobs, exist_ok=True)
        with open(os.path.join(path, "oci-layout"), "w") as f:
            f.write('{"imageLayoutVersion":"1.0.0"}')
        self.cache_path = os.path.join(path, "imagegen-cache.json")
        try:
            with open(self.cache_path) as f:
                self.cache = json.load(f)
        except (OSError, ValueError):
            self.cache = {}

    def has(self, digest, size):
        p = os.path.join(self.blobs, digest.split(":", 1)[1])
        return os.path.exists(p) and os.path.getsize(p) == size

    def put(self, data):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        p = os.path.join(self.blobs, digest.split(":", 1)[1])
        if not os.path.exists(p):
            tmp = p + ".tmp"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, p)
        return {"digest": digest, "size": len(data)}

    def save_cache(self):
        tmp = self.cache_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.cache, f, indent=1, sort_keys=True)
        os.replace(tmp, self.cache_path)

    def write_index(self, refs):
        """refs: ref name -> descriptor. Keeps other refs already in index.json."""
        index_path = os.path.join(self.path, "index.json")
        manifests = []
        try:
            with open(index_path) as f:
                for m in json.load(f).get("manifests", []):
                    if m.get("annotations", {}).get(REF_NAME) not in refs:
                        manifests.append(m)
        except (OSError, ValueError):
            pass
        for name, desc in refs.items():
            d = dict(desc)
            d["annotations"] = {REF_NAME: name}
            manifests.append(d)
        manifests.sort(key=lambda m: m.get("annotations", {}).get(REF_NAME, ""))
        with open(index_path + ".tmp", "wb") as f:
            f.write(canonical({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": manifests}))
        os.replace(index_path + ".tmp", index_path)


def generate(images, layout, jobs, log):
    """Writes every layer, config, manifest and index; returns the summary of each image."""
#Unique layers, by key(a key always names the same entries).
    unique = {}
    for im in images:
        for a in im.arches:
            for layer in im.layers_for(a):
                unique.setdefault(layer.key, layer)
    results = {}
    todo = []
    for key, layer in unique.items():
        hit = layout.cache.get(layer.fingerprint())
        if hit and layout.has(hit[0], hit[1]):
            results[key] = tuple(hit)
        else:
            todo.append(layer)
    todo.sort(key=lambda la: -la.uncompressed_estimate())
    log("imagegen: %d layers (%d cached), about %.1f MiB uncompressed to generate"
        % (len(unique), len(unique) - len(todo),
           sum(la.uncompressed_estimate() for la in todo) / MIB))
    tasks = [(la.key, la.entries, la.level, la.fast, layout.blobs) for la in todo]
    if jobs > 1 and len(tasks) > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            for key, res in pool.map(_write_layer_task, tasks):
                results[key] = res
    else:
        for t in tasks:
            key, res = _write_layer_task(t)
            results[key] = res
    for la in todo:
        layout.cache[la.fingerprint()] = list(results[la.key])
    layout.save_cache()

    summary = []
    refs = {}
    for im in images:
        created = im.created
        manifests = []
        blobs = []
        for a in im.arches:
            layers = im.layers_for(a)
            platform = {"architecture": a, "os": "linux"}
            if a == "arm64":
                platform["variant"] = "v8"
            config = {"created": created}
            config.update(platform)
            config["config"] = im.config
            config["rootfs"] = {"type": "layers", "diff_ids": [results[la.key][2] for la in layers]}
            config["history"] = [{"created": created, "created_by": la.created_by} for la in layers]
            cdesc = dict(mediaType=MT_CONFIG, **layout.put(canonical(config)))
            ldescs = [{"mediaType": MT_LAYER_GZIP, "digest": results[la.key][0],
                       "size": results[la.key][1]} for la in layers]
            manifest = {"schemaVersion": 2, "mediaType": MT_MANIFEST, "config": cdesc,
                        "layers": ldescs,
                        "annotations": {"org.opencontainers.image.created": created}}
            mdesc = dict(mediaType=MT_MANIFEST, **layout.put(canonical(manifest)))
            manifests.append((mdesc, platform))
            blobs += [cdesc, mdesc] + ldescs
        if len(manifests) == 1:
            top = manifests[0][0]
        else:
            index = {"schemaVersion": 2, "mediaType": MT_INDEX,
                     "manifests": [dict(d, platform=p) for d, p in manifests]}
            top = dict(mediaType=MT_INDEX, **layout.put(canonical(index)))
            blobs.append(top)
        for tag in im.tags:
            refs["%s:%s" % (im.repo, tag)] = top
            summary.append({"repo": im.repo, "tag": tag, "digest": top["digest"],
                            "mediaType": top["mediaType"], "platforms": im.arches,
                            "blobs": {b["digest"]: b["size"] for b in blobs}})
    layout.write_index(refs)
    return summary

#-- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- --
#Pushing
#-- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- --

def push(layout_dir, summary, args, log):
    lock = threading.Lock()

    def one(item):
        src = "oci:%s:%s:%s" % (layout_dir, item["repo"], item["tag"])
        dst = "docker://%s/%s:%s" % (args.registry, item["repo"], item["tag"])
        cmd = ["skopeo", "--insecure-policy", "copy", "--all", "--preserve-digests", "--quiet",
               "--dest-tls-verify=" + args.tls_verify]
        if args.creds:
            cmd += ["--dest-creds", args.creds]
        if args.cert_dir:
            cmd += ["--dest-cert-dir", args.cert_dir]
        cmd += [src, dst]
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL, text=True)
        if p.returncode != 0:
            with lock:
                log("imagegen: push %s failed (exit %d):\n%s" % (dst, p.returncode, p.stdout))
        return p.returncode == 0

#Push the first tag of each image first, in parallel; extra tags of the same image
#afterwards(then every blob already exists and only the tag is written).
    first, rest, seen = [], [], set()
    for item in summary:
        (rest if item["digest"] in seen else first).append(item)
        seen.add(item["digest"])
    ok = True
    with ThreadPoolExecutor(max_workers=max(1, args.push_jobs)) as pool:
        for batch in (first, rest):
            ok = all(list(pool.map(one, batch))) and ok
    return ok

#-- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- -- --

def main(argv=None):
    p = argparse.ArgumentParser(
        description="Generate deterministic synthetic OCI images and push them with skopeo.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--registry", metavar="HOST:PORT", help="registry to push into")
    p.add_argument("--set", type=int, choices=(1, 2), default=1, dest="set_no")
    p.add_argument("--size", choices=("small", "large"), default="small")
    p.add_argument("--creds", metavar="USER:PASS", help="skopeo --dest-creds")
    p.add_argument("--cert-dir", metavar="DIR", help="skopeo --dest-cert-dir (CA as *.crt)")
    p.add_argument("--tls-verify", choices=("true", "false"), default="false",
                   help="skopeo --dest-tls-verify (default false: plain HTTP allowed)")
    p.add_argument("--list", metavar="FILE", help="also write the references here")
    p.add_argument("--summary", metavar="FILE", help="write digests, platforms and blobs as JSON")
    p.add_argument("--oci-dir", metavar="DIR", help="keep the OCI layout here")
    p.add_argument("--work", metavar="DIR",
                   help="scratch directory, kept; the layout goes to DIR/oci unless --oci-dir "
                        "(default: a temporary directory, removed at exit)")
    p.add_argument("--no-push", action="store_true", help="only generate the layout")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="layer generation processes")
    p.add_argument("--push-jobs", type=int, default=4, help="concurrent skopeo copies")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = p.parse_args(argv)
    if not args.no_push and not args.registry:
        p.error("--registry is required unless --no-push")

    def log(msg):
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

    t0 = time.monotonic()
    own_work = args.work is None
    work = tempfile.mkdtemp(prefix="imagegen-") if own_work else args.work
    try:
        os.makedirs(work, exist_ok=True)
        layout_dir = os.path.abspath(args.oci_dir or os.path.join(work, "oci"))
        if ":" in layout_dir:
            p.error("the layout path must not contain ':' (skopeo's oci: syntax): " + layout_dir)
        layout = Layout(layout_dir)
        images = catalog(args.set_no, args.size)
        summary = generate(images, layout, max(1, args.jobs), log)
        blob_sizes = {}
        for item in summary:
            blob_sizes.update(item["blobs"])
        total = sum(blob_sizes.values())
        t1 = time.monotonic()
        log("imagegen: set %d %s: %d references, %d images, %d blobs, %.1f MiB, generated in %.1f s"
            % (args.set_no, args.size, len(summary), len({s["digest"] for s in summary}),
               len(blob_sizes), total / MIB, t1 - t0))
        if not args.no_push:
            if not push(layout_dir, summary, args, log):
                return 1
            log("imagegen: pushed to %s in %.1f s" % (args.registry, time.monotonic() - t1))
        prefix = args.registry + "/" if args.registry else ""
        lines = ["%s%s:%s" % (prefix, s["repo"], s["tag"]) for s in summary]
        out = "".join(line + "\n" for line in lines)
        sys.stdout.write(out)
        if args.list:
            with open(args.list, "w") as f:
                f.write(out)
        if args.summary:
            with open(args.summary, "w") as f:
                json.dump({"set": args.set_no, "size": args.size, "registry": args.registry,
                           "total_bytes": total, "blobs": blob_sizes,
                           "images": [dict(s, ref=line) for s, line in zip(summary, lines)]},
                          f, indent=1, sort_keys=True)
        return 0
    finally:
        if own_work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
