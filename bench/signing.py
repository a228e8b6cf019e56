"""Record signing and verification vs the raw `cryptography` primitive on the same messages."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from trustcircle._types import Fingerprint, SysId, Timestamp, new_sys_id
from trustcircle.crypto import Algorithm, fingerprint_of, issue_ca, issue_leaf, new_rsa_key
from trustcircle.crypto.algorithms import PrivateKey
from trustcircle.crypto.pki import new_ec_key, new_ed25519_key
from trustcircle.signing import (
    BUILTIN_CONFIGS,
    CODE_SIGNING,
    CertTrust,
    RecordVerifier,
    SignatureRecord,
    Verdict,
    record_signature_payload,
    sign_record,
)

RECORDS = 2000
ROUNDS = 3
_LINE = '    var gr = new GlideRecord("incident"); gr.addQuery("active", true); gr.query();\n'


@dataclass
class Row:
    algorithm: str
    raw_sign: float
    record_sign: float
    raw_verify: float
    record_verify: float


def _records(n: int) -> list[tuple[SysId, dict[str, str | None]]]:
    script = (_LINE * (2048 // len(_LINE) + 1))[:2048]
    return [
        (
            new_sys_id(),
            {
                "name": f"job {i}",
                "script": script + f"// {i}\n",
                "run_as": None,
                "run_type": "on_demand",
                "active": "true",
            },
        )
        for i in range(n)
    ]


def _raw_signer(key: PrivateKey) -> Callable[[bytes], bytes]:
    if isinstance(key, rsa.RSAPrivateKey):
        return lambda m: key.sign(m, padding.PKCS1v15(), hashes.SHA512())
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return lambda m: key.sign(m, ec.ECDSA(hashes.SHA384()))
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    return key.sign


def _raw_verifier(key: PrivateKey) -> Callable[[bytes, bytes], None]:
    pub = key.public_key()
    if isinstance(pub, rsa.RSAPublicKey):
        return lambda s, m: pub.verify(s, m, padding.PKCS1v15(), hashes.SHA512())
    if isinstance(pub, ec.EllipticCurvePublicKey):
        return lambda s, m: pub.verify(s, m, ec.ECDSA(hashes.SHA384()))
    assert isinstance(pub, ed25519.Ed25519PublicKey)
    return pub.verify


def _rate(n: int, fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return n / (time.perf_counter() - start)


def bench_algorithm(alg: Algorithm, key: PrivateKey, ca_key: PrivateKey, n: int = RECORDS) -> Row:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    ca = issue_ca(
        "bench CA",
        ca_key,
        not_before=now - dt.timedelta(days=1),
        not_after=now + dt.timedelta(days=30),
    )
    leaf = issue_leaf(
        "bench leaf",
        key.public_key(),
        ca,
        ca_key,
        now - dt.timedelta(days=1),
        now + dt.timedelta(days=30),
    )
    fp = Fingerprint(fingerprint_of(leaf))
    cfg = BUILTIN_CONFIGS["sysauto_script"]
    recs = _records(n)
    ts = Timestamp(now.strftime("%Y-%m-%dT%H:%M:%SZ"))
    payloads = [
        record_signature_payload(
            purpose=CODE_SIGNING,
            table="sysauto_script",
            document_id=sid,
            fields=f,
            signed_fields=cfg.fields,
            certificate=fp,
            signed_at=ts,
            expires_at=None,
        )
        for sid, f in recs
    ]
    raw_sign = _raw_signer(key)
    raw_verify = _raw_verifier(key)
    verifier = RecordVerifier(
        {fp: CertTrust(public_key=key.public_key(), trusted=True)}, BUILTIN_CONFIGS, now
    )
    raw_sigs: list[bytes] = []
    sigs: list[SignatureRecord] = []

    def do_raw_sign() -> None:
        raw_sigs[:] = [raw_sign(p) for p in payloads]

    def do_sign() -> None:
        sigs[:] = [
            sign_record(
                table="sysauto_script",
                document_id=sid,
                fields=f,
                config=cfg,
                purpose=CODE_SIGNING,
                key=key,
                algorithm=alg,
                certificate=fp,
                signed_at=now,
                expires_at=None,
            )
            for sid, f in recs
        ]

    def do_raw_verify() -> None:
        for s, p in zip(raw_sigs, payloads, strict=True):
            raw_verify(s, p)

    def do_verify() -> None:
        for (sid, f), sig in zip(recs, sigs, strict=True):
            if verifier.verify("sysauto_script", sid, f, [sig]).verdict is not Verdict.VALID:
                raise SystemExit("benchmark bug: a fresh signature did not verify")

    # Interleave raw and record runs and keep each one's best round: a busy or
    # frequency-scaling machine then hurts both sides alike.
    best = dict.fromkeys(("raw_sign", "sign", "raw_verify", "verify"), 0.0)
    for _ in range(ROUNDS):
        for name, fn in (
            ("raw_sign", do_raw_sign),
            ("sign", do_sign),
            ("raw_verify", do_raw_verify),
            ("verify", do_verify),
        ):
            best[name] = max(best[name], _rate(n, fn))
    r_raw_sign, r_rec_sign = best["raw_sign"], best["sign"]
    r_raw_verify, r_rec_verify = best["raw_verify"], best["verify"]
    return Row(alg.value, r_raw_sign, r_rec_sign, r_raw_verify, r_rec_verify)


def run(print_line: Callable[[str], None]) -> list[Row]:
    print_line(f"== record signing: {RECORDS} sysauto_script records with 2 KB scripts ==")
    rsa_ca = new_rsa_key()
    keys: list[tuple[Algorithm, PrivateKey]] = [
        (Algorithm.RSA_PKCS1_SHA512, new_rsa_key()),
        (Algorithm.ECDSA_P384_SHA384, new_ec_key()),
        (Algorithm.ED25519, new_ed25519_key()),
    ]
    rows = []
    print_line(
        f"{'algorithm':28} {'raw sign/s':>11} {'record sign/s':>14} {'ratio':>6} "
        f"{'raw verify/s':>13} {'record verify/s':>16} {'ratio':>6}"
    )
    for alg, key in keys:
        row = bench_algorithm(alg, key, rsa_ca)
        rows.append(row)
        print_line(
            f"{row.algorithm:28} {row.raw_sign:11.0f} {row.record_sign:14.0f} "
            f"{row.record_sign / row.raw_sign:6.0%} {row.raw_verify:13.0f} "
            f"{row.record_verify:16.0f} {row.record_verify / row.raw_verify:6.0%}"
        )
    return rows
