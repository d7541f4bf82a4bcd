#!/usr/bin/python3
"""Signs one request with botocore (an independent SigV4 implementation) for sigv4_test.

stdin: JSON {method, url, headers: [[name, value], ...], body_b64, amz_date, access_key,
secret_key, token, region, presign_expires (0: header auth)}.
stdout: JSON {authorization, canonical_request, url}.
Run with Debian's /usr/bin/python3 (python3-botocore).
"""
import base64
import datetime
import json
import sys
import types

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

req = json.load(sys.stdin)
fixed = datetime.datetime.strptime(req["amz_date"], "%Y%m%dT%H%M%SZ")


class FixedDateTime(datetime.datetime):
    @classmethod
    def utcnow(cls):
        return fixed


botocore.auth.datetime = types.SimpleNamespace(datetime=FixedDateTime)
creds = Credentials(req["access_key"], req["secret_key"], req.get("token") or None)
body = base64.b64decode(req.get("body_b64", ""))
r = AWSRequest(method=req["method"], url=req["url"], data=body)
for name, value in req["headers"]:
    r.headers[name] = value
if req.get("presign_expires"):
    auth = botocore.auth.S3SigV4QueryAuth(creds, "s3", req["region"],
                                          expires=req["presign_expires"])
else:
    auth = botocore.auth.S3SigV4Auth(creds, "s3", req["region"])
    if req["url"].startswith("https"):
        r.context["client_config"] = Config(s3={"payload_signing_enabled": False})
auth.add_auth(r)
print(json.dumps({
    "authorization": r.headers.get("Authorization", ""),
    "canonical_request": auth.canonical_request(r),
    "url": r.url,
}))
