"""``pki demo``, ``kmf`` and ``trust-anchor`` commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .._fs import read_limited
from .._time import system_clock
from ..crypto.demo_pki import make_demo_pki
from ..platform import kmf
from ._common import HomeOpt, JsonOpt, TokenOpt, emit_json, emit_table, err, operation, out

_P12_LIMIT = 1024 * 1024


def register(app: typer.Typer) -> None:
    pki_app = typer.Typer(help="Demo PKI for trying trustcircle.", no_args_is_help=True)
    pki_app.command("demo")(pki_demo)
    app.add_typer(pki_app, name="pki")
    kmf_app = typer.Typer(
        help="Key management: crypto modules and certificates.", no_args_is_help=True
    )
    kmf_app.command("import")(kmf_import)
    kmf_app.command("modules")(kmf_modules)
    kmf_app.command("certs")(kmf_certs)
    app.add_typer(kmf_app, name="kmf")
    ta_app = typer.Typer(
        help="The trust store: CA certificates signatures must chain to.", no_args_is_help=True
    )
    ta_app.command("add")(trust_anchor_add)
    ta_app.command("list")(trust_anchor_list)
    app.add_typer(ta_app, name="trust-anchor")


def pki_demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write the PKI into.")],
    password_file: Annotated[
        Path | None,
        typer.Option(
            help="Protect the .p12 files with the password in this file "
            "(default: generate one into OUT/password.txt)."
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Create a demo root CA, intermediate CA and one RSA-4096 code-signing key per module."""
    password = None
    if password_file is not None:
        password = read_limited(password_file, 1024, "password file").strip()
    with err.status("generating RSA-4096 keys...") as status:
        pki = make_demo_pki(
            out_dir, password, system_clock(), progress=lambda step: status.update(step)
        )
    data = {
        "root_ca": str(pki.root_ca),
        "intermediate_ca": str(pki.intermediate_ca),
        **{module: str(path) for module, path in pki.bundles.items()},
        "password_file": str(pki.password_file) if pki.password_file else None,
    }
    if json_out:
        emit_json(data)
        return
    for key, value in data.items():
        out.print(f"{key}: {value}", markup=False)


def kmf_import(
    module: Annotated[str, typer.Option(help="cm_code_signing, cm_code_attest or cm_runtime.")],
    p12: Annotated[Path, typer.Option(help="PKCS#12 file with the key and its certificate chain.")],
    password_file: Annotated[Path, typer.Option(help="File holding the PKCS#12 password.")],
    home: HomeOpt = None,
    token_file: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Import a key pair into a crypto module after checking its certificate chain."""
    data = read_limited(p12, _P12_LIMIT, "PKCS#12 file")
    password = read_limited(password_file, 1024, "password file").rstrip(b"\r\n")
    with operation(home, token_file, "kmf.import", module) as op:
        result = kmf.import_pkcs12(op, module, data, password)
    if json_out:
        emit_json(result)
    else:
        out.print(
            f"imported {result['algorithm']} key into {module}: {result['subject']} "
            f"(certificate {result['certificate']})",
            markup=False,
        )


def kmf_modules(
    home: HomeOpt = None, token_file: TokenOpt = None, json_out: JsonOpt = False
) -> None:
    """List crypto modules and their keys."""
    with operation(home, token_file, "kmf.read", write=False) as op:
        rows = kmf.list_modules(op.session)
    if json_out:
        emit_json(rows)
    else:
        emit_table(
            "Crypto modules",
            ["module", "key", "algorithm", "certificate", "description"],
            [
                [
                    r["module"],
                    "yes" if r["has_key"] else "no",
                    r["algorithm"],
                    r["certificate"],
                    r["description"],
                ]
                for r in rows
            ],
        )


def kmf_certs(home: HomeOpt = None, token_file: TokenOpt = None, json_out: JsonOpt = False) -> None:
    """List certificates with their status (valid / expiring soon / expired) and trust."""
    with operation(home, token_file, "kmf.read", write=False) as op:
        rows = kmf.list_certificates(op.session, op.now)
    if json_out:
        emit_json(rows)
    else:
        emit_table(
            "X.509 certificates",
            ["name", "module", "status", "trusted", "expires", "fingerprint"],
            [
                [
                    r["name"],
                    r["module"],
                    r["status"],
                    "" if r["trusted"] is None else ("yes" if r["trusted"] else r["trust_reason"]),
                    r["not_after"],
                    r["fingerprint"],
                ]
                for r in rows
            ],
        )


def trust_anchor_add(
    ca: Annotated[Path, typer.Argument(help="PEM file of the CA certificate.")],
    home: HomeOpt = None,
    token_file: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Add a CA certificate to the instance's trust store."""
    pem = read_limited(ca, 256 * 1024, "CA certificate file")
    with operation(home, token_file, "trust_anchor.add", str(ca)) as op:
        result = kmf.add_trust_anchor(op, pem)
    if json_out:
        emit_json(result)
    else:
        out.print(
            f"trust anchor added: {result['subject']} ({result['fingerprint']})", markup=False
        )


def trust_anchor_list(
    home: HomeOpt = None, token_file: TokenOpt = None, json_out: JsonOpt = False
) -> None:
    """List the trust store."""
    with operation(home, token_file, "trust_anchor.read", write=False) as op:
        rows = kmf.list_anchors(op.session)
    if json_out:
        emit_json(rows)
    else:
        emit_table(
            "Trust anchors",
            ["subject", "expires", "fingerprint", "added by"],
            [[r["subject"], r["not_after"], r["fingerprint"], r["added_by"]] for r in rows],
        )
