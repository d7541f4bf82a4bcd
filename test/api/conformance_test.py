#!/usr/bin/python3
"""Conformance of the management API (the real daemon) with api/openapi.yaml.

Starts `fieldstack serve` on a temporary data directory (HTTPS on port 0), sets up the admin
with the setup code from its log, makes an operator and a reader, and then checks:

  routes   the (method, path) pairs of the spec are those of GET /api/v1/routes, with the
           same role (x-fieldstack-role);
  roles    every route: no token and a garbage token are 401 (public routes excepted), each
           role below the route's is 403, each role at or above it is neither 401 nor 403
           (write routes get an invalid body or a path naming nothing, so nothing changes);
  flows    the main flows of every area (shares, cloud shares on a localfs storage account,
           refresh, users, tokens, access keys, bandwidth, cache, device, alerts, logs,
           diagnostics, support package, certificates, metrics, jobs, compute pipelines,
           their runs and dead letters, modules; MQTT is off, so MQTT pipelines are 400;
           ONNX models: uploaded, registered from a file on the box, listed, refused when
           they are not models, kept while a pipeline uses them, deleted);
  input    every write route with a body gets wrong types, missing and unknown fields, a
           2 MiB body, overlong strings and injection-like strings: each is 400 (413 for the
           big body) with a message naming the field or the problem, and the state (shares,
           users, storage accounts, access keys, tokens, bandwidth, cache, device) is the same
           before and after (pipelines, modules and models too).

Every response is checked against the spec: its status must be declared for the operation and
its body must validate against the declared schema (OpenAPI 3.0 `nullable` is converted to
JSON Schema). Failures are collected and listed at the end; the exit status is 1 if any.

Runs with Debian's /usr/bin/python3 (python3-yaml, python3-jsonschema); standard library
otherwise. Usage: conformance_test.py --binary build/dev/src/daemon/fieldstack
--spec api/openapi.yaml [--keep] [--verbose]
"""

import argparse
import copy
import hashlib
import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse

import jsonschema
import yaml

ROLES = ["reader", "operator", "admin"]
RANK = {"public": -1, "reader": 0, "operator": 1, "admin": 2}
METHODS = ("get", "post", "put", "patch", "delete")
INJECTIONS = ["'; DROP TABLE shares;--", "../../etc/passwd", "<script>alert(1)</script>",
              "$(reboot)", "a\u0000b", "\u202e", "%00"]
NOBODY = object()  # "send no body"
DELETE = object()  # "remove this field"
PASSWORD = "correct horse battery staple"  # every user's password (argon2: reuse sessions)


class Failures:
    def __init__(self):
        self.items = []
        self.live = False  # --verbose: print each failure as it happens

    def add(self, msg):
        self.items.append(msg)
        if self.live:
            print("FAIL: " + msg, flush=True)


FAIL = Failures()


def random_bytes(n, seed=1234):
    """n bytes that are no file format (a fixed seed: the same bytes each run)."""
    x, out = seed, bytearray()
    while len(out) < n:
        x = (x * 6364136223846793005 + 1442695040888963407) & (2 ** 64 - 1)
        out.append(x >> 56)
    return out


def short(data, n=300):
    if isinstance(data, (bytes, bytearray)):
        data = data.decode("utf-8", "replace")
    data = str(data)
    return data if len(data) <= n else data[:n] + "..."


def jdump(v, n=120):
    if v is DELETE:
        return "(removed)"
    return short(json.dumps(v), n)


# ---------------------------------------------------------------------------------------------
# The spec


class Spec:
    """The OpenAPI document: operations by (METHOD, template), schemas as JSON Schema."""

    def __init__(self, path):
        with open(path) as f:
            self.doc = yaml.safe_load(f)
        if not str(self.doc.get("openapi", "")).startswith("3.0"):
            raise SystemExit("%s: not an OpenAPI 3.0 document" % path)
        self.ops = {}
        for template, item in self.doc["paths"].items():
            shared = item.get("parameters", [])
            for m in METHODS:
                if m in item:
                    op = dict(item[m])
                    op["parameters"] = shared + op.get("parameters", [])
                    self.ops[(m.upper(), template)] = op
        # JSON Schema view of the whole document (refs resolve against it).
        self.root = self._convert(copy.deepcopy(self.doc))
        self.resolver = jsonschema.RefResolver(base_uri="", referrer=self.root)
        self.cls = jsonschema.Draft7Validator

    @staticmethod
    def _convert(node):
        """OpenAPI 3.0 schema dialect -> JSON Schema: nullable becomes anyOf [.., null]."""
        if isinstance(node, list):
            return [Spec._convert(n) for n in node]
        if not isinstance(node, dict):
            return node
        node = {k: Spec._convert(v) for k, v in node.items()}
        if node.pop("nullable", False) is True:
            desc = node.pop("description", None)
            out = {"anyOf": [node, {"type": "null"}]}
            if desc is not None:
                out["description"] = desc
            return out
        return node

    def deref(self, node):
        """Follows $ref in the original document."""
        seen = 0
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            assert ref.startswith("#/"), ref
            cur = self.doc
            for part in ref[2:].split("/"):
                cur = cur[part.replace("~1", "/").replace("~0", "~")]
            node = cur
            seen += 1
            assert seen < 50, ref
        return node

    def flatten(self, schema):
        """A schema with $ref followed and allOf merged (for reading a field's limits)."""
        schema = self.deref(schema)
        if not isinstance(schema, dict):
            return schema
        out = {}
        for part in schema.get("allOf", []):
            out.update(self.flatten(part))
        for k, v in schema.items():
            if k != "allOf":
                out[k] = v
        return out

    def validate(self, schema, instance):
        """Error messages of `instance` against an OpenAPI schema (as found in the doc)."""
        js = self._convert(copy.deepcopy(schema))
        v = self.cls(js, resolver=self.resolver, format_checker=jsonschema.FormatChecker())
        return ["%s at %s" % (e.message[:200], "/".join(str(p) for p in e.absolute_path) or "/")
                for e in v.iter_errors(instance)]

    def request_schema(self, method, template):
        op = self.ops[(method, template)]
        rb = op.get("requestBody")
        if not rb:
            return None
        return self.deref(rb)["content"]["application/json"]["schema"]

    def role(self, method, template):
        return self.ops[(method, template)].get("x-fieldstack-role")


# ---------------------------------------------------------------------------------------------
# HTTP


class Resp:
    def __init__(self, status, headers, data, truncated=False):
        self.status = status
        self.headers = headers
        self.data = data
        self.truncated = truncated
        self.json = None
        if data and headers.get("content-type", "").startswith("application/json"):
            try:
                self.json = json.loads(data)
            except ValueError:
                pass

    def message(self):
        try:
            return self.json["error"]["message"]
        except (TypeError, KeyError):
            return ""


class Client:
    """Talks HTTPS to the daemon; every response is checked against the spec."""

    def __init__(self, spec, port, ca_file):
        self.spec = spec
        self.port = port
        self.set_ca(ca_file)
        self.requests = 0
        self.undeclared = set()
        self.truncated = {}  # status -> [cut short, all] for answers given before the body
        self.truncated_examples = []

    def set_ca(self, ca_file):
        self.ctx = ssl.create_default_context(cafile=ca_file)

    def raw(self, method, path, body=None, headers=None):
        """One request on a new connection; returns a Resp."""
        self.requests += 1
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=60)
        try:
            send_error = None
            try:
                conn.request(method, path, body=body, headers=headers or {})
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError) as e:
                send_error = e  # the server answered early (413) and closed: read the answer
            try:
                r = conn.getresponse()
            except (ConnectionError, http.client.HTTPException, ssl.SSLError) as e:
                raise RuntimeError("%s %s: no response (%r, sending: %r)" %
                                   (method, path, e, send_error))
            headers_in = {k.lower(): v for k, v in r.getheaders()}
            try:
                data = r.read()
                truncated = False
            except (http.client.IncompleteRead, ConnectionError, ssl.SSLError) as e:
                data = getattr(e, "partial", b"") or b""
                truncated = True
            return Resp(r.status, headers_in, data, truncated)
        finally:
            conn.close()

    def call(self, method, template, params=None, query=None, body=NOBODY, token=None,
             raw_body=None, content_type="application/json", expect=None, what="",
             check_spec=True):
        path = template
        for k, v in (params or {}).items():
            path = path.replace("{%s}" % k, urllib.parse.quote(str(v), safe=""))
        if query:
            path += "?" + urllib.parse.urlencode(query)
        headers = {}
        if token:
            headers["Authorization"] = "Bearer " + token
        data = None
        if raw_body is not None:
            data = raw_body if isinstance(raw_body, bytes) else raw_body.encode()
        elif body is not NOBODY:
            data = json.dumps(body).encode()
        if data is not None and content_type:
            headers["Content-Type"] = content_type
        r = self.raw(method, path, data, headers)
        label = "%s%s %s" % (what + ": " if what else "", method, path if len(path) < 120
                              else path[:120] + "...")
        if data is not None and r.status in (401, 403, 413):
            t = self.truncated.setdefault(r.status, [0, 0])
            t[1] += 1
            if r.truncated:
                t[0] += 1
                if len(self.truncated_examples) < 3:
                    self.truncated_examples.append(label)
        elif r.truncated:
            FAIL.add("%s: the %d response was cut short (%d bytes read)" % (label, r.status,
                                                                          len(r.data)))
        r.undeclared = False
        if check_spec and (method, template) in self.spec.ops:
            r.undeclared = not self.check(method, template, r, label)
        if expect is not None:
            want = expect if isinstance(expect, (set, tuple, list)) else (expect,)
            if r.status not in want:
                FAIL.add("%s: got %d, want %s; body %s" % (label, r.status,
                                                             "/".join(map(str, want)),
                                                             short(r.data)))
        return r

    def check(self, method, template, r, label):
        op = self.spec.ops[(method, template)]
        declared = op["responses"]
        st = str(r.status)
        if st not in declared:
            key = (method, template, r.status)
            FAIL.add("%s: status %d is not declared in the spec (declared: %s); body %s" %
                     (label, r.status, ", ".join(sorted(declared)), short(r.data)))
            self.undeclared.add(key)
            return False
        self._check_declared(r, label, declared[st])
        return True

    def _check_declared(self, r, label, declared):
        resp = self.spec.deref(declared)
        content = resp.get("content")
        if r.truncated:
            return  # counted in call()
        if not content:
            if r.data:
                FAIL.add("%s: %d should have no body; got %s" % (label, r.status, short(r.data)))
            return
        ctype = r.headers.get("content-type", "").split(";")[0].strip()
        if ctype not in content:
            FAIL.add("%s: %d has Content-Type %r; the spec says %s" %
                     (label, r.status, ctype, ", ".join(content)))
            return
        for h in resp.get("headers", {}):
            if h.lower() not in r.headers:
                FAIL.add("%s: %d lacks the header %s" % (label, r.status, h))
        schema = content[ctype].get("schema")
        if ctype == "application/json":
            if r.json is None:
                FAIL.add("%s: %d body is not JSON: %s" % (label, r.status, short(r.data)))
                return
            if schema is not None:
                errors = self.spec.validate(schema, r.json)
                if errors:
                    FAIL.add("%s: %d body does not match the spec: %s; body %s" %
                             (label, r.status, "; ".join(errors[:3]), short(r.data, 400)))


# ---------------------------------------------------------------------------------------------
# The daemon


class Daemon:
    def __init__(self, binary, workdir):
        self.binary = binary
        self.workdir = workdir
        self.data_dir = os.path.join(workdir, "data")
        self.config = os.path.join(workdir, "fieldstack.toml")
        self.log_path = os.path.join(workdir, "daemon.log")
        with open(self.config, "w") as f:
            f.write('data_dir = "%s"\n\n[http]\nport = 0\n\n[alerts]\nhealth_interval_s = 1\n'
                    % self.data_dir)
        self.lines = []
        self.lock = threading.Lock()

    def start(self):
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([self.binary, "serve", "--config", self.config],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     cwd=self.workdir)
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()
        deadline = time.time() + 60
        port = code = None
        while time.time() < deadline and (port is None or code is None):
            with self.lock:
                text = "".join(self.lines)
            m = re.search(r"serving on https?://[^\s:]+:(\d+)", text)
            if m:
                port = int(m.group(1))
            m = re.search(r"setup code ([A-Z0-9]{4}(?:-[A-Z0-9]{4})+)", text)
            if m:
                code = m.group(1)
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        if port is None or code is None:
            raise SystemExit("the daemon did not start (port %s, setup code %s); its log:\n%s" %
                             (port, code, self.tail()))
        if "serving on https://" not in text:
            raise SystemExit("the daemon does not serve HTTPS by default:\n" + self.tail())
        self.port, self.setup_code = port, code
        return port, code

    def _drain(self):
        for line in iter(self.proc.stdout.readline, b""):
            s = line.decode("utf-8", "replace")
            with self.lock:
                self.lines.append(s)
            self.log.write(s)
            self.log.flush()

    def tail(self, n=40):
        with self.lock:
            return "".join(self.lines[-n:])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                FAIL.add("the daemon did not stop within 60 s of SIGTERM")
                return
        else:
            rc = self.proc.returncode
            FAIL.add("the daemon exited before the end of the test (status %s)" % rc)
            return
        self.reader.join(10)
        if rc != 0:
            FAIL.add("the daemon exited with status %s after SIGTERM" % rc)


