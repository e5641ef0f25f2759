#!/usr/bin/env python3
"""check-manifests.py: static checks of the Kubernetes manifests baked into the master image.

Usage: check-manifests.py [--var NAME=VALUE]... [--images FILE] [PATH]...

PATH is the stacks/kubernetes tree (the default) or manifest files. A tree is taken in the
order the master applies it: addons/* in name order, then for each add-on X (in name order)
addons.d/X/* in name order. Every file is first rendered the way imgbuild's template
renderer (builder/seed/template.c) renders files marked template: a "{{ name }}" on one line,
spaces and tabs around the name ignored, replaced by the value of --var name=VALUE; an
unknown name or an unclosed "{{" is an error. The rendered text is then parsed as YAML
(every document) and checked:

  every object      apiVersion, kind, metadata.name; a namespace when namespaced, created
                    earlier in apply order (or built in); no duplicates; label, annotation
                    and env values are strings
  every container   image pinned to a tag other than latest (or a digest) and listed in
                    images.txt (except the application's, --var app_image), imagePullPolicy
                    IfNotPresent, resources requests and limits (cpu, memory, request <=
                    limit), probes on ports the container has
  app (prod, dev)   Deployment: replicas >= 2, RollingUpdate with maxUnavailable 0,
                    readiness and liveness httpGet probes on the container port (--var
                    app_port), podAntiAffinity on kubernetes.io/hostname selecting its own
                    pods, runAsNonRoot; a PodDisruptionBudget in the namespace selecting the
                    pods (1 <= minAvailable < replicas); a NodePort Service selecting the pods
                    with nodePort 8500 (prod) or 8501 (dev) and targetPort the container port
  node-exporter     DaemonSet tolerating the control-plane taint, hostNetwork, hostPID, host
                    port 9100, --path.procfs/sysfs/rootfs on read-only mounts of /proc, /sys, /,
                    --collector.textfile.directory the host's /var/lib/node-exporter/textfile
                    under the rootfs mount (the backup metrics)
  promtail (add-on logs)  DaemonSet tolerating the control-plane taint, -config.expand-env,
                    TOOLING_ADDRESS from ConfigMap tooling key address (written by the master),
                    its ConfigMap's config pushing to http://${TOOLING_ADDRESS}:3100/loki/
                    api/v1/push, a journal job reading the host's /var/log/journal (read-only
                    mount, /etc/machine-id mounted), positions on a hostPath
  Flannel           net-conf.json Network equal to --var pod_cidr; DaemonSet tolerating the
                    control-plane taint, hostNetwork, --ip-masq --kube-subnet-mgr
  Kiali (add-on)    Service nodePort 20001 on the console port, anonymous auth, Prometheus
                    URL equal to --var prometheus_url, a read-only ClusterRole
  images.txt        every entry pinned and used; an image used only by add-on X is marked
                    "# addon=X"

Exit 0 with a summary when everything holds, 1 with one line per violation (file, object,
what is wrong) otherwise, 2 on a usage error.
"""

import argparse
import ipaddress
import json
import os
import re
import sys

try:
    import yaml
except ImportError:  # pragma: no cover
    sys.stderr.write("check-manifests: PyYAML is required (apt-get install python3-yaml)\n")
    sys.exit(2)

PROG = "check-manifests"
NODEPORT_RANGE = (8000, 32767)  # K8S_NODEPORT_RANGE, doc/kubernetes.md
APP_NODEPORTS = {"prod": 8500, "dev": 8501}
KIALI_NODEPORT = 20001
NODE_EXPORTER_PORT = 9100
TEXTFILE_DIR = "/var/lib/node-exporter/textfile"  # stacks/tooling/README.md, "Backup metric"
LOKI_PUSH = "http://${TOOLING_ADDRESS}:3100/loki/api/v1/push"
CONTROL_PLANE_TAINT = ("node-role.kubernetes.io/control-plane", "NoSchedule")
BUILTIN_NAMESPACES = {"default", "kube-system", "kube-public", "kube-node-lease"}
CLUSTER_SCOPED = {
    "Namespace", "Node", "PersistentVolume", "ClusterRole", "ClusterRoleBinding",
    "PriorityClass", "StorageClass", "CustomResourceDefinition", "APIService",
    "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "IngressClass",
    "RuntimeClass", "CSIDriver", "VolumeAttachment", "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
}
READ_VERBS = {"get", "list", "watch"}


class Obj:
    """One parsed document of one file."""

    def __init__(self, path, addon, order, doc):
        self.path = path
        self.addon = addon  # None for addons/, the add-on's name for addons.d/NAME/
        self.order = order
        self.doc = doc
        md = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
        self.kind = doc.get("kind") if isinstance(doc.get("kind"), str) else "?"
        self.name = md.get("name") if isinstance(md.get("name"), str) else "?"
        self.ns = md.get("namespace") if isinstance(md.get("namespace"), str) else None

    def __str__(self):
        where = "%s/%s" % (self.ns, self.name) if self.ns else self.name
        return "%s: %s %s" % (self.path, self.kind, where)


