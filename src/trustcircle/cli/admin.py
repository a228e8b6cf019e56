"""``init``, ``user``, ``property`` and ``audit`` commands."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Annotated

import typer

from .._time import system_clock
from ..errors import UsageError
from ..platform import audit, properties, users
from ..platform.bootstrap import init_instance
from ._common import HomeOpt, JsonOpt, TokenOpt, emit_json, emit_table, home_path, operation, out

UserArg = Annotated[str, typer.Argument(help="User name.")]


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("upgrade")(upgrade)
    user_app = typer.Typer(help="Users, roles and tokens.", no_args_is_help=True)
    user_app.command("add")(user_add)
    user_app.command("passwd")(user_passwd)
    user_app.command("list")(user_list)
    user_app.command("disable")(user_disable)
    user_app.command("enable")(user_enable)
    app.add_typer(user_app, name="user")
    prop_app = typer.Typer(help="System properties.", no_args_is_help=True)
    prop_app.command("list")(property_list)
    prop_app.command("get")(property_get)
    prop_app.command("set")(property_set)
    app.add_typer(prop_app, name="property")
    audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
    audit_app.command("verify")(audit_verify)
    audit_app.command("list")(audit_list)
    app.add_typer(audit_app, name="audit")


def init(
    home: HomeOpt = None,
    role: Annotated[str, typer.Option(help="trusted (signs) or protected (enforces).")] = "trusted",
    name: Annotated[str, typer.Option(help="Instance name, e.g. dev or prod.")] = "",
    db: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL (default: SQLite in HOME).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Create an instance home: config, database, master key and the admin token."""
    if not name:
        raise UsageError("--name is required: the instance's name, e.g. --name prod")
    result = init_instance(home_path(home), role, name, db, system_clock)
    if json_out:
        emit_json(result.to_dict())
        return
    out.print(
        f"created {result.config.role.value} instance {result.config.name!r} in {result.home}"
    )
    out.print(f"admin token written to {result.token_file} (mode 0600); keep it secret")


def upgrade(home: HomeOpt = None, json_out: JsonOpt = False) -> None:
    """Migrate an instance home's database to this version's schema (back it up first)."""
    from ..platform.home import load_config
    from ..store import open_database, upgrade_schema
    from ..store.db import head_revision

    config = load_config(home_path(home))
    db = open_database(config.database_url)
    try:
        upgrade_schema(db)
    finally:
        db.dispose()
    if json_out:
        emit_json({"home": str(home), "revision": head_revision()})
    else:
        out.print(f"database of {config.name!r} is at schema revision {head_revision()}")