# ---------------------------------------------------------------------------------------------
# The test


def tls_fingerprint(port, ca_file):
    ctx = ssl.create_default_context(cafile=ca_file)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            der = s.getpeercert(binary_form=True)
    d = hashlib.sha256(der).hexdigest().upper()
    return ":".join(d[i:i + 2] for i in range(0, len(d), 2))


class Conformance:
    def __init__(self, args):
        self.args = args
        self.spec = Spec(args.spec)
        self.tmp = tempfile.mkdtemp(prefix="fs-api-conformance-")
        self.daemon = Daemon(os.path.abspath(args.binary), self.tmp)
        self.tokens = {}
        self.routes_checked = set()

    # --- helpers ---

    def c(self, *a, **kw):
        return self.client.call(*a, **kw)

    def login(self, user, password=PASSWORD, what="login"):
        r = self.c("POST", "/api/v1/login", body={"user": user, "password": password},
                   expect=200, what=what)
        if r.status != 200 or not r.json:
            raise SystemExit("cannot sign in as %s: %s" % (user, short(r.data)))
        return r.json["token"]

    def wait_job(self, job_id, token, timeout_s=90):
        deadline = time.time() + timeout_s
        while True:
            r = self.c("GET", "/api/v1/jobs/{id}", params={"id": job_id}, token=token, expect=200,
                       what="poll job")
            if r.status != 200 or not r.json:
                return None
            if r.json.get("state") in ("succeeded", "failed", "cancelled"):
                return r.json
            if time.time() > deadline:
                FAIL.add("job %s did not finish within %d s: %s" % (job_id, timeout_s,
                                                                   short(r.data)))
                return r.json
            time.sleep(0.1)

    def admin(self):
        return self.tokens["admin"]

    # --- phases ---

    def run(self):
        t0 = time.time()
        port, code = self.daemon.start()
        self.ca_file = os.path.join(self.daemon.data_dir, "tls", "box.crt")
        self.client = Client(self.spec, port, self.ca_file)
        try:
            phases = [self.spec_sanity, self.setup_and_users, self.route_coverage,
                      self.role_matrix, self.flows, self.bad_input, self.frame_behaviour]
            for phase in phases:
                t = time.time()
                print("== %s" % phase.__name__, flush=True)
                try:
                    phase()
                except Exception as e:  # a phase that breaks is a failure, the rest still run
                    traceback.print_exc()
                    FAIL.add("%s stopped: %r" % (phase.__name__, e))
                if self.args.verbose:
                    print("   %.1f s" % (time.time() - t), flush=True)
            cut = {st: t for st, t in self.client.truncated.items() if t[0]}
            if cut:
                FAIL.add("answers given before the request body was read were cut short (the "
                         "connection was reset, the client got the status line but not the "
                         "body): %s; e.g. %s" %
                         (", ".join("%d: %d of %d" % (st, t[0], t[1])
                                    for st, t in sorted(cut.items())),
                          "; ".join(self.client.truncated_examples)))
        finally:
            self.daemon.stop()
        ops = len(self.spec.ops)
        print("\n%d routes in the spec, %d checked, %d requests, %.1f s" %
              (ops, len(self.routes_checked & set(self.spec.ops)), self.client.requests,
               time.time() - t0))
        errors = [line for line in self.daemon.lines if re.match(r"\S+ E ", line)]
        if not self.args.keep:
            subprocess.call(["rm", "-rf", self.tmp])
        if FAIL.items:
            print("%d FAILURES:" % len(FAIL.items))
            for i, f in enumerate(FAIL.items, 1):
                print("  %3d. %s" % (i, f))
            if errors:
                print("errors in the daemon log (%d; first 20):\n%s" %
                      (len(errors), "".join(short(e, 300) for e in errors[:20])))
            print("(--keep keeps %s with the daemon's log and data)" % self.tmp)
            return 1
        print("OK: the server conforms to the spec")
        return 0

    def spec_sanity(self):
        """The document itself: refs resolve, schemas are valid, parameters match paths."""
        spec = self.spec
        refs = []

        def walk(node):
            if isinstance(node, dict):
                if "$ref" in node:
                    refs.append(node["$ref"])
                for v in node.values():
                    walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)

        walk(spec.doc)
        for ref in sorted(set(refs)):
            try:
                spec.deref({"$ref": ref})
            except (KeyError, TypeError, AssertionError):
                FAIL.add("spec: $ref %s does not resolve" % ref)
        for name, schema in spec.root["components"]["schemas"].items():
            try:
                jsonschema.Draft7Validator.check_schema(schema)
            except jsonschema.exceptions.SchemaError as e:
                FAIL.add("spec: schema %s is not valid: %s" % (name, e.message))
        op_ids = {}
        for (method, template), op in spec.ops.items():
            oid = op.get("operationId")
            if not oid or oid in op_ids:
                FAIL.add("spec: %s %s: operationId %r missing or not unique" %
                         (method, template, oid))
            op_ids[oid] = True
            want = set(re.findall(r"\{(\w+)\}", template))
            have = {spec.deref(p)["name"] for p in op["parameters"]
                    if spec.deref(p).get("in") == "path"}
            if want != have:
                FAIL.add("spec: %s %s: path parameters %s, declared %s" %
                         (method, template, sorted(want), sorted(have)))
            if not op.get("responses"):
                FAIL.add("spec: %s %s has no responses" % (method, template))
        tags = {t["name"] for t in spec.doc.get("tags", [])}
        for (method, template), op in spec.ops.items():
            for t in op.get("tags", []):
                if t not in tags:
                    FAIL.add("spec: %s %s: tag %s is not declared" % (method, template, t))

    def setup_and_users(self):
        c = self.c
        r = c("GET", "/api/v1/setup", expect=200)
        if r.json and r.json.get("needed") is not True:
            FAIL.add("GET /api/v1/setup: needed should be true on a first start")
        # Sign-in before the admin exists: 409 (does not count as a failed sign-in).
        c("POST", "/api/v1/login", body={"user": "admin", "password": PASSWORD}, expect=409,
          what="login before setup")
        c("POST", "/api/v1/setup", body={"setup_code": self.daemon.setup_code, "user": "admin",
                                         "password": PASSWORD}, expect=201)
        r = c("GET", "/api/v1/setup", expect=200)
        if r.json and r.json.get("needed") is not False:
            FAIL.add("GET /api/v1/setup: needed should be false after the setup")
        c("POST", "/api/v1/setup", body={"setup_code": self.daemon.setup_code, "user": "admin2",
                                         "password": PASSWORD}, expect=409, what="second setup")
        self.tokens["admin"] = self.login("admin")
        a = self.admin()
        for name, role in (("operator1", "operator"), ("reader1", "reader")):
            c("POST", "/api/v1/users", body={"name": name, "role": role, "password": PASSWORD},
              token=a, expect=201)
            self.tokens[role] = self.login(name)
        # A wrong password: 401 (one failed sign-in; five would lock 127.0.0.1 out).
        c("POST", "/api/v1/login", body={"user": "reader1", "password": "not the password!"},
          expect=401, what="wrong password")
        for role in ROLES:
            r = c("GET", "/api/v1/me", token=self.tokens[role], expect=200)
            if r.json and r.json.get("role") != role:
                FAIL.add("GET /api/v1/me as %s says role %s" % (role, r.json.get("role")))

    def route_coverage(self):
        r = self.c("GET", "/api/v1/routes", token=self.tokens["reader"], expect=200)
        if not r.json:
            return
        server = {(x["method"], x["path"]): x["role"] for x in r.json["routes"]}
        spec = {k: self.spec.role(*k) for k in self.spec.ops}
        for k in sorted(set(server) - set(spec)):
            FAIL.add("route %s %s (role %s) is served but not in the spec" % (k[0], k[1],
                                                                             server[k]))
        for k in sorted(set(spec) - set(server)):
            FAIL.add("route %s %s is in the spec but not served" % k)
        for k in sorted(set(spec) & set(server)):
            if spec[k] != server[k]:
                FAIL.add("route %s %s: the spec says role %s, the server %s" %
                         (k[0], k[1], spec[k], server[k]))
        for k, op in self.spec.ops.items():
            if op.get("x-fieldstack-role") not in RANK:
                FAIL.add("%s %s: x-fieldstack-role is %r" % (k[0], k[1],
                                                             op.get("x-fieldstack-role")))
            public = op.get("x-fieldstack-role") == "public"
            if public and op.get("security") != []:
                FAIL.add("%s %s: a public operation needs security: []" % k)
            if not public and op.get("security") == []:
                FAIL.add("%s %s: only public operations have security: []" % k)
            if not op.get("tags") or not op.get("summary"):
                FAIL.add("%s %s: needs tags and a summary" % k)

    # Path values that name nothing (the role matrix must not change anything).
    NOTHING = {"name": "nothing-here", "id": "job-000000000000", "seq": "999999999",
               "kind": "copy", "version": "99999999"}

    def nothing_params(self, template):
        params = {}
        for p in re.findall(r"\{(\w+)\}", template):
            params[p] = self.NOTHING[p]
        if template == "/api/v1/tokens/{id}":
            params["id"] = "0000000000000000"
        if template == "/api/v1/access-keys/{id}":
            params["id"] = "FSAAAAAAAAAAAAAAAAAA"
        if template.startswith("/api/v1/pipelines/{name}/dead-letters/{id}"):
            params["id"] = "999999999"
        return params

    def role_matrix(self):
        for (method, template), op in sorted(self.spec.ops.items()):
            role = op.get("x-fieldstack-role")
            self.routes_checked.add((method, template))
            params = self.nothing_params(template)
            kw = {}
            if op.get("requestBody"):
                kw["body"] = {"not_a_field_of_this_route": 1}  # 400 before anything changes
            # else a GET, or a DELETE of a path that names nothing (404)
            label = "role matrix"
            if role == "public":
                r = self.c(method, template, params=params, what=label, **kw)
                if r.status in (401, 403):
                    FAIL.add("%s %s is public but answered %d without a token" %
                             (method, template, r.status))
                r = self.c(method, template, params=params, token="garbage", what=label, **kw)
                if r.status in (401, 403):
                    FAIL.add("%s %s is public but answered %d to a garbage token" %
                             (method, template, r.status))
                continue
            r = self.c(method, template, params=params, what=label + " (no token)", expect=401,
                       **kw)
            if r.status == 401 and "bearer" not in r.headers.get("www-authenticate", "").lower():
                FAIL.add("%s %s: 401 without 'WWW-Authenticate: Bearer'" % (method, template))
            for bad in ("garbage", "fss_" + "A" * 43, "fst_0000000000000000_" + "A" * 43):
                self.c(method, template, params=params, token=bad, expect=401,
                       what=label + " (bad token %s...)" % bad[:8], **kw)
            for who in ROLES:
                r = self.c(method, template, params=params, token=self.tokens[who],
                           what="%s (%s)" % (label, who), **kw)
                if RANK[who] < RANK[role]:
                    if r.status != 403:
                        FAIL.add("%s %s needs %s but %s got %d (want 403): %s" %
                                 (method, template, role, who, r.status, short(r.data)))
                elif r.status in (401, 403):
                    FAIL.add("%s %s allows %s but answered %d: %s" %
                             (method, template, who, r.status, short(r.data)))
                elif method != "GET" and r.status < 300:
                    FAIL.add("%s %s with an invalid body or a path naming nothing was accepted "
                             "(%d): %s" % (method, template, r.status, short(r.data)))

    # --- flows ---

    def flows(self):
        self.flow_tokens_and_sessions()
        self.flow_storage_and_shares()
        self.flow_access_keys()
        self.flow_settings()
        self.flow_encryption()
        self.flow_jobs()
        self.flow_logs()
        self.flow_secrets_never_leave()
        self.flow_certificates()
        self.flow_alerts()
        self.flow_health_and_metrics()
        self.flow_compute()
        self.flow_models()

    def flow_tokens_and_sessions(self):
        c, a = self.c, self.admin()
        rd, op = self.tokens["reader"], self.tokens["operator"]
        c("GET", "/api/v1/users", token=a, expect=200)
        c("GET", "/api/v1/users/{name}", params={"name": "reader1"}, token=a, expect=200)
        c("GET", "/api/v1/users/{name}", params={"name": "nobody"}, token=a, expect=404)
        c("POST", "/api/v1/users", body={"name": "reader1", "role": "reader",
                                         "password": PASSWORD}, token=a, expect=409,
          what="duplicate user")
        c("POST", "/api/v1/users", body={"name": "tmpuser", "role": "bogus",
                                         "password": PASSWORD}, token=a, expect=400)
        c("POST", "/api/v1/users", body={"name": "tmpuser", "role": "reader",
                                         "password": "short"}, token=a, expect=400)
        r = c("POST", "/api/v1/users", body={"name": "tmpuser", "role": "reader",
                                             "password": PASSWORD}, token=a, expect=201)
        r = c("PATCH", "/api/v1/users/{name}", params={"name": "tmpuser"},
              body={"role": "operator"}, token=a, expect=200)
        if r.json and r.json.get("role") != "operator":
            FAIL.add("PATCH /api/v1/users/tmpuser did not change the role: %s" % short(r.data))
        c("PATCH", "/api/v1/users/{name}", params={"name": "nobody"}, body={"role": "reader"},
          token=a, expect=404)
        c("DELETE", "/api/v1/users/{name}", params={"name": "tmpuser"}, token=a, expect=204)
        c("DELETE", "/api/v1/users/{name}", params={"name": "tmpuser"}, token=a, expect=404)
        # Users for the bad-input phase.
        for name in ("pwuser", "patchme"):
            c("POST", "/api/v1/users", body={"name": name, "role": "reader",
                                             "password": PASSWORD}, token=a, expect=201)
        # Own password: wrong old one 400 (naming the field); right one 204 and the session ends.
        pw = self.login("pwuser")
        c("PUT", "/api/v1/me/password", body={"old_password": "not the password!",
                                              "new_password": "another password 2"}, token=pw,
          expect=400)
        c("PUT", "/api/v1/me/password", body={"old_password": PASSWORD,
                                              "new_password": "another password 2"}, token=pw,
          expect=204)
        c("GET", "/api/v1/me", token=pw, expect=401, what="session after a password change")
        c("PATCH", "/api/v1/users/{name}", params={"name": "pwuser"},
          body={"password": PASSWORD}, token=a, expect=200)
        self.tokens["pwuser"] = self.login("pwuser")
        # Logout ends the session.
        victim = self.login("reader1", what="throwaway session")
        c("POST", "/api/v1/logout", token=victim, expect=204)
        c("GET", "/api/v1/me", token=victim, expect=401, what="session after logout")
        self.tokens["logout-victim"] = self.login("reader1", what="throwaway session")
        # API tokens.
        r = c("POST", "/api/v1/tokens", body={"name": "nightly script", "expires_in_s": 3600},
              token=a, expect=201)
        if r.status == 201 and r.json:
            tok, tid = r.json["token"], r.json["id"]
            m = c("GET", "/api/v1/me", token=tok, expect=200, what="with an API token")
            if m.json and (m.json.get("api_token") is not True or m.json.get("role") != "admin"):
                FAIL.add("GET /api/v1/me with an API token: %s" % short(m.data))
            c("POST", "/api/v1/logout", token=tok, expect=204, what="logout with an API token")
            c("GET", "/api/v1/me", token=tok, expect=200, what="API token after logout")
            c("DELETE", "/api/v1/tokens/{id}", params={"id": tid}, token=a, expect=204)
            c("GET", "/api/v1/me", token=tok, expect=401, what="revoked API token")
        r = c("POST", "/api/v1/tokens", body={"name": "ro", "role": "reader"}, token=a,
              expect=201, what="admin token with the reader role")
        if r.status == 201 and r.json:
            if r.json.get("expires") is not None:
                FAIL.add("a token without expires_in_s should have expires null")
            c("GET", "/api/v1/users", token=r.json["token"], expect=403,
              what="reader-role API token on an admin route")
            admin_tid = r.json["id"]
        else:
            admin_tid = None
        c("POST", "/api/v1/tokens", body={"name": "too high", "role": "admin"}, token=rd,
          expect=403, what="reader asks for an admin token")
        r = c("POST", "/api/v1/tokens", body={"name": "mine"}, token=rd, expect=201)
        reader_tid = r.json["id"] if r.status == 201 and r.json else None
        r = c("GET", "/api/v1/tokens", token=rd, expect=200)
        if r.json and any(t["user"] != "reader1" for t in r.json["tokens"]):
            FAIL.add("GET /api/v1/tokens as a reader shows other users' tokens")
        r = c("GET", "/api/v1/tokens", token=a, expect=200)
        if r.json and reader_tid and reader_tid not in [t["id"] for t in r.json["tokens"]]:
            FAIL.add("GET /api/v1/tokens as admin does not show the reader's token")
        if admin_tid:
            c("DELETE", "/api/v1/tokens/{id}", params={"id": admin_tid}, token=op, expect=403,
              what="operator revokes the admin's token")
            c("DELETE", "/api/v1/tokens/{id}", params={"id": admin_tid}, token=a, expect=204)
        if reader_tid:
            c("DELETE", "/api/v1/tokens/{id}", params={"id": reader_tid}, token=rd, expect=204)
            c("DELETE", "/api/v1/tokens/{id}", params={"id": reader_tid}, token=rd, expect=404)

    def flow_storage_and_shares(self):
        c, a, op, rd = self.c, self.admin(), self.tokens["operator"], self.tokens["reader"]
        self.cloud_dir = os.path.join(self.tmp, "cloud")
        os.makedirs(self.cloud_dir)
        with open(os.path.join(self.cloud_dir, "hello.txt"), "w") as f:
            f.write("hello from the cloud\n")
        acct = {"name": "fixture-acct", "type": "localfs", "path": self.cloud_dir}
        r = c("POST", "/api/v1/storage-accounts", body=acct, token=a, expect=201)
        c("POST", "/api/v1/storage-accounts", body=acct, token=a, expect=409,
          what="duplicate storage account")
        c("POST", "/api/v1/storage-accounts", body={"name": "az", "type": "azure",
                                                    "endpoint": "https://x.example"},
          token=a, expect=400, what="azure account without a key")
        c("POST", "/api/v1/storage-accounts", body={"name": "lf", "type": "localfs"}, token=a,
          expect=400, what="localfs account without a path")
        c("GET", "/api/v1/storage-accounts", token=rd, expect=200)
        c("GET", "/api/v1/storage-accounts/{name}", params={"name": "fixture-acct"}, token=rd,
          expect=200)
        c("GET", "/api/v1/storage-accounts/{name}", params={"name": "nothing"}, token=rd,
          expect=404)
        c("PATCH", "/api/v1/storage-accounts/{name}", params={"name": "fixture-acct"},
          body={"path": self.cloud_dir}, token=a, expect=200)
        c("PATCH", "/api/v1/storage-accounts/{name}", params={"name": "nothing"},
          body={"region": ""}, token=a, expect=404)
        # A second account to delete.
        c("POST", "/api/v1/storage-accounts", body={"name": "s3acct", "type": "s3",
                                                    "endpoint": "https://s3.example",
                                                    "access_key_id": "AKIAEXAMPLE",
                                                    "secret_access_key": "secret/key+x=",
                                                    "region": "eu-west-1"},
          token=a, expect=201)
        r = c("GET", "/api/v1/storage-accounts/{name}", params={"name": "s3acct"}, token=a,
              expect=200)
        if r.json and (r.json.get("has_credentials") is not True or b"secret/key" in r.data):
            FAIL.add("the s3 account should say has_credentials and never show the secret")
        c("DELETE", "/api/v1/storage-accounts/{name}", params={"name": "s3acct"}, token=a,
          expect=204)
        c("DELETE", "/api/v1/storage-accounts/{name}", params={"name": "s3acct"}, token=a,
          expect=404)

        # A local share.
        r = c("POST", "/api/v1/shares", body={"name": "projects", "smb": True, "nfs": False},
              token=a, expect=201)
        c("POST", "/api/v1/shares", body={"name": "projects"}, token=a, expect=409,
          what="duplicate share")
        c("GET", "/api/v1/shares/{name}", params={"name": "projects"}, token=rd, expect=200)
        r = c("PATCH", "/api/v1/shares/{name}", params={"name": "projects"},
              body={"smb_encrypt": "required", "nfs_clients": ["10.0.0.0/24"]}, token=a,
              expect=200)
        if r.json and r.json.get("smb_encrypt") != "required":
            FAIL.add("PATCH /api/v1/shares/projects did not change smb_encrypt")
        c("PATCH", "/api/v1/shares/{name}", params={"name": "projects"},
          body={"cache": {"high_watermark": "50%"}}, token=a, expect=400,
          what="cache policy on a local share")
        c("POST", "/api/v1/shares/{name}/refresh", params={"name": "projects"}, token=op,
          expect=409, what="refresh of a local share")
        c("POST", "/api/v1/shares/{name}/refresh", params={"name": "nothing"}, token=op,
          expect=404)
        # A cloud share on the localfs account.
        r = c("POST", "/api/v1/shares", body={"name": "fixture-cloud",
                                              "storage_account": "fixture-acct",
                                              "container": "fixture", "refresh_ttl_s": 60,
                                              "cache": {"high_watermark": "80%",
                                                        "pinned": ["keep/**"]}},
              token=a, expect=201)
        if r.json and (r.json.get("kind") != "cloud" or not r.json.get("target")):
            FAIL.add("a share with a storage account should be a cloud share with a target: %s"
                     % short(r.data))
        c("PATCH", "/api/v1/shares/{name}", params={"name": "fixture-cloud"},
          body={"cache": {"max_age_days": 30}, "policy": "keep"}, token=a, expect=200)
        c("DELETE", "/api/v1/storage-accounts/{name}", params={"name": "fixture-acct"}, token=a,
          expect=409, what="delete an account in use")
        c("GET", "/api/v1/shares", token=rd, expect=200)
        r = c("POST", "/api/v1/shares/{name}/refresh", params={"name": "fixture-cloud"},
              body={}, token=op, expect=202)
        if r.status == 202 and r.json:
            job = self.wait_job(r.json["job"], op)
            if job and job["state"] != "succeeded":
                FAIL.add("the refresh job did not succeed: %s" % jdump(job, 400))
            elif job and (not job.get("result") or job["result"].get("listed", 0) < 1):
                FAIL.add("the refresh did not list hello.txt: %s" % jdump(job, 400))
        r = c("GET", "/api/v1/shares/{name}/file", params={"name": "fixture-cloud"},
              query={"path": "hello.txt"}, token=rd, expect=200)
        if r.json and r.json.get("state") != "stub":
            FAIL.add("hello.txt after a refresh should be a stub: %s" % short(r.data))
        c("GET", "/api/v1/shares/{name}/file", params={"name": "fixture-cloud"},
          query={"path": "no/such/file"}, token=rd, expect=404)
        c("GET", "/api/v1/shares/{name}/file", params={"name": "fixture-cloud"}, token=rd,
          expect=400, what="file state without a path")
        c("GET", "/api/v1/shares/{name}/file", params={"name": "nothing"},
          query={"path": "a"}, token=rd, expect=404)
        # Delete a cloud share and the local one.
        c("POST", "/api/v1/shares", body={"name": "temp-cloud", "storage_account": "fixture-acct",
                                          "container": "temp"}, token=a, expect=201)
        c("DELETE", "/api/v1/shares/{name}", params={"name": "temp-cloud"}, token=a,
          query={"force": "false"}, expect=204)
        c("DELETE", "/api/v1/shares/{name}", params={"name": "projects"}, token=a, expect=204)
        c("DELETE", "/api/v1/shares/{name}", params={"name": "projects"}, token=a, expect=404)
        c("DELETE", "/api/v1/shares/{name}", params={"name": "default"},
          query={"force": "maybe"}, token=a, expect=400, what="force=maybe")
        c("GET", "/api/v1/shares/{name}", params={"name": "projects"}, token=rd, expect=404)

    def flow_access_keys(self):
        c, a = self.c, self.admin()
        r = c("POST", "/api/v1/access-keys", body={"user": "backup-client", "read": ["default"],
                                                   "write": ["fixture-cloud"]},
              token=a, expect=201)
        kid = r.json["id"] if r.status == 201 and r.json else None
        c("POST", "/api/v1/access-keys", body={"user": "x", "read": ["no-such-share"]},
          token=a, expect=400, what="access key for a share that does not exist")
        r = c("GET", "/api/v1/access-keys", token=a, expect=200)
        if kid:
            r = c("PATCH", "/api/v1/access-keys/{id}", params={"id": kid},
                  body={"read": ["*"]}, token=a, expect=200)
            if r.json and r.json.get("read") != ["*"]:
                FAIL.add("PATCH /api/v1/access-keys did not change read: %s" % short(r.data))
            c("DELETE", "/api/v1/access-keys/{id}", params={"id": kid}, token=a, expect=204)
            c("DELETE", "/api/v1/access-keys/{id}", params={"id": kid}, token=a, expect=404)
        c("PATCH", "/api/v1/access-keys/{id}", params={"id": "FSAAAAAAAAAAAAAAAAAA"},
          body={"read": []}, token=a, expect=404)
        # One for the bad-input phase.
        r = c("POST", "/api/v1/access-keys", body={"user": "fixture"}, token=a, expect=201)
        self.fixture_key = r.json["id"] if r.status == 201 and r.json else "FSAAAAAAAAAAAAAAAAAA"

    def flow_settings(self):
        c, a, rd = self.c, self.admin(), self.tokens["reader"]
        before = c("GET", "/api/v1/bandwidth", token=rd, expect=200).json
        r = c("PUT", "/api/v1/bandwidth", body={"timetable": "08:00,512k 18:00,off",
                                                "daily_budget": "10G", "monthly_budget": "200G",
                                                "transfers": 3}, token=a, expect=200)
        if r.json and (r.json.get("daily_budget_bytes") != 10 << 30 or
                       r.json.get("transfers") != 3):
            FAIL.add("PUT /api/v1/bandwidth: %s" % short(r.data))
        c("PUT", "/api/v1/bandwidth", body={"timetable": "25:99,fast"}, token=a, expect=400)
        c("PUT", "/api/v1/bandwidth", body={"daily_budget": "lots"}, token=a, expect=400)
        r = c("PUT", "/api/v1/bandwidth", body={"timetable": "", "daily_budget": "",
                                                "monthly_budget": "", "transfers":
                                                    (before or {}).get("transfers", 4)},
              token=a, expect=200)
        if r.json and before and r.json != before:
            FAIL.add("bandwidth not back to %s: %s" % (jdump(before), short(r.data)))

        before = c("GET", "/api/v1/cache", token=rd, expect=200).json
        r = c("PUT", "/api/v1/cache", body={"high_watermark": "85%", "pinned": ["a/**"],
                                            "interval_s": 10}, token=a, expect=200)
        if r.json and r.json.get("high_watermark") != "85%":
            FAIL.add("PUT /api/v1/cache did not change high_watermark: %s" % short(r.data))
        c("PUT", "/api/v1/cache", body={"high_watermark": "lots"}, token=a, expect=400)
        if before:
            c("PUT", "/api/v1/cache", body={k: before[k] for k in before}, token=a, expect=200,
              what="cache back")

        before = c("GET", "/api/v1/device", token=rd, expect=200).json
        r = c("PATCH", "/api/v1/device", body={"name": "fieldbox-1"}, token=a, expect=200)
        if r.json and r.json.get("name") != "fieldbox-1":
            FAIL.add("PATCH /api/v1/device did not rename: %s" % short(r.data))
        c("PATCH", "/api/v1/device", body={"name": "not a name!"}, token=a, expect=400)
        r = c("PATCH", "/api/v1/device", body={"name": "", "host_power": False}, token=a,
              expect=200)
        if r.json and before and r.json.get("name") != before.get("name"):
            FAIL.add("PATCH /api/v1/device name \"\" should go back to %r: %s" %
                     (before.get("name"), short(r.data)))

        c("GET", "/api/v1/alerts/settings", token=a, expect=200)
        c("PUT", "/api/v1/alerts/settings", body={"webhook": "https://hooks.example/fs"},
          token=a, expect=200)
        c("PUT", "/api/v1/alerts/settings", body={"webhook": "ftp://x"}, token=a, expect=400)
        c("PUT", "/api/v1/alerts/settings", body={"webhook": ""}, token=a, expect=200)

        # Power: only what cannot act (never a valid request: it would stop the daemon).
        c("POST", "/api/v1/power", body={"action": "dance"}, token=a, expect=400)
        c("POST", "/api/v1/power", body={"action": "restart", "scope": "galaxy"}, token=a,
          expect=400)

    def flow_encryption(self):
        c, a, rd = self.c, self.admin(), self.tokens["reader"]
        r = c("GET", "/api/v1/encryption", token=rd, expect=200)
        key_id = r.json.get("master_key_id") if r.json else None
        r = c("POST", "/api/v1/encryption/rotate", token=a, expect=200)
        if r.json and key_id is not None and r.json.get("master_key_id") == key_id:
            FAIL.add("rotate did not change the master key id")
        r = c("GET", "/api/v1/encryption/recovery-key", token=a, expect=200)
        if r.status == 200 and ("attachment" not in r.headers.get("content-disposition", "") or
                                not r.data):
            FAIL.add("the recovery key should be a non-empty attachment")

    def flow_alerts(self):
        c, op, rd = self.c, self.tokens["operator"], self.tokens["reader"]
        c("GET", "/api/v1/alerts/catalogue", token=rd, expect=200)
        c("GET", "/api/v1/alerts", query={"state": "all", "limit": 5}, token=rd, expect=200)
        c("GET", "/api/v1/alerts", query={"state": "all", "before": 1}, token=rd, expect=200)
        c("GET", "/api/v1/alerts", query={"state": "cleared"}, token=rd, expect=400)
        c("GET", "/api/v1/alerts", query={"limit": 0}, token=rd, expect=400)
        c("POST", "/api/v1/alerts/{seq}/ack", params={"seq": "999999"}, token=op, expect=404)
        c("POST", "/api/v1/alerts/{seq}/ack", params={"seq": "abc"}, token=op, expect=400)

    def flow_jobs(self):
        c, op, rd = self.c, self.tokens["operator"], self.tokens["reader"]
        r = c("POST", "/api/v1/diagnostics", token=op, expect=202)
        if r.status == 202 and r.json:
            job = self.wait_job(r.json["job"], rd)
            if job and job["state"] != "succeeded":
                FAIL.add("the diagnostics job did not succeed: %s" % jdump(job, 400))
            elif job and not (job.get("result") or {}).get("checks"):
                FAIL.add("the diagnostics job has no checks: %s" % jdump(job, 400))
            if job:
                c("GET", "/api/v1/jobs/{id}/download", params={"id": job["id"]}, token=op,
                  expect=409, what="download of a job without a file")
                c("POST", "/api/v1/jobs/{id}/cancel", params={"id": job["id"]}, token=op,
                  expect=409, what="cancel of a finished job")
        r = c("POST", "/api/v1/support-package", body={}, token=op, expect=202)
        if r.status == 202 and r.json:
            job = self.wait_job(r.json["job"], op)
            if job and job["state"] == "succeeded":
                if not job["download"]:
                    FAIL.add("the support-package job has download false")
                d = c("GET", "/api/v1/jobs/{id}/download", params={"id": job["id"]}, token=op,
                      expect=200)
                if d.status == 200 and not d.data.startswith(b"\x28\xb5\x2f\xfd"):
                    FAIL.add("the support package is not zstd (starts %r)" % d.data[:8])
                if d.status == 200 and "attachment" not in d.headers.get("content-disposition",
                                                                          ""):
                    FAIL.add("the support package is not offered as an attachment")
            elif job:
                FAIL.add("the support-package job did not succeed: %s" % jdump(job, 400))
        # Cancel a job while it runs (or 409 if it was too quick).
        r = c("POST", "/api/v1/diagnostics", token=op, expect=202)
        if r.status == 202 and r.json:
            jid = r.json["job"]
            c("POST", "/api/v1/jobs/{id}/cancel", params={"id": jid}, token=op,
              expect=(202, 409))
            job = self.wait_job(jid, op)
            if job and job["state"] not in ("cancelled", "succeeded"):
                FAIL.add("a cancelled job ended %s" % job["state"])
            self.finished_job = jid
        # Drain: nothing waits for upload here, so it ends at once.
        r = c("POST", "/api/v1/drain", token=op, expect=202)
        if r.status == 202 and r.json:
            job = self.wait_job(r.json["job"], op)
            if job and (job["state"] != "succeeded" or job.get("result") != {"uploaded": 0}):
                FAIL.add("a drain with nothing to upload should succeed with uploaded 0: %s" %
                         jdump(job, 400))
        r = c("GET", "/api/v1/jobs", token=rd, expect=200)
        c("GET", "/api/v1/jobs/{id}", params={"id": "job-000000000000"}, token=rd, expect=404)
        c("POST", "/api/v1/jobs/{id}/cancel", params={"id": "job-000000000000"}, token=op,
          expect=404)
        c("GET", "/api/v1/jobs/{id}/download", params={"id": "job-000000000000"}, token=op,
          expect=404)

    def flow_secrets_never_leave(self):
        """Secrets given to the box appear in no answer, log, settings file or support
        package, even when planted in a log on purpose."""
        c, a, op = self.c, self.admin(), self.tokens["operator"]
        import base64
        key = base64.b64encode(os.urandom(48)).decode()
        sig = "SiG" + base64.urlsafe_b64encode(os.urandom(18)).decode().rstrip("=")
        sas = "sv=2024-05-04&ss=b&srt=co&sp=rwdl&se=2030-01-01T00:00:00Z&sig=" + sig
        s3_secret = "S3s3cr3t" + base64.b64encode(os.urandom(15)).decode()
        password = "Pw-" + base64.b64encode(os.urandom(12)).decode()
        c("POST", "/api/v1/storage-accounts", token=a, expect=201,
          body={"name": "leaky-az", "type": "azure", "endpoint": "http://127.0.0.1:1/acct",
                "account": "leakyacct", "key": key})
        c("POST", "/api/v1/storage-accounts", token=a, expect=201,
          body={"name": "leaky-sas", "type": "azure", "endpoint": "http://127.0.0.1:1/acct",
                "sas": sas})
        c("POST", "/api/v1/storage-accounts", token=a, expect=201,
          body={"name": "leaky-s3", "type": "s3", "endpoint": "http://127.0.0.1:1",
                "access_key_id": "AKIALEAKY", "secret_access_key": s3_secret})
        # A share on the SAS account: its failing uploads and health checks write errors.
        c("POST", "/api/v1/shares", token=a, expect=201,
          body={"name": "leaky", "storage_account": "leaky-sas", "container": "leaky"})
        k = c("POST", "/api/v1/access-keys", token=a, expect=201,
              body={"user": "leaky", "read": ["leaky"]})
        key_secret = (k.json or {}).get("secret", "")
        c("POST", "/api/v1/users", token=a, expect=201,
          body={"name": "leaky", "role": "reader", "password": password})
        session = self.login("leaky", password)
        secrets = {"account key": key, "sas signature": sig, "s3 secret": s3_secret,
                   "access key secret": key_secret, "password": password,
                   "session token": session or ""}
        with open(os.path.join(self.daemon.data_dir, "logs", "planted.log"), "w") as f:
            f.write("debug: key=%s sas=?%s secret %s\n" % (key, sas, s3_secret))
            f.write('{"password": "%s", "token": "%s"}\n' % (password, session))
        for path in ("/api/v1/storage-accounts", "/api/v1/access-keys", "/api/v1/users"):
            r = c("GET", path, token=a, expect=200)
            for what, v in secrets.items():
                if v and v.encode() in r.data:
                    FAIL.add("%s appears in GET %s" % (what, path))
        r = c("POST", "/api/v1/support-package", body={}, token=op, expect=202)
        job = self.wait_job(r.json["job"], op) if r.status == 202 and r.json else None
        if not job or job["state"] != "succeeded":
            FAIL.add("no support package to check for secrets: %s" % jdump(job, 300))
            return
        d = c("GET", "/api/v1/jobs/{id}/download", params={"id": job["id"]}, token=op,
              expect=200)
        pkg = os.path.join(self.tmp, "secrets.tar.zst")
        out = os.path.join(self.tmp, "secrets-unpacked")
        with open(pkg, "wb") as f:
            f.write(d.data)
        os.makedirs(out, exist_ok=True)
        if subprocess.call(["tar", "--zstd", "-xf", pkg, "-C", out]) != 0:
            FAIL.add("the support package does not unpack with tar --zstd")
            return
        texts = {}
        for root, _, files in os.walk(out):
            for name in files:
                with open(os.path.join(root, name), "rb") as f:
                    texts[os.path.relpath(os.path.join(root, name), out)] = f.read()
        if not any(n.endswith("planted.log") for n in texts):
            FAIL.add("the support package has no logs/planted.log: %s" % sorted(texts))
        files_on_box = {}
        for name in ("settings.toml", os.path.join("logs", "api-audit.log"),
                     os.path.join("logs", "alerts.log")):
            p = os.path.join(self.daemon.data_dir, name)
            if os.path.exists(p):
                with open(p, "rb") as f:
                    files_on_box["<data_dir>/" + name] = f.read()
        files_on_box["the daemon's log"] = "".join(self.daemon.lines).encode()
        for what, v in secrets.items():
            if not v:
                continue
            forms = {v, base64.b64encode(v.encode()).decode(),
                     urllib.parse.quote(v, safe="")}
            for name, data in list(texts.items()):
                for form in forms:
                    if form.encode() in data:
                        FAIL.add("%s is in the support package's %s" % (what, name))
            for name, data in files_on_box.items():
                if name.endswith("planted.log"):
                    continue
                if v.encode() in data:
                    FAIL.add("%s is in %s" % (what, name))
        c("DELETE", "/api/v1/shares/{name}", params={"name": "leaky"}, query={"force": "true"},
          token=a, expect=204)
        for name in ("leaky-az", "leaky-sas", "leaky-s3"):
            c("DELETE", "/api/v1/storage-accounts/{name}", params={"name": name}, token=a,
              expect=204)
        c("DELETE", "/api/v1/users/{name}", params={"name": "leaky"}, token=a, expect=204)
        os.remove(os.path.join(self.daemon.data_dir, "logs", "planted.log"))

    def flow_logs(self):
        c, a, rd = self.c, self.admin(), self.tokens["reader"]
        for kind in ("copy", "refresh", "errors", "audit", "api"):
            c("GET", "/api/v1/logs/{kind}", params={"kind": kind}, token=a, expect=200)
        r = c("GET", "/api/v1/logs/{kind}", params={"kind": "api"}, query={"limit": 2},
              token=a, expect=200)
        if r.json and (len(r.json["entries"]) != 2 or r.json["next_offset"] != 2):
            FAIL.add("GET /api/v1/logs/api?limit=2 should give 2 entries and next_offset 2: %s"
                     % short(r.data))
        c("GET", "/api/v1/logs/{kind}", params={"kind": "refresh"},
          query={"share": "fixture-cloud"}, token=rd, expect=200)
        c("GET", "/api/v1/logs/{kind}", params={"kind": "api"}, token=rd, expect=403,
          what="the API audit log as a reader")
        c("GET", "/api/v1/logs/{kind}", params={"kind": "bogus"}, token=rd, expect=404)
        c("GET", "/api/v1/logs/{kind}", params={"kind": "copy"}, query={"limit": 0}, token=rd,
          expect=400)
        c("GET", "/api/v1/logs/{kind}", params={"kind": "copy"}, query={"offset": "x"},
          token=rd, expect=400)
        c("GET", "/api/v1/logs/{kind}", params={"kind": "copy"}, query={"share": "nothing"},
          token=rd, expect=404)

    def flow_certificates(self):
        c, a, rd = self.c, self.admin(), self.tokens["reader"]
        port = self.client.port
        r = c("GET", "/api/v1/certificates", token=rd, expect=200)
        fp = tls_fingerprint(port, self.ca_file)
        if r.json and r.json.get("sha256_fingerprint") != fp:
            FAIL.add("GET /api/v1/certificates fingerprint %s, the server presents %s" %
                     (r.json.get("sha256_fingerprint"), fp))
        # A new self-signed certificate for 127.0.0.1.
        d = os.path.join(self.tmp, "cert")
        os.makedirs(d)
        crt, key = os.path.join(d, "c.pem"), os.path.join(d, "k.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt,
                        "-days", "20", "-subj", "/CN=conformance.test/O=Fieldstack test",
                        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cert_pem, key_pem = open(crt).read(), open(key).read()
        c("PUT", "/api/v1/certificates", body={"cert_pem": cert_pem, "key_pem": "garbage"},
          token=a, expect=400, what="certificate with a bad key")
        c("PUT", "/api/v1/certificates", body={"cert_pem": cert_pem}, token=a, expect=400,
          what="certificate without a key")
        c("PUT", "/api/v1/certificates", body={"pfx_base64": "!!!"}, token=a, expect=400)
        r = c("PUT", "/api/v1/certificates", body={"cert_pem": cert_pem, "key_pem": key_pem},
              token=a, expect=200)
        self.cert_body = {"cert_pem": cert_pem, "key_pem": key_pem}
        if r.status == 200:
            self.ca_file = crt
            self.client.set_ca(crt)
            want = subprocess.run(["openssl", "x509", "-in", crt, "-noout", "-fingerprint",
                                   "-sha256"], check=True, capture_output=True,
                                  text=True).stdout.strip().split("=", 1)[1]
            got = tls_fingerprint(port, crt)
            if got != want:
                FAIL.add("after the upload the server presents %s, not the new certificate %s"
                         % (got, want))
            if r.json and r.json.get("sha256_fingerprint") != want:
                FAIL.add("PUT /api/v1/certificates answered fingerprint %s, want %s" %
                         (r.json.get("sha256_fingerprint"), want))
        # It expires within 30 days: the health pass (every second here) raises
        # certificate.expiring; an operator acknowledges it.
        seq = self.wait_alert("certificate.expiring", "box", True)
        op = self.tokens["operator"]
        if seq is not None:
            c("POST", "/api/v1/alerts/{seq}/ack", params={"seq": seq}, token=op, expect=204)
            r = c("GET", "/api/v1/alerts", token=rd, expect=200)
            acked = [x for x in (r.json or {}).get("alerts", []) if x["seq"] == seq]
            if not acked or not acked[0]["acknowledged"] or \
                    acked[0]["acknowledged_by"] != "operator1" or acked[0]["cleared"] is not None:
                FAIL.add("the acknowledged alert does not say so: %s" %
                         jdump(acked[0] if acked else None, 400))
        # Regenerate: a new self-signed certificate in <data_dir>/tls/box.crt.
        r = c("POST", "/api/v1/certificates/regenerate", token=a, expect=200)
        if r.status == 200:
            box_crt = os.path.join(self.daemon.data_dir, "tls", "box.crt")
            self.ca_file = box_crt
            self.client.set_ca(box_crt)
            got = tls_fingerprint(port, box_crt)
            if r.json and r.json.get("sha256_fingerprint") != got:
                FAIL.add("after regenerate the server presents %s; the answer said %s" %
                         (got, r.json.get("sha256_fingerprint")))
            box_key = os.path.join(self.daemon.data_dir, "tls", "box.key")
            self.cert_body = {"cert_pem": open(box_crt).read(), "key_pem": open(box_key).read()}
        c("GET", "/api/v1/certificates", token=rd, expect=200)
        # The new certificate lasts: the alert clears and stays in the history.
        if seq is not None and self.wait_alert("certificate.expiring", "box", False) is None:
            r = c("GET", "/api/v1/alerts", query={"state": "all"}, token=rd, expect=200)
            old = [x for x in (r.json or {}).get("alerts", []) if x["seq"] == seq]
            if not old or old[0]["cleared"] is None:
                FAIL.add("the cleared alert %s is not in the history with its clear time: %s" %
                         (seq, jdump(old, 400)))
            c("POST", "/api/v1/alerts/{seq}/ack", params={"seq": seq}, token=op, expect=404,
              what="acknowledge a cleared alert")

    def wait_alert(self, alert_id, subject, active, timeout_s=10):
        """The seq of the active alert (active=True), or None once it is gone (active=False)."""
        deadline = time.time() + timeout_s
        while True:
            r = self.c("GET", "/api/v1/alerts", token=self.tokens["reader"], expect=200,
                       what="wait for alert")
            found = [x["seq"] for x in (r.json or {}).get("alerts", [])
                     if x["id"] == alert_id and x["subject"] == subject]
            if active and found:
                return found[0]
            if not active and not found:
                return None
            if time.time() > deadline:
                FAIL.add("alert %s (%s) did not %s within %d s" %
                         (alert_id, subject, "appear" if active else "clear", timeout_s))
                return None if active else found[0]
            time.sleep(0.25)

    def flow_health_and_metrics(self):
        c, rd = self.c, self.tokens["reader"]
        c("GET", "/healthz", token=rd, expect=200)
        r = c("GET", "/metrics", token=rd, expect=200)
        if r.status == 200 and b"# TYPE fieldstack_" not in r.data:
            FAIL.add("/metrics does not look like Prometheus text: %s" % short(r.data))
        c("GET", "/api/v1/metrics/summary", token=rd, expect=200)
        c("GET", "/api/v1/routes", token=rd, expect=200)

    # A file pipeline on the default share: a filter step, a JSON lines file sink.
    FIXTURE_PIPELINE = {
        "name": "fixture-pipe", "enabled": True,
        "trigger": {"type": "file", "share": "default", "glob": "incoming/**/*.csv",
                    "settle_ms": 0},
        "input": {"format": "csv", "delimiter": ",", "infer_types": True},
        "steps": [{"type": "filter", "where": "temp_c > 30 and site in ('north', 'east')"}],
        "sinks": [{"type": "file", "share": "default", "path": "hot/{stem}-v{version}.jsonl",
                   "format": "jsonl", "compress": "none"}],
        "retry": {"max_attempts": 3, "backoff_ms": 1000, "max_backoff_ms": 60000}}
    FIXTURE_MODULE = b"#!/bin/sh\n# conformance fixture: records pass through\nexec cat\n"

    def wait_for(self, what, fetch, done, timeout_s=20):
        """Polls fetch() until done(result); returns the last result."""
        deadline = time.time() + timeout_s
        while True:
            r = fetch()
            if done(r):
                return r
            if time.time() > deadline:
                FAIL.add("%s did not happen within %d s: %s" % (what, timeout_s,
                                                                short(getattr(r, "data", r))))
                return r
            time.sleep(0.2)

    def flow_compute(self):
        import base64
        c, a, op, rd = self.c, self.admin(), self.tokens["operator"], self.tokens["reader"]
        P1, PN = "/api/v1/pipelines/{name}", {"name": "fixture-pipe"}
        r = c("GET", "/api/v1/compute", token=rd, expect=200)
        if r.json and (r.json["mqtt"] != {"broker": "off"} or r.json["pipelines"] != 0):
            FAIL.add("GET /api/v1/compute without MQTT and pipelines: %s" % short(r.data))
        r = c("GET", "/api/v1/pipelines", token=rd, expect=200)
        if r.json and r.json["pipelines"]:
            FAIL.add("a new box has pipelines: %s" % short(r.data))
        decl = copy.deepcopy(self.FIXTURE_PIPELINE)
        r = c("POST", "/api/v1/pipelines", body=decl, token=a, expect=201)
        if r.json and (r.json["name"] != "fixture-pipe" or r.json["trigger"] != "file" or
                       r.json["declaration"] != decl):
            FAIL.add("POST /api/v1/pipelines answered %s" % short(r.data, 600))
        c("POST", "/api/v1/pipelines", body=decl, token=a, expect=409, what="duplicate pipeline")
        r = c("GET", P1, params=PN, token=rd, expect=200)
        if r.json and r.json["declaration"] != decl:
            FAIL.add("the declaration changed on its way through the settings: %s" %
                     short(r.data, 600))
        if r.json and "status" not in r.json:
            FAIL.add("GET %s has no status" % P1)
        r = c("GET", "/api/v1/pipelines", token=rd, expect=200)
        if r.json and [p["name"] for p in r.json["pipelines"]] != ["fixture-pipe"]:
            FAIL.add("GET /api/v1/pipelines does not list fixture-pipe: %s" % short(r.data))
        changed = copy.deepcopy(decl)
        del changed["name"]
        changed["steps"][0]["where"] = "temp_c > 40"
        r = c("PUT", P1, params=PN, body=changed, token=a, expect=200)
        if r.json and r.json["declaration"].get("steps") != changed["steps"]:
            FAIL.add("PUT %s did not replace the steps: %s" % (P1, short(r.data, 600)))
        c("PUT", P1, params=PN, body=dict(changed, name="other-name"), token=a, expect=400,
          what="PUT with another name")
        c("PUT", P1, params={"name": "nothing-here"}, body=changed, token=a, expect=404)
        r = c("PUT", P1, params=PN, body=decl, token=a, expect=200, what="back to the fixture")

        # Declarations the box refuses: 400 naming the field (or MQTT, which is off here).
        def bad(what, field, **parts):
            body = copy.deepcopy(self.FIXTURE_PIPELINE)
            body["name"] = "refused"
            body.update(parts)
            r = c("POST", "/api/v1/pipelines", body=body, token=a, expect=400, what=what)
            if r.status == 400 and field not in r.message():
                FAIL.add("%s: the message does not name %s: %r" % (what, field, r.message()))

        bad("a trigger on a share that does not exist", "trigger.share",
            trigger={"type": "file", "share": "no-such-share"})
        bad("a sink on a share that does not exist", "sinks[0].share",
            sinks=[{"type": "file", "share": "no-such-share"}])
        bad("a filter that does not parse", "steps[0]", steps=[{"type": "filter",
                                                               "where": "temp_c >"}])
        bad("an unknown step", "steps[1]", steps=[{"type": "sample", "every": 2},
                                                  {"type": "teleport"}])
        bad("a files module after another step", "steps[1].mode",
            steps=[{"type": "sample", "every": 2},
                   {"type": "module", "module": "x.sh", "mode": "files"}])
        bad("a bad cron", "trigger.cron", trigger={"type": "schedule", "cron": "61 * * * *"})
        bad("a bad topic filter", "trigger.topics[0]",
            trigger={"type": "mqtt", "topics": ["a/#/b"]})
        bad("an MQTT trigger without a broker", "MQTT",
            trigger={"type": "mqtt", "topics": ["sensors/+/temp"]})
        bad("an MQTT sink without a broker", "MQTT", sinks=[{"type": "mqtt",
                                                             "topic": "alerts/{site}"}])
        bad("a webhook that is not http", "sinks[0].url",
            sinks=[{"type": "webhook", "url": "ftp://example.com/x"}])
        bad("a null", "input.delimiter", input={"format": "csv", "delimiter": None})
        r = c("GET", "/api/v1/pipelines", token=rd, expect=200)
        if r.json and len(r.json["pipelines"]) != 1:
            FAIL.add("refused declarations were kept: %s" % short(r.data, 600))

        # Modules.
        M1 = "/api/v1/modules/{name}"
        content = self.FIXTURE_MODULE
        r = c("PUT", M1, params={"name": "fixture-mod.sh"},
              body={"content_base64": base64.b64encode(content).decode()}, token=a, expect=200)
        want = {"name": "fixture-mod.sh", "size_bytes": len(content),
                "sha256": hashlib.sha256(content).hexdigest()}
        if r.json and r.json != want:
            FAIL.add("PUT %s answered %s, want %s" % (M1, short(r.data), jdump(want)))
        r = c("GET", "/api/v1/modules", token=rd, expect=200)
        listed = [m for m in (r.json or {}).get("modules", []) if m["name"] == "fixture-mod.sh"]
        if r.json and (len(listed) != 1 or listed[0]["sha256"] != want["sha256"]):
            FAIL.add("GET /api/v1/modules does not list fixture-mod.sh: %s" % short(r.data))
        c("PUT", M1, params={"name": ".hidden"}, body={"content_base64": "Zg=="}, token=a,
          expect=400, what="a module name starting with a dot")
        c("PUT", M1, params={"name": "empty.sh"}, body={"content_base64": ""}, token=a,
          expect=400, what="an empty module")
        c("PUT", M1, params={"name": "bad.sh"}, body={"content_base64": "not base64!"}, token=a,
          expect=400, what="a module that is not base64")
        uses = {"name": "fixture-uses-mod",
                "trigger": {"type": "file", "share": "default", "glob": "never/*.jsonl"},
                "steps": [{"type": "module", "module": "fixture-mod.sh", "args": ["-u"],
                           "limits": {"memory_mb": 64, "cpus": 0.5, "timeout_s": 30,
                                      "network": False}}],
                "sinks": [{"type": "file", "share": "default"}]}
        c("POST", "/api/v1/pipelines", body=uses, token=a, expect=201)
        c("DELETE", M1, params={"name": "fixture-mod.sh"}, token=a, expect=409,
          what="delete a module a pipeline uses")
        c("DELETE", P1, params={"name": "fixture-uses-mod"}, token=a, expect=204)
        c("DELETE", P1, params={"name": "fixture-uses-mod"}, token=a, expect=404)

        # A schedule pipeline whose only step is a module that is not stored: a run started
        # by hand fails at once and, with one attempt, becomes a dead letter.
        sched = {"name": "fixture-sched", "enabled": True,
                 "trigger": {"type": "schedule", "cron": "0 0 1 1 *"},
                 "steps": [{"type": "module", "module": "fixture-missing.sh", "mode": "files"}],
                 "sinks": [{"type": "file", "share": "default", "path": "sched/{name}"}],
                 "retry": {"max_attempts": 1, "backoff_ms": 0}}
        SN = {"name": "fixture-sched"}
        r = c("POST", "/api/v1/pipelines", body=sched, token=a, expect=201)
        if r.json and r.json["trigger"] != "schedule":
            FAIL.add("a schedule pipeline says trigger %r" % r.json["trigger"])
        c("POST", P1 + "/run", params=SN, token=op, expect=202)
        c("POST", P1 + "/run", params={"name": "nothing-here"}, token=op, expect=404)
        runs = lambda q=None: c("GET", P1 + "/runs", params=SN, query=q, token=rd,  # noqa: E731
                                expect=200, what="runs")
        r = self.wait_for("a run of fixture-sched", runs,
                          lambda r: r.status != 200 or (r.json and r.json["runs"]))
        if r.json and r.json["runs"] and r.json["runs"][0]["result"] != "dead":
            FAIL.add("the run of a missing module should be dead: %s" % short(r.data, 600))
        c("GET", P1 + "/runs", params=SN, query={"limit": 1, "before": 1}, token=rd, expect=200)
        c("GET", P1 + "/runs", params=SN, query={"limit": 0}, token=rd, expect=400)
        c("GET", P1 + "/runs", params=SN, query={"before": "x"}, token=rd, expect=400)
        c("GET", P1 + "/runs", params={"name": "nothing-here"}, token=rd, expect=404)
        D = P1 + "/dead-letters"
        dead = lambda: c("GET", D, params=SN, token=rd, expect=200,  # noqa: E731
                         what="dead letters")
        r = self.wait_for("a dead letter of fixture-sched", dead,
                          lambda r: r.status != 200 or (r.json and r.json["dead_letters"]))
        dl = (r.json or {}).get("dead_letters") or []
        c("GET", D, params=SN, query={"limit": 0}, token=rd, expect=400)
        c("GET", D, params={"name": "nothing-here"}, token=rd, expect=404)
        if dl:
            did = {"name": "fixture-sched", "id": dl[0]["id"]}
            c("POST", D + "/{id}/retry", params=did, token=op, expect=202)
            self.wait_for("the retried dead letter to fail again", dead,
                          lambda r: r.status != 200 or any(
                              x["id"] == dl[0]["id"] for x in (r.json or {}).get(
                                  "dead_letters", [])))
            c("DELETE", D + "/{id}", params=did, token=op, expect=204)
            c("DELETE", D + "/{id}", params=did, token=op, expect=404)
            c("POST", D + "/{id}/retry", params=did, token=op, expect=404)
        c("POST", D + "/{id}/retry", params={"name": "fixture-sched", "id": "999999999"},
          token=op, expect=404)
        c("POST", D + "/{id}/retry", params={"name": "fixture-sched", "id": "abc"}, token=op,
          expect=400)
        c("DELETE", D + "/{id}", params={"name": "fixture-sched", "id": "-1"}, token=op,
          expect=400)
        c("DELETE", P1, params=SN, token=a, expect=204)
        r = c("GET", "/api/v1/compute", token=rd, expect=200)
        if r.json and r.json["pipelines"] != 1:
            FAIL.add("GET /api/v1/compute should count 1 pipeline: %s" % short(r.data))
        # fixture-pipe and fixture-mod.sh stay for the bad-input phase.

    # A model ONNX Runtime loads: y = Relu(x), x and y float32 [3, 4, 5] (Debian's
    # libonnx-testdata), and BlazeFace from scripts/install-deps (registered by path).
    RELU_MODEL = "/usr/share/libonnx-testdata/data/node/test_relu/model.onnx"
    BLAZEFACE_MODEL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".deps",
                                   "models", "blazeface",
                                   "face_detection_front_128x128_barracuda.onnx")

    def inference_available(self):
        r = self.c("GET", "/api/v1/compute", token=self.tokens["reader"], what="inference?")
        return bool(r.json) and not str(r.json.get("inference", "")).startswith("unavailable")

    def flow_models(self):
        import base64
        c, a, rd = self.c, self.admin(), self.tokens["reader"]
        MS, M1, MV = "/api/v1/models", "/api/v1/models/{name}", "/api/v1/models/{name}/{version}"
        r = c("GET", "/api/v1/compute", token=rd, expect=200)
        inference = (r.json or {}).get("inference")
        if not isinstance(inference, str) or not inference:
            FAIL.add("GET /api/v1/compute: inference should be a description: %s" % short(r.data))
            return
        if inference.startswith("unavailable"):
            c("GET", MS, token=rd, expect=409, what="models without a runtime")
            print("   models: skipped, %s" % inference, flush=True)
            return
        if not os.path.exists(self.RELU_MODEL):
            FAIL.add("%s is missing (apt-get install libonnx-testdata)" % self.RELU_MODEL)
            return
        with open(self.RELU_MODEL, "rb") as f:
            relu = f.read()
        relu_b64 = base64.b64encode(relu).decode()
        r = c("GET", MS, token=rd, expect=200)
        if r.json and r.json["models"]:
            FAIL.add("a new box has models: %s" % short(r.data))

        # Upload: version 1, then 2; the shapes are what the runtime found.
        tensor = lambda n: [{"name": n, "type": "float32", "shape": [3, 4, 5]}]  # noqa: E731
        for version in (1, 2):
            r = c("POST", M1, params={"name": "fixture-relu"}, body={"content_base64": relu_b64},
                  token=a, expect=201, what="upload version %d" % version)
            want = {"name": "fixture-relu", "version": version,
                    "sha256": hashlib.sha256(relu).hexdigest(), "size_bytes": len(relu),
                    "inputs": tensor("x"), "outputs": tensor("y")}
            if r.json and {k: r.json.get(k) for k in want} != want:
                FAIL.add("POST %s answered %s, want %s" % (M1, short(r.data, 400), jdump(want)))
        r = c("GET", M1, params={"name": "fixture-relu"}, token=rd, expect=200)
        if r.json and (r.json["name"] != "fixture-relu" or
                       [v["version"] for v in r.json["versions"]] != [1, 2]):
            FAIL.add("GET %s should give versions 1 and 2: %s" % (M1, short(r.data, 400)))
        c("GET", M1, params={"name": "nothing-here"}, token=rd, expect=404)
        c("GET", M1, params={"name": "Not.A.Model.Name"}, token=rd, expect=404)

        # Register by path: BlazeFace when installed, else the relu file again.
        path = os.path.abspath(self.BLAZEFACE_MODEL)
        if not os.path.exists(path):
            path = self.RELU_MODEL
        r = c("POST", M1, params={"name": "fixture-path"}, body={"path": path}, token=a,
              expect=201, what="register a file on the box")
        if r.json and r.status == 201:
            with open(path, "rb") as f:
                sha = hashlib.sha256(f.read()).hexdigest()
            ins = r.json["inputs"]
            if r.json["version"] != 1 or r.json["sha256"] != sha or not ins or \
                    (path != self.RELU_MODEL and ins[0]["shape"] != [1, 128, 128, 3]):
                FAIL.add("POST %s {path: %s} answered %s" % (M1, path, short(r.data, 400)))
        r = c("GET", MS, token=rd, expect=200)
        if r.json and [(m["name"], m["version"]) for m in r.json["models"]] != [
                ("fixture-path", 1), ("fixture-relu", 1), ("fixture-relu", 2)]:
            FAIL.add("GET %s should list fixture-path v1 and fixture-relu v1, v2: %s" %
                     (MS, short(r.data, 400)))

        # Refused: 400 naming the problem; nothing is registered.
        def refused(what, name, body, words):
            r = c("POST", M1, params={"name": name}, body=body, token=a, expect=400, what=what)
            msg = r.message()
            if r.status == 400 and not all(w in msg for w in words):
                FAIL.add("%s: the message should name %s: %r" % (what, " and ".join(words), msg))

        junk = base64.b64encode(bytes(random_bytes(512))).decode()
        refused("random bytes", "fixture-junk", {"content_base64": junk},
                ["not a usable ONNX model"])
        refused("an empty file", "fixture-junk", {"content_base64": ""}, ["content_base64"])
        refused("not base64", "fixture-junk", {"content_base64": "not base64!"},
                ["content_base64"])
        for bad_name in ("Upper", ".hidden", "-dash", "a" * 64, "white space"):
            refused("the model name %r" % bad_name, bad_name, {"content_base64": relu_b64},
                    ["name"])
        refused("both content_base64 and path", "fixture-junk",
                {"content_base64": relu_b64, "path": self.RELU_MODEL},
                ["content_base64", "path"])
        refused("neither content_base64 nor path", "fixture-junk", {},
                ["content_base64", "path"])
        refused("a relative path", "fixture-junk", {"path": "model.onnx"}, ["path"])
        refused("a path naming nothing", "fixture-junk", {"path": "/nothing/here.onnx"},
                ["path"])
        refused("a path naming a folder", "fixture-junk", {"path": "/usr/share"}, ["path"])
        refused("a path naming a file that is not a model", "fixture-junk",
                {"path": "/etc/hostname"}, ["not a usable ONNX model"])
        c("GET", M1, params={"name": "fixture-junk"}, token=rd, expect=404,
          what="nothing kept of refused models")

        # Delete: 409 while a pipeline uses the version, 400 for a bad version, 404 after.
        uses = {"name": "fixture-uses-model",
                "trigger": {"type": "file", "share": "default", "glob": "never/*.jpg"},
                "steps": [{"type": "anonymize", "model": "fixture-relu", "mode": "blur"}],
                "sinks": [{"type": "file", "share": "default", "path": "anon/{name}"}]}
        c("POST", "/api/v1/pipelines", body=uses, token=a, expect=201)
        P1, UN = "/api/v1/pipelines/{name}", {"name": "fixture-uses-model"}
        v = lambda n, name="fixture-relu": {"name": name, "version": n}  # noqa: E731
        r = c("DELETE", MV, params=v(2), token=a, expect=409,
              what="delete the newest version a pipeline uses")
        if r.status == 409 and "fixture-uses-model" not in r.message():
            FAIL.add("the 409 should name the pipeline: %r" % r.message())
        c("DELETE", MV, params=v(1), token=a, expect=204, what="delete a version no one uses")
        c("DELETE", MV, params=v(1), token=a, expect=404, what="delete it again")
        pinned = copy.deepcopy(uses)
        pinned["steps"][0]["version"] = 2
        c("PUT", P1, params=UN, body=pinned, token=a, expect=200)
        c("DELETE", MV, params=v(2), token=a, expect=409, what="delete a pinned version")
        for bad_version in ("0", "abc", "-1", "123456789"):
            c("DELETE", MV, params=v(bad_version), token=a, expect=400,
              what="version %r" % bad_version)
        c("DELETE", MV, params=v(1, "nothing-here"), token=a, expect=404)
        c("DELETE", P1, params=UN, token=a, expect=204)
        c("DELETE", MV, params=v(2), token=a, expect=204)
        c("GET", M1, params={"name": "fixture-relu"}, token=rd, expect=404,
          what="a model without versions")
        c("DELETE", MV, params=v(1, "fixture-path"), token=a, expect=204)
        r = c("GET", MS, token=rd, expect=200)
        if r.json and r.json["models"]:
            FAIL.add("deleted models are still listed: %s" % short(r.data, 400))

    def frame_behaviour(self):
        c, rd = self.c, self.tokens["reader"]
        r = self.client.raw("GET", "/api/v1/no-such-route",
                            headers={"Authorization": "Bearer " + rd})
        if r.status != 404 or not r.json or self.spec.validate(
                {"$ref": "#/components/schemas/ErrorNotFound"}, r.json):
            FAIL.add("an unknown route should be 404 with an error body: %d %s" %
                     (r.status, short(r.data)))
        r = self.client.raw("DELETE", "/api/v1/me", headers={"Authorization": "Bearer " + rd})
        if r.status != 400 or "GET" not in r.headers.get("allow", ""):
            FAIL.add("a wrong method should be 400 with Allow: GET; got %d %s %s" %
                     (r.status, r.headers.get("allow"), short(r.data)))
        c("POST", "/api/v1/logout", raw_body="{not json", token=self.tokens["logout-victim"],
          expect=400, what="a body that is not JSON")

    # --- bad input ---

    def state(self):
        """What bad input must not change."""
        a = self.admin()
        s = {}
        r = self.c("GET", "/api/v1/shares", token=a, what="state")
        s["shares"] = {x["name"]: {k: v for k, v in x.items() if k != "status"}
                       for x in (r.json or {}).get("shares", [])}
        r = self.c("GET", "/api/v1/users", token=a, what="state")
        s["users"] = {x["name"]: x for x in (r.json or {}).get("users", [])}
        r = self.c("GET", "/api/v1/storage-accounts", token=a, what="state")
        s["storage_accounts"] = {x["name"]: {k: v for k, v in x.items() if k != "reachable"}
                                 for x in (r.json or {}).get("storage_accounts", [])}
        r = self.c("GET", "/api/v1/access-keys", token=a, what="state")
        s["access_keys"] = {x["id"]: x for x in (r.json or {}).get("access_keys", [])}
        r = self.c("GET", "/api/v1/tokens", token=a, what="state")
        s["tokens"] = {x["id"]: x for x in (r.json or {}).get("tokens", [])}
        s["bandwidth"] = self.c("GET", "/api/v1/bandwidth", token=a, what="state").json
        s["cache"] = self.c("GET", "/api/v1/cache", token=a, what="state").json
        d = self.c("GET", "/api/v1/device", token=a, what="state").json or {}
        s["device"] = {"name": d.get("name"), "host_power": d.get("host_power")}
        s["alert_settings"] = self.c("GET", "/api/v1/alerts/settings", token=a,
                                     what="state").json
        r = self.c("GET", "/api/v1/pipelines", token=a, what="state")
        s["pipelines"] = {x["name"]: {"declaration": x["declaration"]}
                          for x in (r.json or {}).get("pipelines", [])}
        r = self.c("GET", "/api/v1/modules", token=a, what="state")
        s["modules"] = {x["name"]: {"sha256": x["sha256"]}
                        for x in (r.json or {}).get("modules", [])}
        r = self.c("GET", "/api/v1/models", token=a, what="state")
        s["models"] = {"%s/%d" % (x["name"], x["version"]): {"sha256": x["sha256"]}
                       for x in (r.json or {}).get("models", [])}
        return s

    def restore(self, before, after):
        """Undoes what a wrongly accepted request changed (best effort)."""
        c, a = self.c, self.admin()
        for name in set(after["shares"]) - set(before["shares"]):
            c("DELETE", "/api/v1/shares/{name}", params={"name": name}, query={"force": "true"},
              token=a, what="undo")
        for name, sh in before["shares"].items():
            if after["shares"].get(name) not in (None, sh):
                body = {k: sh[k] for k in ("smb", "smb_encrypt", "nfs", "nfs_clients",
                                           "nfs_read_only", "nfs_squash")}
                if sh["kind"] == "cloud":
                    body["refresh_ttl_s"] = sh["refresh_ttl_s"]
                    body["cache"] = sh["cache"]
                    if sh["target"]:
                        body["storage_account"] = sh["target"]["storage_account"]
                        body["container"] = sh["target"]["container"]
                        body["policy"] = sh["target"]["policy"]
                c("PATCH", "/api/v1/shares/{name}", params={"name": name}, body=body, token=a,
                  what="undo")
        for name in set(after["users"]) - set(before["users"]):
            c("DELETE", "/api/v1/users/{name}", params={"name": name}, token=a, what="undo")
        for name, u in before["users"].items():
            if after["users"].get(name, {}).get("role") not in (None, u["role"]):
                c("PATCH", "/api/v1/users/{name}", params={"name": name},
                  body={"role": u["role"]}, token=a, what="undo")
        for name in set(after["storage_accounts"]) - set(before["storage_accounts"]):
            c("DELETE", "/api/v1/storage-accounts/{name}", params={"name": name}, token=a,
              what="undo")
        for name, acct in before["storage_accounts"].items():
            if after["storage_accounts"].get(name) not in (None, acct):
                c("PATCH", "/api/v1/storage-accounts/{name}", params={"name": name},
                  body={k: acct[k] for k in ("endpoint", "account", "region", "addressing",
                                             "path")}, token=a, what="undo")
        for kid in set(after["access_keys"]) - set(before["access_keys"]):
            c("DELETE", "/api/v1/access-keys/{id}", params={"id": kid}, token=a, what="undo")
        for kid, k in before["access_keys"].items():
            if after["access_keys"].get(kid) not in (None, k):
                c("PATCH", "/api/v1/access-keys/{id}", params={"id": kid},
                  body={"read": k["read"], "write": k["write"]}, token=a, what="undo")
        for tid in set(after["tokens"]) - set(before["tokens"]):
            c("DELETE", "/api/v1/tokens/{id}", params={"id": tid}, token=a, what="undo")
        b = before["bandwidth"]
        if b and after["bandwidth"] != b:
            size = lambda v: "" if v is None else "%db" % v  # noqa: E731
            c("PUT", "/api/v1/bandwidth", body={"timetable": b["timetable"],
                                                "daily_budget": size(b["daily_budget_bytes"]),
                                                "monthly_budget": size(b["monthly_budget_bytes"]),
                                                "transfers": b["transfers"]}, token=a,
              what="undo")
        if before["cache"] and after["cache"] != before["cache"]:
            c("PUT", "/api/v1/cache", body=before["cache"], token=a, what="undo")
        if after["device"] != before["device"]:
            c("PATCH", "/api/v1/device", body=before["device"], token=a, what="undo")
        if before["alert_settings"] and after["alert_settings"] != before["alert_settings"]:
            c("PUT", "/api/v1/alerts/settings", body=before["alert_settings"], token=a,
              what="undo")
        for name in set(after["pipelines"]) - set(before["pipelines"]):
            c("DELETE", "/api/v1/pipelines/{name}", params={"name": name}, token=a, what="undo")
        for name, p in before["pipelines"].items():
            if after["pipelines"].get(name) not in (None, p):
                c("PUT", "/api/v1/pipelines/{name}", params={"name": name},
                  body=p["declaration"], token=a, what="undo")
        for key in set(after["models"]) - set(before["models"]):
            name, version = key.split("/")
            c("DELETE", "/api/v1/models/{name}/{version}",
              params={"name": name, "version": version}, token=a, what="undo")
        for name in set(after["modules"]) - set(before["modules"]):
            c("DELETE", "/api/v1/modules/{name}", params={"name": name}, token=a, what="undo")
        if after["modules"].get("fixture-mod.sh") not in (None,
                                                          before["modules"].get("fixture-mod.sh")):
            import base64
            c("PUT", "/api/v1/modules/{name}", params={"name": "fixture-mod.sh"},
              body={"content_base64": base64.b64encode(self.FIXTURE_MODULE).decode()}, token=a,
              what="undo")

    def relu_base64(self):
        import base64
        try:
            with open(self.RELU_MODEL, "rb") as f:
                return base64.b64encode(f.read()).decode()
        except OSError:
            return "AAAA"

    @staticmethod
    def diff(before, after):
        out = set()
        for k in before:
            b, a = before[k], after[k]
            if b == a:
                continue
            if isinstance(b, dict) and isinstance(a, dict):
                for x in sorted(set(a) - set(b)):
                    out.add("%s %r added" % (k, x))
                for x in sorted(set(b) - set(a)):
                    out.add("%s %r removed" % (k, x))
                for x in sorted(set(a) & set(b)):
                    if a[x] != b[x]:
                        fields = sorted(f for f in set(a[x]) | set(b[x])
                                        if a[x].get(f) != b[x].get(f)) \
                            if isinstance(a[x], dict) and isinstance(b[x], dict) else []
                        out.add("%s %r changed %s" % (k, x, ",".join(map(str, fields))))
            else:
                out.add("%s changed" % k)
        return out

    def bad_input_targets(self):
        """Per write route: who calls, the path, and a valid body that mutations start from.

        The valid bodies are never sent as they are; where a mutation is wrongly accepted the
        state check catches the change and restore() undoes it.
        """
        a = self.admin()
        op = self.tokens["operator"]
        cloud = os.path.join(self.tmp, "cloud-bad")
        os.makedirs(cloud, exist_ok=True)  # a localfs account names an existing folder
        return {
            ("POST", "/api/v1/setup"): dict(
                token=None, body={"setup_code": "ABCD-EFGH-JKLM-NPQR-STUV-WXYZ-2345-6789",
                                  "user": "admin2", "password": PASSWORD},
                also=(409,)),  # the box is set up: 409 may come before the field checks
            ("POST", "/api/v1/login"): dict(token=None,
                                            body={"user": "reader1", "password": PASSWORD}),
            ("POST", "/api/v1/logout"): dict(token=self.tokens["logout-victim"], body={}),
            ("PUT", "/api/v1/me/password"): dict(
                token=self.tokens["pwuser"],
                body={"old_password": PASSWORD, "new_password": "yet another password"}),
            ("POST", "/api/v1/users"): dict(
                token=a, body={"name": "badinput", "role": "reader", "password": PASSWORD}),
            ("PATCH", "/api/v1/users/{name}"): dict(token=a, params={"name": "patchme"},
                                                    body={"role": "reader"}),
            ("POST", "/api/v1/tokens"): dict(token=a, body={"name": "badinput", "role": "reader",
                                                            "expires_in_s": 3600}),
            ("POST", "/api/v1/access-keys"): dict(
                token=a, body={"user": "badinput", "read": ["default"], "write": ["*"]}),
            ("PATCH", "/api/v1/access-keys/{id}"): dict(
                token=a, params={"id": self.fixture_key}, body={"read": ["default"],
                                                                "write": []}),
            ("POST", "/api/v1/storage-accounts"): dict(
                token=a, body={"name": "badinput", "type": "localfs", "path": cloud}),
            ("PATCH", "/api/v1/storage-accounts/{name}"): dict(
                token=a, params={"name": "fixture-acct"}, body={"path": self.cloud_dir}),
            ("POST", "/api/v1/shares"): dict(
                token=a, body={"name": "badinput", "kind": "cloud",
                               "storage_account": "fixture-acct", "container": "badinput"}),
            ("PATCH", "/api/v1/shares/{name}"): dict(
                token=a, params={"name": "fixture-cloud"}, body={"nfs_read_only": False}),
            ("POST", "/api/v1/shares/{name}/refresh"): dict(
                token=op, params={"name": "fixture-cloud"}, body={"paths": ["sub"]}),
            ("PUT", "/api/v1/bandwidth"): dict(token=a, body={"transfers": 4}),
            ("PUT", "/api/v1/cache"): dict(token=a, body={"interval_s": 5}),
            ("PATCH", "/api/v1/device"): dict(token=a, body={"host_power": False}),
            ("POST", "/api/v1/encryption/rotate"): dict(token=a, body={}),
            ("POST", "/api/v1/alerts/{seq}/ack"): dict(token=op, params={"seq": "999999"},
                                                       body={}),
            ("PUT", "/api/v1/alerts/settings"): dict(token=a, body={"webhook": ""}),
            ("POST", "/api/v1/jobs/{id}/cancel"): dict(
                token=op, params={"id": getattr(self, "finished_job", "job-000000000000")},
                body={}),
            ("POST", "/api/v1/diagnostics"): dict(token=op, body={}),
            ("POST", "/api/v1/drain"): dict(token=op, body={}),
            ("POST", "/api/v1/support-package"): dict(token=op, body={}),
            ("PUT", "/api/v1/certificates"): dict(token=a, body=dict(self.cert_body)),
            ("POST", "/api/v1/certificates/regenerate"): dict(token=a, body={}),
            # Compute: a new pipeline, the fixture's replacement (name optional there), a module.
            ("POST", "/api/v1/pipelines"): dict(
                token=a, body=dict(copy.deepcopy(self.FIXTURE_PIPELINE), name="badinput")),
            ("PUT", "/api/v1/pipelines/{name}"): dict(
                token=a, params={"name": "fixture-pipe"},
                body=copy.deepcopy(self.FIXTURE_PIPELINE)),
            ("POST", "/api/v1/pipelines/{name}/run"): dict(
                token=op, params={"name": "fixture-pipe"}, body={}),
            ("POST", "/api/v1/pipelines/{name}/dead-letters/{id}/retry"): dict(
                token=op, params={"name": "fixture-pipe", "id": "999999999"}, body={}),
            ("PUT", "/api/v1/modules/{name}"): dict(
                token=a, params={"name": "badinput.sh"},
                body={"content_base64": "IyEvYmluL3NoCmV4ZWMgY2F0Cg=="}),
            # A model upload (relu). Without an inference runtime a body that passes the
            # field checks is 409.
            ("POST", "/api/v1/models/{name}"): dict(
                token=a, params={"name": "badinput"},
                body={"content_base64": self.relu_base64()},
                also=() if self.inference_available() else (409,)),
            # scope "host" with host_power false: even a wrongly accepted request cannot act.
            # No null for scope: the server reads null as "daemon" and would restart.
            ("POST", "/api/v1/power"): dict(token=a, body={"action": "restart", "scope": "host"},
                                            no_null=("scope",)),
        }

    def mutations(self, schema, base):
        """(kind, field path, value) for every bad input of a body schema."""
        s = self.spec.flatten(schema)
        props = s.get("properties", {})
        out = []

        def wrong_types(t):
            return {"string": [123, True, None, [], {}],
                    "integer": ["1", True, None, 1.5, []],
                    "number": ["1", True, None],
                    "boolean": ["true", 1, None],
                    "array": ["x", {}, None],
                    "object": ["x", [], None]}.get(t, [])

        def walk(props, prefix, base):
            for name, ps in props.items():
                f = self.spec.flatten(ps)
                t = f.get("type")
                path = prefix + (name,)
                free = bool(f.get("x-fieldstack-free-text"))
                for v in wrong_types(t):
                    out.append(("wrong type", path, v, False))
                if t == "string":
                    if "maxLength" in f:
                        out.append(("too long", path, "a" * (f["maxLength"] + 1), False))
                    for inj in INJECTIONS:
                        out.append(("injection", path, inj, free))
                elif t == "integer":
                    if "maximum" in f:
                        out.append(("out of range", path, f["maximum"] + 1, False))
                    if "minimum" in f:
                        out.append(("out of range", path, f["minimum"] - 1, False))
                elif t == "array":
                    items = self.spec.flatten(f.get("items", {}))
                    ifree = bool(items.get("x-fieldstack-free-text"))
                    sample = (base or {}).get(name) or ["*"]
                    if "maxItems" in f:
                        out.append(("too many", path, [sample[0]] * (f["maxItems"] + 1), False))
                    if "maxLength" in items:
                        out.append(("too long", path, ["a" * (items["maxLength"] + 1)], False))
                    for v in (123, None, True):
                        out.append(("wrong type", path + ("[]",), [v], False))
                    for inj in INJECTIONS:
                        out.append(("injection", path, [inj], ifree))
                elif t == "object" and "properties" in f:
                    walk(f["properties"], path, (base or {}).get(name) or {})

        walk(props, (), base)
        for r in s.get("required", []):
            out.append(("missing", (r,), DELETE, False))
        out.append(("unknown field", ("bogus_field",), 1, False))
        return out

    @staticmethod
    def apply(base, path, value):
        body = copy.deepcopy(base)
        cur = body
        keys = [k for k in path if k != "[]"]
        for k in keys[:-1]:
            cur = cur.setdefault(k, {})
        if value is DELETE:
            cur.pop(keys[-1], None)
        else:
            cur[keys[-1]] = value
        return body

    @staticmethod
    def names_problem(msg, path, value):
        """The message names the field, or quotes the value that is wrong."""
        msg = msg.lower()
        field = path[-1] if path[-1] != "[]" else path[-2]
        words = {field, field.replace("_", " ")}
        parts = field.split("_")
        for part in (parts[0], parts[-1]):
            if len(part) >= 3 and part not in ("pem",):
                words.add(part)
        if isinstance(value, list) and value:
            value = value[0]
        if isinstance(value, str) and "\x00" not in value and (
                len(value) >= 2 or (value and not value.isascii())):
            words.add(value.lower()[:40])
        return any(w in msg for w in words)

    def bad_input(self):
        targets = self.bad_input_targets()
        write_ops = {k for k, op in self.spec.ops.items() if op.get("requestBody")}
        for k in sorted(write_ops - set(targets)):
            FAIL.add("bad input: no target for %s %s (add it to bad_input_targets)" % k)
        sent = skipped = 0
        for (method, template), t in sorted(targets.items()):
            if (method, template) not in self.spec.ops:
                continue
            schema = self.spec.request_schema(method, template)
            self.routes_checked.add((method, template))
            before = self.state()
            want = (400,) + tuple(t.get("also", ()))
            label = "bad input %s %s" % (method, template)
            base = t["body"]
            changes = set()

            def send(body=NOBODY, raw=None, what=""):
                return self.c(method, template, params=t.get("params"), body=body, raw_body=raw,
                              token=t.get("token"), what=label + " " + what)

            # The body is not an object; the body is 2 MiB.
            for v in ([], "x", 1):
                r = send(body=v, what="(body %s)" % jdump(v))
                if r.status not in want:
                    FAIL.add("%s: a body of %s got %d, want 400: %s" % (label, jdump(v), r.status,
                                                                        short(r.data)))
            big = json.dumps({"padding": "x" * (2 << 20)})
            r = send(raw=big, what="(2 MiB body)")
            if r.status != 413:
                FAIL.add("%s: a 2 MiB body got %d, want 413: %s" % (label, r.status,
                                                                    short(r.data)))
            for kind, path, value, free in self.mutations(schema, base):
                if kind == "wrong type" and value is None and path[-1] in t.get("no_null", ()):
                    skipped += 1
                    continue
                body = self.apply(base, path, value)
                spec_errors = self.spec.validate(schema, body)
                if not spec_errors:
                    if free:  # valid text for a free-text field: sending it would change things
                        skipped += 1
                        continue
                    if kind != "injection":
                        FAIL.add("%s: the spec accepts the bad input %s %s = %s" %
                                 (label, kind, ".".join(path), jdump(value, 60)))
                sent += 1
                r = send(body=body, what="(%s %s = %s)" % (kind, ".".join(path),
                                                           jdump(value, 40)))
                if r.status not in want and not r.undeclared:  # else reported already
                    FAIL.add("%s: %s %s = %s got %d, want 400: %s" %
                             (label, kind, ".".join(path), jdump(value, 60), r.status,
                              short(r.data, 200)))
                if r.status not in want and r.status < 300:  # accepted: undo it first
                    now = self.state()
                    if now != before:
                        changes.update(self.diff(before, now))
                        self.restore(before, now)
                elif r.status == 400 and not self.names_problem(r.message(), path, value):
                    FAIL.add("%s: %s %s = %s: the message does not name the field: %r" %
                             (label, kind, ".".join(path), jdump(value, 60), r.message()))
            after = self.state()
            if after != before:
                changes.update(self.diff(before, after))
                self.restore(before, after)
            if changes:
                FAIL.add("%s: bad input changed the state: %s" % (label,
                                                                 "; ".join(sorted(changes))))
        print("   bad input: %d mutations sent, %d valid free-text values not sent" %
              (sent, skipped), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", required=True, help="the fieldstack binary")
    p.add_argument("--spec", required=True, help="api/openapi.yaml")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args()
    FAIL.live = args.verbose
    sys.exit(Conformance(args).run())


if __name__ == "__main__":
    main()
