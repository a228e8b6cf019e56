"""``trustcircle init``: a new instance home, complete or not at all."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from .._time import Clock, format_ts
from .._types import new_sys_id
from ..crypto.masterkey import MasterKey
from ..jobs.model import seed_system_jobs
from ..signing.configs import BUILTIN_CONFIGS
from ..store import open_database, upgrade_schema
from ..store.models import CryptoModule, SignatureConfigRow
from . import audit
from .home import MASTER_KEY, InstanceConfig, new_home, save_admin_token, write_config
from .roles import ROLES
from .users import create_user, ensure_roles

MODULES = {
    "cm_code_signing": "Signs records (scripts, jobs, configuration)",
    "cm_code_attest": "Signs Circle-of-Trust material: manifests, jobs, policy statements",
    "cm_runtime": "Notarizes ECC messages on a protected instance",
}


@dataclass(frozen=True)
class InitResult:
    config: InstanceConfig
    home: Path
    token_file: Path

    def to_dict(self) -> dict[str, object]:
        return {
            "home": str(self.home),
            "name": self.config.name,
            "role": self.config.role.value,
            "database_url": self.config.database_url,
            "token_file": str(self.token_file),
        }


def init_instance(home: Path, role: str, name: str, db_url: str | None, clock: Clock) -> InitResult:
    """Create *home*; on any failure remove what was created and re-raise."""
    home = home.absolute()
    existed = home.exists()
    now = format_ts(clock())
    config = new_home(home, role, name, db_url, now)
    try:
        write_config(home, config)
        MasterKey.generate().save(home / MASTER_KEY)
        db = open_database(config.database_url)
        try:
            upgrade_schema(db)
            with db.transaction() as session:
                ensure_roles(session)
                for module, description in MODULES.items():
                    if session.get(CryptoModule, module) is None:
                        session.add(CryptoModule(name=module, description=description))
                have = {
                    (r.table_name, r.purpose) for r in session.scalars(select(SignatureConfigRow))
                }
                for cfg in BUILTIN_CONFIGS.values():
                    for purpose in cfg.purposes:
                        if (cfg.table, purpose) not in have:
                            session.add(
                                SignatureConfigRow(
                                    sys_id=new_sys_id(),
                                    table_name=cfg.table,
                                    purpose=purpose,
                                    fields=",".join(sorted(cfg.fields)),
                                    active=True,
                                    builtin=True,
                                )
                            )
                seed_system_jobs(session, now)
                _user, token = create_user(session, "admin", ROLES.keys(), now, label="bootstrap")
                audit.append(
                    session,
                    at=now,
                    actor="admin",
                    action="instance.init",
                    target=name,
                    outcome=audit.OK,
                    detail={"role": config.role.value},
                )
            token_file = save_admin_token(home, token)
        finally:
            db.dispose()
    except BaseException:
        if existed:
            for child in home.iterdir():
                if child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
        else:
            shutil.rmtree(home, ignore_errors=True)
        raise
    return InitResult(config=config, home=home, token_file=token_file)
