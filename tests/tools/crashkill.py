#!/usr/bin/env python3
"""crashkill.py: kill `imgbuild all` with SIGKILL at random moments and check what is left.

Used by tests/integration/16-crash.sh, which makes the project, the cache and the HTTP server.
A reference run measures how long a build takes (T); then each round starts
`imgbuild all --force`, freezes it (SIGSTOP, so that it starts no more tools) at a seeded random
moment in [0, T], notes its descendants, kills it with SIGKILL (it can react to neither) and
checks:
  - every tool it started is gone within ORPHAN_BOUND seconds (left ones are killed, and fail);
  - the output directory holds only complete outputs identical to the reference, no temporary
    name; a stamp or manifest only beside the images it describes;
  - no lock in the output directory or the cache is still held;
  - `imgbuild cache verify` exits 0.
Then a normal `imgbuild all` must succeed with outputs equal to the reference, and two runs at
once on one cache and one output directory must both succeed with the same outputs.
Prints the seed and every moment, so that a failure can be replayed with --seed.
"""

import argparse
import fcntl
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

ORPHAN_BOUND = 10.0
args = None
failures = []


last_finish = 0.0  # how long the last build that outran its kill took


def fail(msg):
    print("FAIL: " + msg, flush=True)
    failures.append(msg)


def env():
    e = dict(os.environ)
    e["IMGBUILD_CACHE_DIR"] = args.cache
    return e


def cmd(*extra):
    return [args.bin, "-C", args.project, "-o", args.out, "all", "--json"] + list(extra)


def events(path):
    out = []
    try:
        with open(path) as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass  # a line cut by the kill
    except FileNotFoundError:
        pass
    return out


def summary(path):
    ev = events(path)
    return ev[-1] if ev and ev[-1].get("event") == "summary" else None


def run_build(tag, *extra):
    """A build to completion; returns (seconds, summary)."""
    log = os.path.join(args.log, tag)
    t0 = time.monotonic()
    with open(log + ".json", "w") as so, open(log + ".err", "w") as se:
        rc = subprocess.call(cmd(*extra), stdout=so, stderr=se, env=env())
    took = time.monotonic() - t0
    if rc != 0:
        print(open(log + ".err").read())
        sys.exit("FAIL: %s build exited %d" % (tag, rc))
    return took, summary(log + ".json")


# ---- processes ----

