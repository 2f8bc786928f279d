"""Schemathesis hooks for kler-sim (scripts/check-openapi loads them with
SCHEMATHESIS_HOOKS).

- At import: asserts the SPEC 3 test vectors V1 and V2 against this module's
  canonical body and signature, then provisions a terminal through the org
  API (a session with one terminal) and registers a pairing device, on the
  sim at $KLER_SIM_URL with the organisation key $KLER_SIM_ORG_KEY.
- An auth provider gives org routes the organisation key, and terminal and
  pairing-poll routes the signature headers with the placeholder
  X-Signature "sign-me". The real nonce, timestamp and signature are computed
  when the request is sent (requests.Session.send), over the exact path,
  query and body bytes that go on the wire. Schemathesis' own probes
  (ignored_auth) remove these headers or set other values: they go unsigned
  and must be refused.
- map_case puts that terminal's id (and its session's) into the path of
  positive cases, so the signed requests reach their handlers instead of
  403 terminal_mismatch.
"""

import hashlib
import hmac
import json
import os
import time
import urllib.request
import uuid
from urllib.parse import urlsplit

import requests
import schemathesis

PLACEHOLDER = "sign-me"


# --------------------------------------------------------------------------
# SPEC 3: canonical body and signature
# --------------------------------------------------------------------------


class _Number(str):
    """A JSON number kept as written."""


def _compact(v):
    """Compact JSON with keys sorted at every depth (numbers as written)."""
    if isinstance(v, dict):
        return "{" + ",".join(
            json.dumps(k, ensure_ascii=False) + ":" + _compact(v[k]) for k in sorted(v)
        ) + "}"
    if isinstance(v, list):
        return "[" + ",".join(_compact(x) for x in v) + "]"
    if isinstance(v, _Number):
        return str(v)
    return json.dumps(v, ensure_ascii=False)


def canonical_body(body: bytes) -> str:
    """SPEC 3 canonical body of a request body ("" for none). Raises
    ValueError for a body that is not a JSON object."""
    if not body or not body.strip():
        return ""
    value = json.loads(body, parse_float=_Number, parse_int=_Number)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    parts = []
    for key in sorted(value):
        v = value[key]
        if v is None:
            continue
        if isinstance(v, _Number):
            text = str(v)
        elif isinstance(v, str):
            text = v
        elif isinstance(v, bool):
            text = "true" if v else "false"
        else:
            text = _compact(v)
        parts.append(f"{key}={text}")
    return "&".join(parts)


