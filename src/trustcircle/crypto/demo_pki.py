"""A small demo PKI on disk: root CA, intermediate CA, and one PKCS#12 per crypto module.

For ``make demo`` and for trying trustcircle without a corporate CA. Every key
is RSA-4096; every leaf carries digitalSignature and codeSigning and bundles
the intermediate, as a real CA's export would.
"""

from __future__ import annotations

import datetime as _dt
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from trustcircle._fs import write_atomic, write_secret
from trustcircle.crypto.certs import cert_to_pem
from trustcircle.crypto.pki import export_pkcs12, issue_ca, issue_leaf, new_rsa_key
from trustcircle.errors import UsageError

MODULES = ("cm_code_signing", "cm_code_attest", "cm_runtime")
"""The crypto modules the demo PKI makes a PKCS#12 file for, in this order."""

CA_VALIDITY = _dt.timedelta(days=3652)
LEAF_VALIDITY = _dt.timedelta(days=730)
_BACKDATE = _dt.timedelta(hours=1)

ROOT_FILE = "root-ca.pem"
INTERMEDIATE_FILE = "intermediate-ca.pem"
PASSWORD_FILE = "password.txt"  # noqa: S105 - a file name, not a password


@dataclass(frozen=True)
class DemoPki:
    """Where :func:`make_demo_pki` wrote each file, and the PKCS#12 password."""

    root_ca: Path
    intermediate_ca: Path
    code_signing: Path
    code_attest: Path
    runtime: Path
    password: bytes = field(repr=False)
    password_file: Path | None
    """The generated password's file, or None when the caller chose the password."""

    @property
    def bundles(self) -> dict[str, Path]:
        """PKCS#12 file per crypto module name."""
        return dict(zip(MODULES, (self.code_signing, self.code_attest, self.runtime), strict=True))

    def to_dict(self) -> dict[str, str | None]:
        """The paths as text, for ``--json`` and listings; never the password itself."""
        return {
            "root_ca": str(self.root_ca),
            "intermediate_ca": str(self.intermediate_ca),
            **{module: str(path) for module, path in self.bundles.items()},
            "password_file": None if self.password_file is None else str(self.password_file),
        }


def make_demo_pki(
    out: Path,
    password: bytes | None,
    now: _dt.datetime,
    progress: Callable[[str], None] | None = None,
    *,
    overwrite: bool = False,
) -> DemoPki:
    """Create the demo PKI in folder *out* (made if missing) and return its paths.

    Writes ``root-ca.pem``, ``intermediate-ca.pem``, ``<module>.p12`` for each of
    :data:`MODULES` and, when *password* is None, a generated one in
    ``password.txt`` (0600, no trailing newline). Refuses to replace existing
    files unless *overwrite*. *progress* is called with one line per step.
    """
    out = Path(out)
    say = progress if progress is not None else _silent
    names = [ROOT_FILE, INTERMEDIATE_FILE, *(f"{m}.p12" for m in MODULES)]
    if password is None:
        names.append(PASSWORD_FILE)
    elif not password:
        raise UsageError("the demo PKI password must not be empty: pass None to generate one")
    existing = [n for n in names if (out / n).exists()]
    if existing and not overwrite:
        raise UsageError(
            f"{out} already holds {', '.join(existing)}: choose an empty folder or remove them"
        )
    chosen = password if password is not None else secrets.token_urlsafe(24).encode("ascii")
    start = now - _BACKDATE

    say("generating root CA key (RSA-4096)")
    root_key = new_rsa_key()
    root = issue_ca(
        "trustcircle Demo Root CA",
        root_key,
        not_before=start,
        not_after=now + CA_VALIDITY,
        path_length=1,
    )
    say("generating intermediate CA key (RSA-4096)")
    inter_key = new_rsa_key()
    inter = issue_ca(
        "trustcircle Demo Intermediate CA",
        inter_key,
        root,
        root_key,
        not_before=start,
        not_after=now + CA_VALIDITY - _dt.timedelta(days=1),
        path_length=0,
    )
    write_atomic(out / ROOT_FILE, cert_to_pem(root).encode("ascii"))
    write_atomic(out / INTERMEDIATE_FILE, cert_to_pem(inter).encode("ascii"))
    say(f"wrote {out / ROOT_FILE} and {out / INTERMEDIATE_FILE}")

    bundles: list[Path] = []
    for module in MODULES:
        say(f"generating {module} signing key (RSA-4096) and certificate")
        key = new_rsa_key()
        leaf = issue_leaf(
            f"{module} (trustcircle demo)",
            key.public_key(),
            inter,
            inter_key,
            start,
            now + LEAF_VALIDITY,
        )
        path = out / f"{module}.p12"
        write_secret(path, export_pkcs12(key, leaf, [inter], chosen, module))
        bundles.append(path)
        say(f"wrote {path}")

    password_file: Path | None = None
    if password is None:
        password_file = out / PASSWORD_FILE
        write_secret(password_file, chosen)
        say(f"wrote the generated PKCS#12 password to {password_file} (mode 0600)")
    return DemoPki(
        root_ca=out / ROOT_FILE,
        intermediate_ca=out / INTERMEDIATE_FILE,
        code_signing=bundles[0],
        code_attest=bundles[1],
        runtime=bundles[2],
        password=chosen,
        password_file=password_file,
    )


def _silent(_line: str) -> None:
    return None