def proc_stat(pid):
    """(ppid, state, starttime, comm) of pid, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    comm = s[s.index("(") + 1:s.rindex(")")]
    rest = s[s.rindex(")") + 2:].split()
    return int(rest[1]), rest[0], int(rest[19]), comm


def descendants(root):
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = proc_stat(int(d))
            if st:
                kids.setdefault(st[0], []).append((int(d), st))
    out, todo = [], [root]
    while todo:
        for pid, st in kids.get(todo.pop(), []):
            out.append((pid, st[2], st[3]))
            todo.append(pid)
    return out


def alive(pid, start):
    st = proc_stat(pid)
    return st is not None and st[2] == start and st[1] not in "ZX"


# ---- the output directory ----

hash_cache = {}


def sha(path):
    st = os.stat(path)
    key = (st.st_ino, st.st_size, st.st_mtime_ns)
    if hash_cache.get(path, (None,))[0] != key:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for b in iter(lambda: f.read(4 << 20), b""):
                h.update(b)
        hash_cache[path] = (key, h.hexdigest())
    return hash_cache[path][1]


def reference():
    """What a complete build leaves: name -> sha256 (the images' from the manifest)."""
    role = args.role
    m = os.path.join(args.out, role + ".manifest.json")
    ref = {role + ".manifest.json": sha(m)}
    for fmt, o in json.load(open(m))["outputs"].items():
        got = sha(os.path.join(args.out, o["file"]))
        if got != o["sha256"]:
            sys.exit("FAIL: the reference %s does not match its manifest" % o["file"])
        ref[o["file"]] = got
    return ref


def check_outputs(ref, where):
    role = args.role
    allowed = set(ref) | {role + ".stamp", "." + role + ".lock", ".imgbuild-work"}
    names = sorted(os.listdir(args.out))
    for n in names:
        if n not in allowed:
            fail("%s: unexpected file in the output directory: %s" % (where, n))
    for n, want in ref.items():
        p = os.path.join(args.out, n)
        if os.path.exists(p) and sha(p) != want:
            fail("%s: %s is not the complete output (size %d)" % (where, n, os.path.getsize(p)))
    present = set(names)
    mname = role + ".manifest.json"
    if mname in present:
        for o in json.load(open(os.path.join(args.out, mname)))["outputs"].values():
            if o["file"] not in present:
                fail("%s: the manifest names %s, which is missing" % (where, o["file"]))
    stamp = os.path.join(args.out, role + ".stamp")
    if os.path.exists(stamp):
        lines = open(stamp).read().splitlines()
        if mname not in present:
            fail("%s: a stamp without a manifest" % where)
        for line in lines[2:]:
            f = line.split()
            if not f[0].startswith("."):
                continue
            p = os.path.join(args.out, role + f[0])
            try:
                st = os.stat(p)
            except FileNotFoundError:
                fail("%s: the stamp names %s, which is missing" % (where, role + f[0]))
                continue
            mt = "%d.%09d" % (st.st_mtime_ns // 10**9, st.st_mtime_ns % 10**9)
            if [str(st.st_size), mt] != f[1:3]:
                fail("%s: the stamp does not describe %s" % (where, role + f[0]))
    return [n for n in names if n in ref]


def check_locks(where):
    """No lock in the output directory or the cache may still be held."""
    paths = [os.path.join(args.out, "." + args.role + ".lock")]
    for d in ("rootfs", "tmp"):
        dd = os.path.join(args.cache, d)
        if os.path.isdir(dd):
            paths += [os.path.join(dd, n) for n in os.listdir(dd) if n.endswith(".lock")]
    for p in paths:
        if not os.path.exists(p):
            continue
        with open(p, "rb") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fail("%s: %s is still locked" % (where, p))


def check_cache(where):
    r = subprocess.run([args.bin, "cache", "verify"], env=env(), capture_output=True, text=True)
    if r.returncode != 0:
        fail("%s: imgbuild cache verify exited %d: %s%s" % (where, r.returncode, r.stdout,
                                                            r.stderr))
    for n in os.listdir(os.path.join(args.cache, "rootfs")):
        if ".tmp." in n:
            fail("%s: a temporary file in the root filesystem cache: %s" % (where, n))


# ---- one kill ----

def stage_hit(ev, verify_started):
    last = None
    for e in ev:
        if e.get("event") == "stage":
            last = e
    if last is None:
        return "start"
    if last["state"] == "start":
        return last["stage"]
    if verify_started and last["stage"] in ("qcow2", "disk"):
        return "verify"
    return "after-" + last["stage"]


def one_kill(i, moment, cold, fresh, verify, ref):
    tag = "kill%02d" % i
    blob = os.path.join(args.cache, "blobs", "sha256", args.blob)
    if cold and os.path.exists(blob):
        os.unlink(blob)
    if not fresh:
        # Earlier outputs to protect, after a fresh round took them away: the reference's
        # own files again (hard links: a build never writes into an output in place).
        for n in list(ref) + [args.role + ".stamp"]:
            p = os.path.join(args.out, n)
            if not os.path.exists(p):
                os.link(os.path.join(args.log, "ref", n), p)
    if fresh:
        for n in ref:
            p = os.path.join(args.out, n)
            if os.path.exists(p):
                os.unlink(p)
        stamp = os.path.join(args.out, args.role + ".stamp")
        if os.path.exists(stamp):
            os.unlink(stamp)
    before = {n: sha(os.path.join(args.out, n)) for n in os.listdir(args.out) if n in ref}
    extra = ["--force"] + ([] if verify else ["--no-verify"])
    log = os.path.join(args.log, tag)
    so, se = open(log + ".json", "w"), open(log + ".err", "w")
    t0 = time.monotonic()
    p = subprocess.Popen(cmd(*extra), stdout=so, stderr=se, env=env())
    verify_started = False
    if verify:
        # The kill lands in the appliance's read-back: after the qcow2 conversion.
        while p.poll() is None and not any(e.get("stage") == "qcow2" and e.get("state") == "done"
                                           for e in events(log + ".json")):
            time.sleep(0.05)
        verify_started = True
        t0 = time.monotonic()
    while p.poll() is None and time.monotonic() - t0 < moment:
        time.sleep(0.01)
    if p.poll() is not None:
        so.close()
        se.close()
        global last_finish
        last_finish = time.monotonic() - t0
        return None  # finished first: the caller draws another moment
    os.kill(p.pid, signal.SIGSTOP)
    tree = descendants(p.pid)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    so.close()
    se.close()
    hit = stage_hit(events(log + ".json"), verify_started)
    where = "kill %d (%s%.2fs, %s)" % (i, "verify+" if verify else "", moment, hit)

    deadline = time.monotonic() + ORPHAN_BOUND
    left = [t for t in tree if alive(t[0], t[1])]
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = [t for t in tree if alive(t[0], t[1])]
    gone_in = ORPHAN_BOUND - max(0.0, deadline - time.monotonic())
    if left:
        for pid, _, _ in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        fail("%s: %d tool(s) outlived the build by %.0fs and had to be killed: %s" %
             (where, len(left), ORPHAN_BOUND, ", ".join("%s[%d]" % (c, pid) for pid, _, c in left)))

    present = check_outputs(ref, where)
    # Only a commit in flight takes earlier outputs away (the stamp and manifest first).
    in_commit = hit == "manifest" and not os.path.exists(
        os.path.join(args.out, args.role + ".stamp"))
    for n, h in before.items():
        if n not in present and not in_commit:
            fail("%s: the earlier output %s is gone" % (where, n))
    if in_commit and set(before) - set(present):
        hit = "commit"
    check_locks(where)
    check_cache(where)
    tools = sorted({c for _, _, c in tree})
    print("kill %2d at %s%5.2fs%s%s: stage %-9s tools %-28s outputs after: %s" % (
        i, "verify+" if verify else "", moment, " cold" if cold else "", " fresh" if fresh else "",
        hit, ",".join(tools) or "-", " ".join(present) or "none"), flush=True)
    if tree and not left and gone_in > 0.5:
        print("         (its tools took %.1fs to go)" % gone_in, flush=True)
    return hit, p.pid


def commit_round(ref):
    """Kill between the renames of a commit whose images differ from the ones in place (an
    input changed): no stamp or manifest may then describe images that are not there."""
    role = args.role
    src = os.path.join(args.project, "images/files/base/sshd-keys-only.conf")
    orig = open(src).read()
    with open(src, "a") as f:
        f.write("# changed by crashkill.py\n")
    raw = os.path.join(args.out, role + ".raw")
    e = env()
    e["LD_PRELOAD"] = args.killat
    e["KILLAT_RENAME_TO"] = raw
    e["ASAN_OPTIONS"] = (e.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0").lstrip(":")
    log = os.path.join(args.log, "commit")
    with open(log + ".json", "w") as so, open(log + ".err", "w") as se:
        rc = subprocess.call(cmd("--no-verify"), stdout=so, stderr=se, env=e)
    with open(src, "w") as f:
        f.write(orig)
    where = "kill in the commit, after the raw image moved"
    failed = len(failures)
    if rc != -signal.SIGKILL:
        fail("%s: the build exited %d, not killed there (%s)" % (where, rc, log + ".err"))
        return
    # The manifest the killed build would have committed is still in its work directory.
    work = os.path.join(args.out, ".imgbuild-work")
    new = [os.path.join(work, d, role + ".manifest.json") for d in os.listdir(work)]
    new = [m for m in new if os.path.exists(m)]
    if len(new) != 1:
        fail("%s: expected the killed build's manifest in its work directory: %s" % (where, new))
        return
    if sha(raw) != json.load(open(new[0]))["outputs"]["raw"]["sha256"]:
        fail("%s: %s is not the complete new image" % (where, raw))
    if sha(raw) == ref[role + ".raw"]:
        fail("%s: the changed input did not change the image" % where)
    m = os.path.join(args.out, role + ".manifest.json")
    if os.path.exists(m):
        for o in json.load(open(m))["outputs"].values():
            p = os.path.join(args.out, o["file"])
            if not os.path.exists(p) or sha(p) != o["sha256"]:
                fail("%s: the manifest left in place describes another %s" % (where, o["file"]))
    if os.path.exists(os.path.join(args.out, role + ".stamp")):
        fail("%s: a stamp is left beside images of another build" % where)
    check_locks(where)
    check_cache(where)
    if len(failures) == failed:
            print("kill in the commit (after the raw image moved, inputs changed): the new raw image "
              "is complete; no stamp, and %s" % ("no manifest" if not os.path.exists(m) else
                                                 "the manifest describes the images in place"),
              flush=True)


def main():
    global args
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--project", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--cache", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--role", default="base")
    ap.add_argument("--blob", required=True, help="sha256 of the artifact, dropped for cold rounds")
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--verify-kills", type=int, default=2)
    ap.add_argument("--verify-window", type=float, default=12.0)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--killat", help="16-crash.sh's killat.c built as a shared object")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    rng = random.Random(seed)
    print("seed %d (replay: IMGBUILD_CRASH_SEED=%d)" % (seed, seed), flush=True)

    t_cold, s = run_build("reference", "--no-verify")
    fetch = s["roles"][0]["seconds"]["fetch"]
    t_warm = max(t_cold - fetch, 1.0)
    ref = reference()
    os.mkdir(os.path.join(args.log, "ref"))
    for n in list(ref) + [args.role + ".stamp"]:
        os.link(os.path.join(args.out, n), os.path.join(args.log, "ref", n))
    print("reference build: %.1fs with the download (%.1fs of it), so %.1fs without" % (
        t_cold, fetch, t_warm), flush=True)

    # Moments spread over the whole build: one in each of `kills` equal slices, shuffled.
    n = args.kills
    slices = list(range(n))
    rng.shuffle(slices)
    verify_rounds = set(rng.sample(range(n), min(args.verify_kills, n)))
    hits, killed = {}, []
    for i in range(n):
        verify = i in verify_rounds
        cold = not verify and rng.random() < 0.35
        fresh = rng.random() < 0.25
        span = args.verify_window if verify else (t_cold if cold else t_warm)
        frac = (slices[i] + rng.random()) / n
        for attempt in range(6):
            moment = span * frac * (0.9 ** attempt)
            res = one_kill(i, moment, cold, fresh, verify, ref)
            if res:
                break
            print("kill %2d at %.2fs: the build finished first (in %.2fs), again earlier" % (
                i, moment, last_finish))
            # The machine got faster than when the reference was timed (another test's
            # guest ended): the same fraction of this build's own duration.
            if last_finish < span:
                span = last_finish
                if verify:
                    args.verify_window = span
                elif cold:
                    t_cold = span
                else:
                    t_warm = span
        else:
            fail("kill %d: the build always finished before its moment" % i)
            continue
        hits[res[0]] = hits.get(res[0], 0) + 1
        killed.append((res[1], moment))

    if args.killat:
        commit_round(ref)
    # As after a change of inputs: the last build must replace what the killed ones left.
    stamp = os.path.join(args.out, args.role + ".stamp")
    if os.path.exists(stamp):
        os.unlink(stamp)
    took, s = run_build("final", "--no-verify")
    if s["roles"][0]["result"] != "rebuilt":
        fail("final build: %s, not rebuilt" % s["roles"][0]["result"])
    check_outputs(ref, "final build")
    for n_, want in ref.items():
        p = os.path.join(args.out, n_)
        if not os.path.exists(p) or sha(p) != want:
            fail("final build: %s differs from the reference" % n_)
    work = os.path.join(args.out, ".imgbuild-work")
    if os.path.isdir(work) and os.listdir(work):
        fail("work directories of killed builds are left: %s" % os.listdir(work))
    shm = [d for pid, _ in killed for d in ["/dev/shm/imgbuild-%d-%s" % (pid, args.role)]
           if os.path.exists(d)]
    if shm:
        fail("staging trees of killed builds are left: %s" % shm)
    print("final build: %.1fs (%s), outputs equal the reference; no work directory or staging "
          "tree of a killed build left" % (took, s["roles"][0]["result"]), flush=True)

    # Two at once on one cache and one output directory, from nothing.
    for n_ in list(ref) + [args.role + ".stamp"]:
        p = os.path.join(args.out, n_)
        if os.path.exists(p):
            os.unlink(p)
    blob = os.path.join(args.cache, "blobs", "sha256", args.blob)
    if os.path.exists(blob):
        os.unlink(blob)
    procs = []
    for tag in ("twin-a", "twin-b"):
        log = os.path.join(args.log, tag)
        so, se = open(log + ".json", "w"), open(log + ".err", "w")
        procs.append((tag, subprocess.Popen(cmd("--no-verify"), stdout=so, stderr=se, env=env()),
                      so, se))
    results = {}
    for tag, p, so, se in procs:
        rc = p.wait()
        so.close()
        se.close()
        if rc != 0:
            print(open(os.path.join(args.log, tag + ".err")).read())
            fail("%s of two concurrent builds exited %d" % (tag, rc))
            continue
        results[tag] = summary(os.path.join(args.log, tag + ".json"))["roles"][0]["result"]
    check_outputs(ref, "two at once")
    for n_, want in ref.items():
        p = os.path.join(args.out, n_)
        if not os.path.exists(p) or sha(p) != want:
            fail("two at once: %s differs from a single build's" % n_)
    if os.path.isdir(work) and os.listdir(work):
        fail("two at once: work files left: %s" % os.listdir(work))
    if sorted(results.values()) != ["rebuilt", "reused"]:
        fail("two at once: expected one to build and one to wait and reuse: %s" % results)
    else:
        waited = [t for t, r in results.items() if r == "reused"][0]
        print("two at once: both exit 0; %s waited for the other's lock and reused its outputs; "
              "outputs equal the reference, no temporary file left" % waited, flush=True)

    if failures:
        sys.exit("%d check(s) failed (seed %d)" % (len(failures), seed))
    print("ok: %d kills at moments %s; all checks passed; stages hit: %s" % (
        len(killed), " ".join("%.2f" % m for _, m in killed),
        ", ".join("%s %d" % kv for kv in sorted(hits.items()))))


if __name__ == "__main__":
    main()