def signature(secret: str, api_key: str, nonce: str, ts: int, method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256(canonical_body(body).encode()).hexdigest()
    base = "\n".join([api_key, nonce, str(ts), method.upper(), path, digest])
    return hmac.new(secret.encode(), base.encode(), hashlib.sha256).hexdigest()


def _assert_vectors() -> None:
    v1 = b'{"reference":"REF-123","amount":"2000.00","currency":"NGN","customerEmail":"a@b.com"}'
    assert canonical_body(v1) == "amount=2000.00&currency=NGN&customerEmail=a@b.com&reference=REF-123"
    assert hashlib.sha256(canonical_body(v1).encode()).hexdigest() == (
        "a6e5478cc2b848d51e523d561861513b4c1cdc056cc755b3b5892d8091cdc002"
    )
    assert signature(
        "PZef9RE76HD-ptSJ7gMXmC9Crq9P0w9nYb_a-ieq_0I", "qduaTClFA3DTfakbIQGlTA",
        "5f0c6c3e-1f7e-4d0a-9a57-3b1f2f9f4c11", 1763719200, "POST", "/payment/api/payins", v1,
    ) == "fea95c024cd92db1d218173db723911ba05a318564ee6334caafa44f513625a1"
    v2 = (
        b'{"reference":"pos_3f1e2d_001-000042","kind":"sale","amount":"1500.50",'
        b'"currency":"NGN","offline":true,"captured_at":"2026-11-21T10:02:01Z",'
        b'"card":{"token":"9f2c4e1a0b7d3e6f8a1c2b4d6e8f0a1b","last4":"1111",'
        b'"brand":"visa","entry_mode":"contactless"},"payment_id":null}'
    )
    assert canonical_body(v2) == (
        'amount=1500.50&captured_at=2026-11-21T10:02:01Z&card={"brand":"visa","entry_mode":"contactless",'
        '"last4":"1111","token":"9f2c4e1a0b7d3e6f8a1c2b4d6e8f0a1b"}&currency=NGN&kind=sale&offline=true'
        "&reference=pos_3f1e2d_001-000042"
    )
    assert hashlib.sha256(canonical_body(v2).encode()).hexdigest() == (
        "f08f4f2950c7574a4f178d19bded42d15fb1adb1a7e2c83361471f3d6877b97f"
    )
    assert signature(
        "s3cr3t-terminal", "term_key_001", "c2a1e4b7-55d1-4a0e-9f3b-7d6e5c4b3a21", 1763719321,
        "POST", "/v1/terminals/pos_3f1e2d_001/transactions", v2,
    ) == "c681db3c1b1beba2d44a4cbbd975493116b0f1e117cf8e66b9ce461e3f66a840"


_assert_vectors()


# --------------------------------------------------------------------------
# Provisioning at start
# --------------------------------------------------------------------------

SIM = os.environ["KLER_SIM_URL"].rstrip("/")
ORG_KEY = os.environ["KLER_SIM_ORG_KEY"]


def _post(path: str, body, headers=None):
    data = json.dumps(body).encode() if body is not None else b""
    req = urllib.request.Request(SIM + path, data=data, method="POST")
    req.add_header("content-type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)["data"]


_session = _post(
    "/v1/sessions",
    {"external_event_id": "schemathesis", "name": "schemathesis", "currency": "NGN",
     "collection": {"account": True, "pos": True, "pos_count": 2}},
    {"x-api-key": ORG_KEY},
)
# With a collection account, so the account's balance and statement answer
# 200 (SPEC 7.7).
# The second terminal takes the fuzzed provisioning and pairing claims
# (each replaces its credentials); the first signs the terminal API.
SPARE_TERMINAL_ID = _session["pos_terminals"][1]["terminal_id"]
SESSION_ID = _session["session_id"]
TERMINAL_ID = _session["pos_terminals"][0]["terminal_id"]
_creds = _post(f"/v1/terminals/{TERMINAL_ID}/provision", None, {"x-api-key": ORG_KEY})
TERMINAL = {
    "api_key": _creds["api_key"], "secret": _creds["secret"],
    "tenant": _creds["tenant_id"], "merchant": _creds["merchant_id"],
}
_device_key_hash = hashlib.sha256(b"schemathesis-device-key-0123456").hexdigest()
_ticket = _post("/v1/pairing", {"device_id": "schemathesis-device", "device_key_hash": _device_key_hash})
PAIRING_CODE = _ticket["pairing_code"]
DEVICE = {"api_key": "schemathesis-device", "secret": _device_key_hash, "tenant": "pairing", "merchant": "pairing"}


# --------------------------------------------------------------------------
# Auth: org key or signature headers, signed at send time
# --------------------------------------------------------------------------


def _is_signed(case) -> bool:
    path = case.operation.path
    if path == "/v1/pairing/{code}":
        return True
    return path.startswith("/v1/terminals/{tid}/") and path != "/v1/terminals/{tid}/provision"


def _uses_org_key(case) -> bool:
    security = case.operation.definition.raw.get("security") or []
    return any("org_key" in s for s in security)


@schemathesis.auth()
class KlerAuth:
    def get(self, case, ctx):
        return True

    def set(self, case, data, ctx):
        case.headers = case.headers or {}
        if _is_signed(case):
            creds = DEVICE if case.operation.path == "/v1/pairing/{code}" else TERMINAL
            case.headers.update({
                "X-API-KEY": creds["api_key"], "X-Tenant-ID": creds["tenant"],
                "X-Merchant-ID": creds["merchant"], "X-Nonce": PLACEHOLDER,
                "X-Timestamp": PLACEHOLDER, "X-Signature": PLACEHOLDER,
            })
        elif _uses_org_key(case):
            case.headers["x-api-key"] = ORG_KEY


_send = requests.Session.send


def _signing_send(self, request, **kwargs):
    if request.headers.get("X-Signature") == PLACEHOLDER:
        key = request.headers.get("X-API-KEY")
        creds = DEVICE if key == DEVICE["api_key"] else TERMINAL
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        nonce, ts = str(uuid.uuid4()), int(time.time())
        try:
            sig = signature(creds["secret"], creds["api_key"], nonce, ts, request.method,
                            request.path_url, body)
        except ValueError:
            # Not a JSON object: the sim answers 400 malformed_json before it
            # looks at the signature.
            sig = "0" * 64
        request.headers.update({"X-Nonce": nonce, "X-Timestamp": str(ts), "X-Signature": sig})
    return _send(self, request, **kwargs)


requests.Session.send = _signing_send


# --------------------------------------------------------------------------
# Positive cases use the provisioned terminal
# --------------------------------------------------------------------------


@schemathesis.hook
def map_case(ctx, case):
    from schemathesis.core.parameters import ParameterLocation

    if case.meta is not None and case.meta.is_negative_at(ParameterLocation.PATH):
        return case
    params = case.path_parameters
    if params and "tid" in params:
        spare = case.operation.path.endswith(("/provision", "/pair"))
        params["tid"] = SPARE_TERMINAL_ID if spare else TERMINAL_ID
        if "id" in params:
            params["id"] = SESSION_ID
    if params and "reference" in params:
        params["reference"] = f"{TERMINAL_ID}-{uuid.uuid4().hex[:12]}"
    if params and case.operation.path == "/v1/pairing/{code}":
        params["code"] = PAIRING_CODE
        # A long poll waits wait_s (up to 30 s) for a claim that never
        # comes: one second shows it, 30 would eat the time budget.
        if case.query and isinstance(case.query.get("wait_s"), int) and case.query["wait_s"] > 1:
            case.query["wait_s"] = 1
    return case


@schemathesis.hook
def before_load_schema(ctx, raw_schema):
    """The ids' examples become the provisioned terminal's (the examples
    and coverage phases use them as they are)."""
    schemas = raw_schema.get("components", {}).get("schemas", {})
    for name, value in (("TerminalId", TERMINAL_ID), ("SessionId", SESSION_ID)):
        if name in schemas:
            schemas[name]["examples"] = [value]


def _provision_signer() -> None:
    data = _post(f"/v1/terminals/{TERMINAL_ID}/provision", None, {"x-api-key": ORG_KEY})
    TERMINAL.update(api_key=data["api_key"], secret=data["secret"],
                    tenant=data["tenant_id"], merchant=data["merchant_id"])


@schemathesis.hook
def after_call(ctx, case, response):
    """Fuzzed provisioning or a pairing claim of the signing terminal (an
    example or a link can name it) replaces its credentials: provision it
    again, and sign with the new ones from then on."""
    sent_key = response.request.headers.get("X-API-KEY")
    if (response.status_code == 401 and sent_key == TERMINAL["api_key"]
            and '"unknown_api_key"' in response.text):
        _provision_signer()
    if os.environ.get("KLER_HOOKS_DEBUG") and response.status_code in (401, 403):
        print("DEBUG", response.status_code, case.method, response.request.url, response.text[:200])