class Checker:
    def __init__(self, variables, images_file):
        self.vars = variables
        self.images_file = images_file
        self.errors = []
        self.objs = []
        self.files = []
        self.tree = "(all files)"

    def err(self, where, msg):
        self.errors.append("%s: %s" % (where, msg))

    # ---- rendering and parsing ----------------------------------------------------------

    def render(self, path, text):
        """builder/seed/template.c in Python: returns the text, or None after an error."""
        out = []
        pos = 0
        while True:
            lb = text.find("{{", pos)
            if lb < 0:
                out.append(text[pos:])
                return "".join(out)
            out.append(text[pos:lb])
            line = text.count("\n", 0, lb) + 1
            col = lb - (text.rfind("\n", 0, lb) + 1) + 1
            eol = text.find("\n", lb)
            rb = text.find("}}", lb + 2)
            if rb < 0 or (eol >= 0 and rb > eol):
                self.err("%s:%d:%d" % (path, line, col), "unclosed '{{'")
                return None
            name = text[lb + 2:rb].strip(" \t")
            if name not in self.vars:
                self.err("%s:%d:%d" % (path, line, col),
                         "unknown template variable '%s' (give it with --var %s=VALUE)"
                         % (name, name))
                return None
            out.append(self.vars[name])
            pos = rb + 2

    def load(self, path, addon):
        self.files.append(path)
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as e:
            self.err(path, "cannot read: %s" % e)
            return
        text = self.render(path, text)
        if text is None:
            return
        try:
            docs = list(yaml.safe_load_all(text))
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = "%s:%d:%d" % (path, mark.line + 1, mark.column + 1) if mark else path
            what = " ".join(x for x in (getattr(e, "context", None),
                                        getattr(e, "problem", None)) if x) or str(e)
            self.err(where, "not valid YAML once rendered: %s" % what)
            return
        n = 0
        for doc in docs:
            if doc is None:
                continue
            n += 1
            if not isinstance(doc, dict):
                self.err(path, "document %d is not a mapping" % n)
                continue
            self.objs.append(Obj(path, addon, len(self.objs), doc))
        if n == 0:
            self.err(path, "no Kubernetes object in the file")

    # ---- images.txt ---------------------------------------------------------------------

    def load_images(self):
        """{reference: add-on name or None}; None when there is no list to check against."""
        if not self.images_file:
            return None
        try:
            with open(self.images_file, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except OSError as e:
            self.err(self.images_file, "cannot read: %s" % e)
            return {}
        images = {}
        for i, raw in enumerate(lines, 1):
            ref, _, comment = raw.partition("#")
            ref = ref.strip()
            if not ref:
                continue
            where = "%s:%d" % (self.images_file, i)
            if len(ref.split()) != 1:
                self.err(where, "one image reference a line: '%s'" % ref)
                continue
            m = re.search(r"\baddon=([A-Za-z0-9_.-]+)", comment)
            if ref in images:
                self.err(where, "%s listed twice" % ref)
            why = unpinned(ref)
            if why:
                self.err(where, "%s: %s" % (ref, why))
            images[ref] = m.group(1) if m else None
        return images

    # ---- the checks ---------------------------------------------------------------------

    def run(self, tree_mode):
        images = self.load_images()
        self.check_objects()
        used = {}  # image -> set of add-ons (None for addons/) that use it
        for o, spec, _ in self.pod_specs():
            self.check_pod_spec(o, spec, images, used)
        self.check_apps(tree_mode)
        self.check_services()
        self.check_node_exporter(tree_mode)
        self.check_flannel(tree_mode)
        self.check_kiali(tree_mode)
        self.check_promtail(tree_mode)
        if images is not None:
            for ref, addon in images.items():
                if ref not in used:
                    if tree_mode:
                        self.err(self.images_file, "%s is listed but no manifest uses it" % ref)
                    continue
                users = used[ref]
                if addon is None and None not in users:
                    self.err(self.images_file, "%s is used only by add-on %s: mark it "
                             "'# addon=%s'" % (ref, "/".join(sorted(users)),
                                                "/".join(sorted(users))))
                if addon is not None and (users - {addon}):
                    self.err(self.images_file, "%s is marked addon=%s but also used by %s"
                             % (ref, addon, ", ".join(sorted(
                                 "addons/" if u is None else "add-on " + u
                                 for u in users - {addon}))))

    def check_objects(self):
        namespaces = {}  # apply scope -> set of namespaces created so far
        seen = {}
        for o in self.objs:
            d = o.doc
            if not isinstance(d.get("apiVersion"), str) or not d["apiVersion"]:
                self.err(o, "no apiVersion")
            if o.kind == "?":
                self.err(o, "no kind")
            if not isinstance(d.get("metadata"), dict):
                self.err(o, "no metadata")
            if o.name == "?":
                self.err(o, "no metadata.name")
            elif not re.fullmatch(r"[a-z0-9]([-a-z0-9.:]*[a-z0-9])?", o.name):
                self.err(o, "metadata.name '%s' is not a valid object name" % o.name)
            if o.kind in CLUSTER_SCOPED:
                if o.ns:
                    self.err(o, "%s is cluster-scoped: no metadata.namespace" % o.kind)
            elif not o.ns:
                self.err(o, "namespaced %s without metadata.namespace" % o.kind)
            # What the master has applied before this object: addons/, then the add-on's own.
            created = namespaces.setdefault(o.addon, set())
            visible = BUILTIN_NAMESPACES | namespaces.get(None, set()) | created
            if o.ns and o.ns not in visible:
                self.err(o, "namespace %s is not created before it (in apply order)" % o.ns)
            if o.kind == "Namespace":
                created.add(o.name)
            key = (o.kind, o.ns, o.name)
            if key in seen:
                self.err(o, "defined twice (also in %s)" % seen[key].path)
            seen.setdefault(key, o)
            self.check_meta(o, d.get("metadata"), "metadata")

    def check_meta(self, o, md, what):
        if not isinstance(md, dict):
            return
        for field in ("labels", "annotations"):
            m = md.get(field)
            if m is None:
                continue
            if not isinstance(m, dict):
                self.err(o, "%s.%s is not a mapping" % (what, field))
                continue
            for k, v in m.items():
                if not isinstance(v, str):
                    self.err(o, "%s.%s[%s] must be a string (quote it), not %r"
                             % (what, field, k, v))

    def pod_specs(self):
        """(obj, pod spec, pod template metadata) of every workload."""
        for o in self.objs:
            d = o.doc
            spec = d.get("spec") if isinstance(d.get("spec"), dict) else {}
            tmpl = None
            if o.kind in ("Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job"):
                tmpl = spec.get("template")
            elif o.kind == "CronJob":
                jt = spec.get("jobTemplate") or {}
                tmpl = (jt.get("spec") or {}).get("template")
            elif o.kind == "Pod":
                yield o, spec, d.get("metadata") or {}
                continue
            else:
                continue
            if not isinstance(tmpl, dict) or not isinstance(tmpl.get("spec"), dict):
                self.err(o, "no spec.template.spec")
                continue
            md = tmpl.get("metadata") if isinstance(tmpl.get("metadata"), dict) else {}
            self.check_meta(o, md, "spec.template.metadata")
            if o.kind in ("Deployment", "DaemonSet", "StatefulSet", "ReplicaSet"):
                sel = spec.get("selector")
                if not isinstance(sel, dict) or not (sel.get("matchLabels")
                                                     or sel.get("matchExpressions")):
                    self.err(o, "no spec.selector")
                elif not selects(sel, md.get("labels") or {}):
                    self.err(o, "spec.selector does not select the pod template's labels")
            yield o, tmpl["spec"], md

    def check_pod_spec(self, o, spec, images, used):
        containers = spec.get("containers")
        if not isinstance(containers, list) or not containers:
            self.err(o, "no containers")
            return
        inits = spec.get("initContainers") or []
        volumes = {v.get("name"): v for v in spec.get("volumes") or [] if isinstance(v, dict)}
        sa = spec.get("serviceAccountName")
        if sa and sa != "default" and not self.find("ServiceAccount", o.ns, sa):
            self.err(o, "serviceAccountName %s: no such ServiceAccount in namespace %s"
                     % (sa, o.ns))
        for vname, v in volumes.items():
            cm = v.get("configMap")
            if isinstance(cm, dict) and not cm.get("optional") and \
                    not self.find("ConfigMap", o.ns, cm.get("name")):
                self.err(o, "volume %s: no ConfigMap %s in namespace %s"
                         % (vname, cm.get("name"), o.ns))
        app_image = self.vars.get("app_image")
        for c in list(inits) + list(containers):
            if not isinstance(c, dict):
                self.err(o, "a container is not a mapping")
                continue
            cn = "container %s" % c.get("name", "?")
            if not c.get("name"):
                self.err(o, "a container without a name")
            image = c.get("image")
            if not isinstance(image, str) or not image:
                self.err(o, "%s: no image" % cn)
            else:
                why = unpinned(image)
                if why:
                    self.err(o, "%s: image %s: %s" % (cn, image, why))
                if image != app_image:
                    used.setdefault(image, set()).add(o.addon)
                    if images is not None and image not in images:
                        self.err(o, "%s: image %s is not listed in %s"
                                 % (cn, image, self.images_file))
            if c.get("imagePullPolicy") != "IfNotPresent":
                self.err(o, "%s: imagePullPolicy is %s, must be IfNotPresent (images are "
                         "preloaded, the cluster is air-gapped)"
                         % (cn, c.get("imagePullPolicy", "unset")))
            self.check_resources(o, cn, c.get("resources"))
            ports = c.get("ports") or []
            for p in ports:
                cp = p.get("containerPort") if isinstance(p, dict) else None
                if not isinstance(cp, int) or isinstance(cp, bool) or not 0 < cp < 65536:
                    self.err(o, "%s: containerPort %r is not a port number" % (cn, cp))
                if isinstance(p, dict) and "hostPort" in p and spec.get("hostNetwork") \
                        and p["hostPort"] != cp:
                    self.err(o, "%s: with hostNetwork hostPort must equal containerPort"
                             % cn)
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                pr = c.get(probe)
                if not isinstance(pr, dict):
                    continue
                act = pr.get("httpGet") or pr.get("tcpSocket") or pr.get("grpc")
                if isinstance(act, dict) and resolve_port(c, act.get("port")) is None:
                    self.err(o, "%s: %s port %r is not a port of the container"
                             % (cn, probe, act.get("port")))
            for env in c.get("env") or []:
                if isinstance(env, dict) and "value" in env and not isinstance(env["value"], str):
                    self.err(o, "%s: env %s must be a string (quote it), not %r"
                             % (cn, env.get("name"), env["value"]))
            for vm in c.get("volumeMounts") or []:
                if isinstance(vm, dict) and vm.get("name") not in volumes:
                    self.err(o, "%s: volumeMount %s: no such volume" % (cn, vm.get("name")))

    def check_resources(self, o, cn, res):
        if not isinstance(res, dict):
            self.err(o, "%s: no resources (requests and limits)" % cn)
            return
        for part in ("requests", "limits"):
            r = res.get(part)
            if not isinstance(r, dict):
                self.err(o, "%s: no resources.%s" % (cn, part))
                continue
            for k in ("cpu", "memory"):
                if k not in r:
                    self.err(o, "%s: no resources.%s.%s" % (cn, part, k))
                elif quantity(r[k]) is None:
                    self.err(o, "%s: resources.%s.%s %r is not a quantity" % (cn, part, k, r[k]))
        req, lim = res.get("requests"), res.get("limits")
        if isinstance(req, dict) and isinstance(lim, dict):
            for k in ("cpu", "memory"):
                a, b = quantity(req.get(k)), quantity(lim.get(k))
                if a is not None and b is not None and a > b:
                    self.err(o, "%s: resources.requests.%s %s is above the limit %s"
                             % (cn, k, req[k], lim[k]))

    def find(self, kind, ns, name):
        for o in self.objs:
            if o.kind == kind and o.ns == ns and o.name == name:
                return o
        return None

    def workloads(self, kind, pred):
        for o, spec, md in self.pod_specs_quiet():
            if o.kind == kind and pred(o, spec, md):
                yield o, spec, md

    def pod_specs_quiet(self):
        saved = list(self.errors)
        out = list(self.pod_specs())
        self.errors = saved
        return out

    def check_apps(self, tree_mode):
        want_port = None
        if "app_port" in self.vars:
            try:
                want_port = int(self.vars["app_port"])
            except ValueError:
                self.err("--var app_port", "'%s' is not a port number" % self.vars["app_port"])
        for ns, node_port in APP_NODEPORTS.items():
            deps = list(self.workloads("Deployment", lambda o, s, m, ns=ns: o.ns == ns))
            if not deps:
                if tree_mode:
                    self.err(self.tree, "no Deployment in namespace %s (the application)"
                             % ns)
                continue
            for o, spec, md in deps:
                self.check_app(o, spec, md, ns, node_port, want_port)

    def check_app(self, o, spec, md, ns, node_port, want_port):
        d = o.doc
        labels = md.get("labels") or {}
        replicas = d["spec"].get("replicas", 1)
        if not isinstance(replicas, int) or isinstance(replicas, bool):
            self.err(o, "spec.replicas %r is not a number" % (replicas,))
            replicas = None
        elif replicas < 2:
            self.err(o, "spec.replicas is %d: at least 2, so one pod can go down" % replicas)
        strat = d["spec"].get("strategy") or {}
        mu = (strat.get("rollingUpdate") or {}).get("maxUnavailable")
        if strat.get("type", "RollingUpdate") != "RollingUpdate" or mu not in (0, "0%"):
            self.err(o, "spec.strategy must be RollingUpdate with maxUnavailable 0")
        if "app.kubernetes.io/name" not in labels:
            self.err(o, "pod template has no app.kubernetes.io/name label")
        ann = md.get("annotations") or {}
        if ann.get("prometheus.io/scrape") != "true":
            self.err(o, "pod template has no prometheus.io/scrape: \"true\" annotation")
        psc = spec.get("securityContext") or {}
        for c in spec.get("containers") or []:
            cn = "container %s" % c.get("name", "?")
            csc = c.get("securityContext") or {}
            if not csc.get("runAsNonRoot", psc.get("runAsNonRoot")):
                self.err(o, "%s: runAsNonRoot is not set" % cn)
        main = (spec.get("containers") or [{}])[0]
        cn = "container %s" % main.get("name", "?")
        ports = [p.get("containerPort") for p in main.get("ports") or [] if isinstance(p, dict)]
        if want_port is not None and want_port not in ports:
            self.err(o, "%s: no containerPort %d (--var app_port)" % (cn, want_port))
        app_port = want_port if want_port in ports else (ports[0] if ports else None)
        for probe in ("readinessProbe", "livenessProbe"):
            pr = main.get(probe)
            hg = pr.get("httpGet") if isinstance(pr, dict) else None
            if not isinstance(hg, dict):
                self.err(o, "%s: no %s with httpGet" % (cn, probe))
            elif app_port is not None and resolve_port(main, hg.get("port")) != app_port:
                self.err(o, "%s: %s is on port %r, not the container port %s"
                         % (cn, probe, hg.get("port"), app_port))
        # Replicas spread over the workers.
        aa = (spec.get("affinity") or {}).get("podAntiAffinity") or {}
        terms = [t.get("podAffinityTerm") or {} for t in
                 aa.get("preferredDuringSchedulingIgnoredDuringExecution") or []]
        terms += aa.get("requiredDuringSchedulingIgnoredDuringExecution") or []
        if not any(t.get("topologyKey") == "kubernetes.io/hostname"
                   and isinstance(t.get("labelSelector"), dict)
                   and selects(t["labelSelector"], labels) for t in terms):
            self.err(o, "no podAntiAffinity on topologyKey kubernetes.io/hostname selecting "
                     "its own pods")
        # A PodDisruptionBudget.
        pdbs = [p for p in self.objs if p.kind == "PodDisruptionBudget" and p.ns == ns
                and selects((p.doc.get("spec") or {}).get("selector") or {}, labels)]
        if not pdbs:
            self.err(o, "no PodDisruptionBudget in namespace %s selecting its pods" % ns)
        for p in pdbs:
            ma = (p.doc.get("spec") or {}).get("minAvailable")
            if not isinstance(ma, int) or ma < 1:
                self.err(p, "spec.minAvailable must be a number >= 1, not %r" % (ma,))
            elif replicas is not None and ma >= replicas:
                self.err(p, "spec.minAvailable %d leaves no disruption for %d replicas"
                         % (ma, replicas))
        # The NodePort Service.
        svcs = [s for s in self.objs if s.kind == "Service" and s.ns == ns
                and (s.doc.get("spec") or {}).get("selector")
                and selects({"matchLabels": s.doc["spec"]["selector"]}, labels)]
        if not svcs:
            self.err(o, "no Service in namespace %s selecting its pods" % ns)
            return
        found = False
        for s in svcs:
            sspec = s.doc["spec"]
            for p in sspec.get("ports") or []:
                if p.get("nodePort") != node_port:
                    continue
                found = True
                if sspec.get("type") != "NodePort":
                    self.err(s, "type is %s, must be NodePort" % sspec.get("type", "ClusterIP"))
                tp = p.get("targetPort", p.get("port"))
                if app_port is not None and resolve_port(main, tp) != app_port:
                    self.err(s, "nodePort %d: targetPort %r is not the container port %s"
                             % (node_port, tp, app_port))
        if not found:
            self.err(svcs[0], "no port with nodePort %d (the %s application's port)"
                     % (node_port, ns))

    def check_services(self):
        taken = {}
        for s in self.objs:
            if s.kind != "Service":
                continue
            for p in (s.doc.get("spec") or {}).get("ports") or []:
                np_ = p.get("nodePort") if isinstance(p, dict) else None
                if np_ is None:
                    continue
                if not isinstance(np_, int) or not NODEPORT_RANGE[0] <= np_ <= NODEPORT_RANGE[1]:
                    self.err(s, "nodePort %r is outside the node port range %d-%d"
                             % (np_, NODEPORT_RANGE[0], NODEPORT_RANGE[1]))
                if np_ in taken:
                    self.err(s, "nodePort %s is also taken by %s" % (np_, taken[np_]))
                taken.setdefault(np_, s)

    def check_node_exporter(self, tree_mode):
        found = list(self.workloads("DaemonSet", lambda o, s, m: any(
            image_repo(c.get("image", "")).endswith("/node-exporter")
            for c in s.get("containers") or [])))
        if not found:
            if tree_mode:
                self.err(self.tree, "no node-exporter DaemonSet")
            return
        for o, spec, _ in found:
            if not tolerates_taint(spec.get("tolerations"), *CONTROL_PLANE_TAINT):
                self.err(o, "does not tolerate the control plane taint %s:%s"
                         % CONTROL_PLANE_TAINT)
            for f in ("hostNetwork", "hostPID"):
                if spec.get(f) is not True:
                    self.err(o, "%s is not true" % f)
            c = [c for c in spec["containers"]
                 if image_repo(c.get("image", "")).endswith("/node-exporter")][0]
            cn = "container %s" % c.get("name", "?")
            if not any(isinstance(p, dict) and p.get("hostPort") == NODE_EXPORTER_PORT
                       and p.get("containerPort") == NODE_EXPORTER_PORT
                       for p in c.get("ports") or []):
                self.err(o, "%s: no host port %d (the tooling host scrapes <node>:%d)"
                         % (cn, NODE_EXPORTER_PORT, NODE_EXPORTER_PORT))
            for probe in ("readinessProbe", "livenessProbe"):
                if not isinstance(c.get(probe), dict):
                    self.err(o, "%s: no %s" % (cn, probe))
            psc = spec.get("securityContext") or {}
            if not (c.get("securityContext") or {}).get("runAsNonRoot",
                                                         psc.get("runAsNonRoot")):
                self.err(o, "%s: runAsNonRoot is not set" % cn)
            vols = {v.get("name"): (v.get("hostPath") or {}).get("path")
                    for v in spec.get("volumes") or []}
            mounts = {m.get("mountPath", "").rstrip("/") or "/": m
                      for m in c.get("volumeMounts") or []}
            args = c.get("args") or []
            for flag, host in (("procfs", "/proc"), ("sysfs", "/sys"), ("rootfs", "/")):
                vals = [a.split("=", 1)[1] for a in args
                        if isinstance(a, str) and a.startswith("--path.%s=" % flag)]
                if not vals:
                    self.err(o, "%s: no --path.%s=" % (cn, flag))
                    continue
                m = mounts.get(vals[0].rstrip("/") or "/")
                if not m or vols.get(m.get("name")) != host:
                    self.err(o, "%s: --path.%s=%s is not a mount of the host's %s"
                             % (cn, flag, vals[0], host))
                elif m.get("readOnly") is not True:
                    self.err(o, "%s: the mount of the host's %s is not readOnly" % (cn, host))
            rootfs = [a.split("=", 1)[1] for a in args
                      if isinstance(a, str) and a.startswith("--path.rootfs=")]
            want = (rootfs[0].rstrip("/") if rootfs else "?") + TEXTFILE_DIR
            tf = [a.split("=", 1)[1] for a in args if isinstance(a, str)
                  and a.startswith("--collector.textfile.directory=")]
            if tf != [want]:
                self.err(o, "%s: --collector.textfile.directory is %s, not %s (the host's %s "
                         "under the rootfs mount: the backup metrics)"
                         % (cn, tf[0] if tf else "unset", want, TEXTFILE_DIR))

    def check_promtail(self, tree_mode):
        found = list(self.workloads("DaemonSet", lambda o, s, m: any(
            image_repo(c.get("image", "")).endswith("/promtail")
            for c in s.get("containers") or [])))
        if not found:
            if tree_mode:
                self.err(self.tree, "no promtail DaemonSet (add-on logs: the nodes' journal "
                         "to the tooling host's Loki)")
            return
        for o, spec, _ in found:
            if o.addon != "logs":
                self.err(o, "promtail belongs in addons.d/logs/ (applied only when "
                         "K8S_TOOLING_ADDRESS is set), not in %s"
                         % ("addons/" if o.addon is None else "add-on " + o.addon))
            if not tolerates_taint(spec.get("tolerations"), *CONTROL_PLANE_TAINT):
                self.err(o, "does not tolerate the control plane taint %s:%s"
                         % CONTROL_PLANE_TAINT)
            c = [c for c in spec["containers"]
                 if image_repo(c.get("image", "")).endswith("/promtail")][0]
            cn = "container %s" % c.get("name", "?")
            args = [a for a in c.get("args") or [] if isinstance(a, str)]
            if "-config.expand-env=true" not in args:
                self.err(o, "%s: no -config.expand-env=true (the Loki address is in the "
                         "environment)" % cn)
            env = {e.get("name"): e for e in c.get("env") or [] if isinstance(e, dict)}
            ref = ((env.get("TOOLING_ADDRESS") or {}).get("valueFrom") or {}).get(
                "configMapKeyRef") or {}
            if ref.get("name") != "tooling" or ref.get("key") != "address":
                self.err(o, "%s: TOOLING_ADDRESS does not come from ConfigMap tooling, key "
                         "address (what imgbuild-k8s-master writes)" % cn)
            vols = {v.get("name"): v for v in spec.get("volumes") or [] if isinstance(v, dict)}
            mounts = {m.get("mountPath", "").rstrip("/"): m
                      for m in c.get("volumeMounts") or [] if isinstance(m, dict)}

            def host_mount(path, what):
                m = mounts.get(path)
                hp = (vols.get(m.get("name")) or {}).get("hostPath") if m else None
                if not hp or hp.get("path") != path:
                    self.err(o, "%s: the host's %s is not mounted at %s (%s)"
                             % (cn, path, path, what))
                    return None
                return m

            for path, what in (("/var/log/journal", "the persistent journal"),
                               ("/etc/machine-id", "promtail finds the journal by it")):
                m = host_mount(path, what)
                if m and m.get("readOnly") is not True:
                    self.err(o, "%s: the mount of the host's %s is not readOnly" % (cn, path))
            # The ConfigMap mounted with the config file.
            cfg_file = [a.split("=", 1)[1] for a in args if a.startswith("-config.file=")]
            if not cfg_file:
                self.err(o, "%s: no -config.file=" % cn)
                continue
            d, _, fname = cfg_file[0].rpartition("/")
            m = mounts.get(d)
            cm = ((vols.get(m.get("name")) or {}).get("configMap") or {}) if m else {}
            cmo = self.find("ConfigMap", o.ns, cm.get("name")) if cm else None
            text = ((cmo.doc.get("data") or {}).get(fname)) if cmo else None
            if not isinstance(text, str):
                self.err(o, "%s: %s is not a key of a ConfigMap mounted at %s"
                         % (cn, fname, d))
                continue
            try:
                cfg = yaml.safe_load(text) or {}
            except yaml.YAMLError as e:
                self.err(cmo, "%s is not valid YAML: %s" % (fname, e))
                continue
            urls = [cl.get("url") for cl in cfg.get("clients") or [] if isinstance(cl, dict)]
            if urls != [LOKI_PUSH]:
                self.err(cmo, "%s: clients push to %s, not %s (Loki on the tooling host)"
                         % (fname, urls, LOKI_PUSH))
            pos = ((cfg.get("positions") or {}).get("filename") or "").rsplit("/", 1)[0]
            pm = mounts.get(pos)
            if not pm or not (vols.get(pm.get("name")) or {}).get("hostPath"):
                self.err(o, "%s: positions (%s) are not on a hostPath: a restart would "
                         "resend or lose the journal" % (cn, pos or "unset"))
            journal = [j.get("journal") for j in cfg.get("scrape_configs") or []
                       if isinstance(j, dict) and isinstance(j.get("journal"), dict)]
            if not journal or journal[0].get("path") != "/var/log/journal":
                self.err(cmo, "%s: no journal scrape config reading /var/log/journal" % fname)

    def check_flannel(self, tree_mode):
        cms = [o for o in self.objs if o.kind == "ConfigMap"
               and isinstance(o.doc.get("data"), dict) and "net-conf.json" in o.doc["data"]]
        if not cms and tree_mode:
            self.err(self.tree, "no Flannel ConfigMap with net-conf.json")
        for o in cms:
            data = o.doc["data"]
            try:
                net = json.loads(data["net-conf.json"])
            except (ValueError, TypeError) as e:
                self.err(o, "net-conf.json is not JSON: %s" % e)
                continue
            try:
                json.loads(data.get("cni-conf.json", "{}"))
            except (ValueError, TypeError) as e:
                self.err(o, "cni-conf.json is not JSON: %s" % e)
            want = self.vars.get("pod_cidr")
            got = net.get("Network") if isinstance(net, dict) else None
            if want is None:
                self.err(o, "give the pod CIDR to compare net-conf.json with: --var pod_cidr=")
            elif got != want:
                self.err(o, "net-conf.json Network is %r, not the pod CIDR %s (--var pod_cidr)"
                         % (got, want))
            else:
                try:
                    ipaddress.ip_network(got)
                except ValueError:
                    self.err(o, "net-conf.json Network %r is not a network" % got)
            if not isinstance(net, dict) or not (net.get("Backend") or {}).get("Type"):
                self.err(o, "net-conf.json has no Backend.Type")
        found = list(self.workloads("DaemonSet", lambda o, s, m: any(
            image_repo(c.get("image", "")).endswith("/flannel")
            for c in s.get("containers") or [])))
        if not found and tree_mode:
            self.err(self.tree, "no Flannel DaemonSet")
        for o, spec, _ in found:
            if not tolerates_taint(spec.get("tolerations"), *CONTROL_PLANE_TAINT):
                self.err(o, "does not tolerate the control plane taint %s:%s"
                         % CONTROL_PLANE_TAINT)
            if spec.get("hostNetwork") is not True:
                self.err(o, "hostNetwork is not true")
            for c in spec["containers"]:
                if image_repo(c.get("image", "")).endswith("/flannel"):
                    args = c.get("args") or []
                    for a in ("--ip-masq", "--kube-subnet-mgr"):
                        if a not in args:
                            self.err(o, "container %s: no %s" % (c.get("name"), a))

    def check_kiali(self, tree_mode):
        found = list(self.workloads("Deployment", lambda o, s, m: any(
            image_repo(c.get("image", "")).endswith("/kiali")
            for c in s.get("containers") or [])))
        if not found and tree_mode:
            self.err(self.tree, "no Kiali Deployment (add-on istio)")
        for o, spec, md in found:
            labels = md.get("labels") or {}
            c = [c for c in spec["containers"]
                 if image_repo(c.get("image", "")).endswith("/kiali")][0]
            ok = False
            svcs = [s for s in self.objs if s.kind == "Service" and s.ns == o.ns
                    and (s.doc.get("spec") or {}).get("selector")
                    and selects({"matchLabels": s.doc["spec"]["selector"]}, labels)]
            for s in svcs:
                for p in s.doc["spec"].get("ports") or []:
                    if p.get("nodePort") != KIALI_NODEPORT:
                        continue
                    ok = True
                    if s.doc["spec"].get("type") != "NodePort":
                        self.err(s, "type must be NodePort")
                    tp = p.get("targetPort", p.get("port"))
                    if resolve_port(c, tp) != KIALI_NODEPORT:
                        self.err(s, "nodePort %d: targetPort %r is not Kiali's port %d"
                                 % (KIALI_NODEPORT, tp, KIALI_NODEPORT))
            if not ok:
                self.err(o, "no NodePort Service with nodePort %d selecting its pods"
                         % KIALI_NODEPORT)
            for v in spec.get("volumes") or []:
                cm = (v.get("configMap") or {}).get("name")
                cmo = self.find("ConfigMap", o.ns, cm) if cm else None
                if not cmo or "config.yaml" not in (cmo.doc.get("data") or {}):
                    continue
                try:
                    conf = yaml.safe_load(cmo.doc["data"]["config.yaml"]) or {}
                except yaml.YAMLError as e:
                    self.err(cmo, "config.yaml is not YAML: %s" % e)
                    continue
                if (conf.get("auth") or {}).get("strategy") != "anonymous":
                    self.err(cmo, "config.yaml auth.strategy is not anonymous")
                url = ((conf.get("external_services") or {}).get("prometheus") or {}).get("url")
                want = self.vars.get("prometheus_url")
                if want is not None and url != want:
                    self.err(cmo, "config.yaml external_services.prometheus.url is %r, not %s "
                             "(--var prometheus_url)" % (url, want))
            sa = spec.get("serviceAccountName")
            for b in self.objs:
                if b.kind not in ("ClusterRoleBinding", "RoleBinding"):
                    continue
                if not any(s.get("kind") == "ServiceAccount" and s.get("name") == sa
                           and s.get("namespace", b.ns) == o.ns
                           for s in b.doc.get("subjects") or []):
                    continue
                ref = b.doc.get("roleRef") or {}
                role = self.find(ref.get("kind"), None if ref.get("kind") == "ClusterRole"
                                 else b.ns, ref.get("name"))
                if not role:
                    self.err(b, "roleRef %s %s: not defined" % (ref.get("kind"), ref.get("name")))
                    continue
                for rule in role.doc.get("rules") or []:
                    extra = set(rule.get("verbs") or []) - READ_VERBS
                    if extra:
                        self.err(role, "Kiali's role must be read-only: verbs %s"
                                 % ", ".join(sorted(extra)))


# ---- helpers ------------------------------------------------------------------------------

def image_repo(ref):
    name = ref.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return name[:name.rfind(":")] if ":" in last else name


def unpinned(ref):
    """Why an image reference is not pinned, or None."""
    name, _, digest = ref.partition("@")
    if digest:
        return None if re.fullmatch(r"sha256:[0-9a-f]{64}", digest) else "bad digest"
    last = name.rsplit("/", 1)[-1]
    if ":" not in last:
        return "no tag (pin it: repository:tag)"
    tag = last.rsplit(":", 1)[1]
    if tag == "latest":
        return "tag latest is not a pin"
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", tag):
        return "bad tag '%s'" % tag
    return None


def resolve_port(container, port):
    """The containerPort number a probe/targetPort names, or None."""
    ports = [p for p in container.get("ports") or [] if isinstance(p, dict)]
    if isinstance(port, bool):
        return None
    if isinstance(port, int):
        return port if any(p.get("containerPort") == port for p in ports) else None
    if isinstance(port, str):
        if port.isdigit():
            return resolve_port(container, int(port))
        for p in ports:
            if p.get("name") == port:
                return p.get("containerPort")
    return None


def selects(selector, labels):
    """A LabelSelector (matchLabels, matchExpressions) matches labels."""
    if not isinstance(selector, dict):
        return False
    ml = selector.get("matchLabels") or {}
    me = selector.get("matchExpressions") or []
    if not ml and not me:
        return False  # an empty selector would select everything: never what is meant here
    if any(labels.get(k) != v for k, v in ml.items()):
        return False
    for e in me:
        k, op, vals = e.get("key"), e.get("operator"), e.get("values") or []
        if op == "In" and labels.get(k) not in vals:
            return False
        if op == "NotIn" and k in labels and labels[k] in vals:
            return False
        if op == "Exists" and k not in labels:
            return False
        if op == "DoesNotExist" and k in labels:
            return False
    return True


def tolerates_taint(tolerations, key, effect, value=""):
    """Kubernetes' ToleratesTaint for one taint."""
    for t in tolerations or []:
        if not isinstance(t, dict):
            continue
        if t.get("effect") and t["effect"] != effect:
            continue
        op = t.get("operator", "Equal")
        if op == "Exists" and t.get("key", "") in ("", key):
            return True
        if op == "Equal" and t.get("key") == key and t.get("value", "") == value:
            return True
    return False


_SUFFIX = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
           "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}


def quantity(q):
    if isinstance(q, bool):
        return None
    if isinstance(q, (int, float)):
        return float(q)
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)([A-Za-z]*)", str(q))
    if not m or m.group(2) not in _SUFFIX:
        return None
    return float(m.group(1)) * _SUFFIX[m.group(2)]