def user_add(
    name: UserArg,
    roles: Annotated[
        str, typer.Option(help="Comma-separated roles, e.g. admin,codesigning_admin.")
    ] = "",
    home: HomeOpt = None,
    token_file: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Add a user with roles and print its API token (shown once)."""
    role_list = users.parse_roles(roles)
    with operation(home, token_file, "user.add", name) as op:
        _user, token = users.create_user(op.session, name, role_list, op.ts, granter=op.actor)
        op.detail = {"roles": role_list}
    if json_out:
        emit_json({"name": name, "roles": role_list, "token": token})
    else:
        sys.stdout.write(token + "\n")


def user_passwd(
    name: UserArg,
    password_file: Annotated[
        Path | None, typer.Option(help="Read the password from this file.")
    ] = None,
    home: HomeOpt = None,
    token_file: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Set a user's password for signing in to the web UI (argon2-hashed)."""
    if password_file is not None:
        from .._fs import read_limited

        password = read_limited(password_file, 1024, "password file").decode("utf-8").strip()
    else:
        password = getpass.getpass("new password: ")
    with operation(home, token_file, "user.passwd", name) as op:
        users.set_password(op.session, name, password)
    if json_out:
        emit_json({"name": name, "password_set": True})
    else:
        out.print(f"password of {name} set")


def user_disable(
    name: UserArg,
    home: HomeOpt = None,
    token_file: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Disable a user now: revoke every API token, end every web session."""
    with operation(home, token_file, "user.disable", name) as op:
        revoked = users.disable_user(op.session, name, op.actor)
        op.detail = {"tokens_revoked": revoked}
    if json_out:
        emit_json({"name": name, "active": False, "tokens_revoked": revoked})
    else:
        out.print(f"disabled {name!r}: {revoked} API token(s) revoked, web sessions ended")


def user_enable(
    name: UserArg,
    home: HomeOpt = None,
    token_file: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Enable a disabled user again and print a new API token (old ones stay revoked)."""
    with operation(home, token_file, "user.disable", name) as op:
        token = users.enable_user(op.session, name, op.actor, op.ts)
    if json_out:
        emit_json({"name": name, "active": True, "token": token})
    else:
        sys.stdout.write(token + "\n")


def user_list(home: HomeOpt = None, token_file: TokenOpt = None, json_out: JsonOpt = False) -> None:
    """List users and their roles."""
    with operation(home, token_file, "user.add", write=False) as op:
        rows = users.list_users(op.session)
    if json_out:
        emit_json(rows)
    else:
        emit_table(
            "Users",
            ["name", "active", "roles"],
            [[r["name"], r["active"], ", ".join(map(str, r["roles"]))] for r in rows],  # type: ignore[call-overload]
        )


def property_list(
    prefix: Annotated[str, typer.Argument(help="Only names starting with this.")] = "",
    home: HomeOpt = None,
    token_file: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """List system properties (protected ones marked)."""
    with operation(home, token_file, "property.read", write=False) as op:
        views = properties.list_properties(op.session, prefix)
    if json_out:
        emit_json([v.to_dict() for v in views])
    else:
        emit_table(
            "System Properties",
            ["name", "value", "protected", "updated"],
            [[v.name, v.value, "yes" if v.protected else "", v.updated_on] for v in views],
        )


def property_get(
    name: Annotated[str, typer.Argument(help="Property name (seed aliases accepted).")],
    home: HomeOpt = None,
    token_file: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Print one property's value."""
    with operation(home, token_file, "property.read", write=False) as op:
        value = properties.require_property(op.session, name)
    if json_out:
        emit_json(
            {
                "name": properties.canonical_name(name),
                "value": value,
                "protected": properties.is_protected(name),
            }
        )
    else:
        sys.stdout.write(value + "\n")


def property_set(
    name: Annotated[str, typer.Argument(help="Property name.")],
    value: Annotated[str, typer.Argument(help="New value.")],
    home: HomeOpt = None,
    token_file: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Set an ordinary property; protected ones change only through signed jobs."""
    canonical = properties.canonical_name(name)
    with operation(home, token_file, "property.write", canonical) as op:
        stored = properties.set_property(op.session, canonical, value, op.actor.name, op.ts)
        op.detail = {"value": stored}
    if json_out:
        emit_json({"name": canonical, "value": stored})
    else:
        out.print(f"{canonical} = {stored}")


def audit_verify(
    head: Annotated[str | None, typer.Option(help="Head hash you recorded earlier.")] = None,
    home: HomeOpt = None,
    token_file: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Check the audit log's hash chain; exit 1 when any entry was edited or removed."""
    from ..errors import VerificationError

    with operation(home, token_file, "audit.verify", write=False) as op:
        report = audit.verify(op.session, head)
    if json_out:
        emit_json(report.to_dict())
    else:
        for problem in report.problems:
            out.print(f"PROBLEM {problem}", markup=False)
        out.print(f"{report.entries} entries, head {report.head}")
    if not report.ok:
        raise VerificationError(
            f"audit log tampered: {len(report.problems)} problem(s), first: {report.problems[0]}"
        )


def audit_list(
    limit: Annotated[int, typer.Option(help="Newest N entries.")] = 50,
    home: HomeOpt = None,
    token_file: TokenOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Show the newest audit entries."""
    from sqlalchemy import select

    from ..store.models import AuditEntry

    with operation(home, token_file, "audit.verify", write=False) as op:
        rows = list(
            op.session.scalars(
                select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(max(1, min(limit, 10000)))
            )
        )
        data = [
            {
                "seq": r.seq,
                "at": r.at,
                "actor": r.actor,
                "action": r.action,
                "target": r.target,
                "outcome": r.outcome,
                "detail": r.detail,
            }
            for r in rows
        ]
    if json_out:
        emit_json(data)
    else:
        emit_table(
            "Audit log",
            ["seq", "at", "actor", "action", "target", "outcome", "detail"],
            [
                [d["seq"], d["at"], d["actor"], d["action"], d["target"], d["outcome"], d["detail"]]
                for d in data
            ],
        )