def manifests_of(directory):
    return sorted(os.path.join(directory, f) for f in os.listdir(directory)
                  if f.endswith((".yaml", ".yml", ".json"))
                  and os.path.isfile(os.path.join(directory, f)))


def main(argv):
    top = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    ap.add_argument("--var", action="append", default=[], metavar="NAME=VALUE",
                    help="a template variable (repeatable)")
    ap.add_argument("--images", metavar="FILE",
                    help="the pinned image list (default: images.txt of the tree)")
    ap.add_argument("paths", nargs="*", metavar="PATH",
                    help="the stacks/kubernetes tree (default) or manifest files")
    a = ap.parse_args(argv)
    variables = {}
    for v in a.var:
        name, eq, value = v.partition("=")
        if not eq or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            ap.error("--var %s: want NAME=VALUE" % v)
        variables[name] = value
    paths = a.paths or [os.path.join(top, "stacks", "kubernetes")]
    trees = [p for p in paths if os.path.isdir(p)]
    if trees and len(paths) > 1:
        ap.error("give one tree, or manifest files")
    images_file = a.images
    chk = Checker(variables, None)
    if trees:
        tree = trees[0]
        chk.tree = tree
        base = os.path.join(tree, "addons")
        if not os.path.isdir(base):
            ap.error("%s: no addons/ directory" % tree)
        if images_file is None and os.path.isfile(os.path.join(tree, "images.txt")):
            images_file = os.path.join(tree, "images.txt")
        for f in manifests_of(base):
            chk.load(f, None)
        extra = os.path.join(tree, "addons.d")
        if os.path.isdir(extra):
            for name in sorted(os.listdir(extra)):
                if os.path.isdir(os.path.join(extra, name)):
                    for f in manifests_of(os.path.join(extra, name)):
                        chk.load(f, name)
    else:
        for f in paths:
            if not os.path.isfile(f):
                ap.error("%s: no such file or directory" % f)
            parent = os.path.dirname(os.path.abspath(f))
            addon = (os.path.basename(parent)
                     if os.path.basename(os.path.dirname(parent)) == "addons.d" else None)
            chk.load(f, addon)
    chk.images_file = images_file
    if not chk.errors:
        try:
            chk.run(bool(trees))
        except (AttributeError, TypeError, KeyError, IndexError) as e:
            # A shape the checks do not expect (a list where a mapping belongs, ...).
            chk.err(chk.tree, "malformed manifest, the checks stopped: %s: %s"
                    % (type(e).__name__, e))
    for e in chk.errors:
        sys.stderr.write("%s: %s\n" % (PROG, e))
    if chk.errors:
        sys.stderr.write("%s: %d problem(s) in %d file(s)\n"
                         % (PROG, len(chk.errors), len(chk.files)))
        return 1
    n_containers = sum(len(s.get("containers") or []) + len(s.get("initContainers") or [])
                       for _, s, _ in chk.pod_specs())
    print("%s: ok: %d files, %d objects, %d containers%s" % (
        PROG, len(chk.files), len(chk.objs), n_containers,
        ", images checked against %s" % images_file if images_file else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
