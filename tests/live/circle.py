"""The signed material of the live tests, made the way an operator makes it.

A trusted home (the test PKI's code_signing and code_attest keys) signs a script include
and two data sources into an update set, signs jobs for the Circle of Trust, and exports
each as XML once. Every protected home imports the same files: certificates, content,
the signed Turn On job (executed: validation on), then whichever signed job a test runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import SessionPki
from tests.live.harness import Result, ok, run_cli
from trustcircle.jobs import TURN_OFF_NAME, TURN_ON_NAME

LIBRARY = """\
def command(agent, name, argv):
    return ecc.enqueue(agent, "Command", name, {"argv": argv})


def shell(agent, name, line):
    return ecc.enqueue(agent, "Command", name, {"command": line, "shell": True})


def jdbc(agent, name, data_source):
    return ecc.enqueue(agent, "JDBCProbe", name, {"data_source": data_source})
"""

INVENTORY_SQL = "select name, qty from items order by name"
COUNT_SQL = "select count(*) as n from items"
SIGNED_PROBES = "Live: signed probes"
MANY = "Live: many commands"
SLOW = "Live: slow command"
MANY_COUNT = 1000


def jobs(ran_file: Path) -> dict[str, str]:
    """The jobs' scripts; *ran_file* is where the many commands append their index."""
    return {
        SIGNED_PROBES: (
            'lib = include("global.LiveProbes")\n'
            'lib.command("mid.server.alpha", "signed-echo", ["echo", "signed hello"])\n'
            'lib.jdbc("mid.server.alpha", "jdbc-signed", "Inventory")\n'
            'lib.jdbc("mid.server.alpha", "jdbc-edited", "Inventory count")\n'
            'lib.jdbc("mid.server.beta", "jdbc-firewalled", "Inventory")\n'
        ),
        MANY: (
            'lib = include("global.LiveProbes")\n'
            f"for i in range({MANY_COUNT}):\n"
            f'    lib.shell("mid.server.pool", f"n{{i}}", f"echo {{i}} $(pwd) >> {ran_file}")\n'
        ),
        SLOW: (
            'lib = include("global.LiveProbes")\n'
            'lib.shell("mid.server.pool", "slow", "sleep 2; echo survived")\n'
        ),
    }


@dataclass
class Trusted:
    """The trusted home and the XML files it exported."""

    home: Path
    folder: Path
    pki: SessionPki
    certificates: list[Path] = field(default_factory=list)
    content: Path | None = None
    exported: dict[str, Path] = field(default_factory=dict)

    def on(self, *args: str | Path) -> Result:
        return ok(*args, "--home", self.home)

    def export_set(self, set_id: str, name: str) -> Path:
        out = self.folder / f"{name}.xml"
        self.on("updateset", "export", set_id, "--out", out)
        return out

    def job_xml(self, name: str) -> Path:
        """The signed job *name* as XML (exported once; every protected home may run it once)."""
        if name not in self.exported:
            data = self.on("job", "export-signed", name, "--json").json()
            self.exported[name] = self.export_set(data["update_set"], f"job-{len(self.exported)}")
        return self.exported[name]


def make_trusted(folder: Path, pki: SessionPki, ran_file: Path) -> Trusted:
    folder.mkdir(parents=True, exist_ok=True)
    home = folder / "dev"
    ok("init", "--home", home, "--role", "trusted", "--name", "dev")
    trusted = Trusted(home, folder, pki)
    files = pki.files
    trusted.on("trust-anchor", "add", files.root_pem)
    for module, leaf in (("cm_code_signing", "code_signing"), ("cm_code_attest", "code_attest")):
        trusted.on(
            "kmf",
            "import",
            "--module",
            module,
            "--p12",
            files.p12[leaf],
            "--password-file",
            files.password_file,
        )
    for module in ("cm_code_attest", "cm_code_signing"):
        data = trusted.on("cert", "export-to-production", "--module", module, "--json").json()
        trusted.certificates.append(trusted.export_set(data["update_set"], f"cert-{module}"))
    content = trusted.on("updateset", "create", "Live probes", "--json").json()["sys_id"]
    for table, fields in (
        (
            "sys_script_include",
            {
                "name": "LiveProbes",
                "api_name": "global.LiveProbes",
                "script": LIBRARY,
                "active": "true",
            },
        ),
        (
            "sys_data_source",
            {
                "name": "Inventory",
                "type": "JDBC",
                "connection_url": "inventory",
                "sql_statement": INVENTORY_SQL,
            },
        ),
        (
            "sys_data_source",
            {
                "name": "Inventory count",
                "type": "JDBC",
                "connection_url": "inventory",
                "sql_statement": COUNT_SQL,
            },
        ),
    ):
        args = [a for k, v in fields.items() for a in ("--field", f"{k}={v}")]
        sys_id = trusted.on("record", "add", "--table", table, *args).out.strip()
        trusted.on("record", "sign", "--table", table, "--id", sys_id)
    trusted.on("updateset", "complete", content)
    trusted.content = trusted.export_set(content, "content")
    for name, script in jobs(ran_file).items():
        trusted.on(
            "record",
            "add",
            "--table",
            "sysauto_script",
            "--field",
            f"name={name}",
            "--field",
            f"script={script}",
            "--field",
            "run_type=on_demand",
            "--field",
            "active=true",
            "--field",
            "run_as=admin",
        )
    trusted.job_xml(TURN_ON_NAME)
    return trusted


@dataclass
class Protected:
    """A protected home with validation on, the signed content, and a MID account."""

    home: Path
    trusted: Trusted
    mid_token: str = ""

    def on(self, *args: str | Path) -> Result:
        return ok(*args, "--home", self.home)

    def try_on(self, *args: str | Path) -> Result:
        return run_cli(*args, "--home", self.home)

    def bring(self, xml: Path) -> str:
        retrieved: str = self.on("updateset", "import", xml, "--json").json()["sys_id"]
        self.on("updateset", "preview", retrieved)
        self.on("updateset", "commit", retrieved)
        return retrieved

    def run_job(self, name: str) -> dict[str, object]:
        """Bring the signed job *name* and execute it (its messages are then queued)."""
        self.bring(self.trusted.job_xml(name))
        data: dict[str, object] = self.on("job", "execute", name, "--json").json()
        return data

    def ecc(self, *filters: str) -> list[dict[str, object]]:
        rows: list[dict[str, object]] = self.on("ecc", "list", *filters, "--json").json()
        return rows

    def show(self, sys_id: str) -> dict[str, dict[str, object] | None]:
        shown: dict[str, dict[str, object] | None] = self.on("ecc", "show", sys_id, "--json").json()
        return shown

    def log(self) -> list[dict[str, object]]:
        entries: list[dict[str, object]] = self.on("codesigning", "log", "--json").json()
        return entries


def make_protected(folder: Path, trusted: Trusted) -> Protected:
    home = folder / "prod"
    ok("init", "--home", home, "--role", "protected", "--name", "prod")
    prod = Protected(home, trusted)
    files = trusted.pki.files
    prod.on("trust-anchor", "add", files.root_pem)
    prod.on(
        "kmf",
        "import",
        "--module",
        "cm_runtime",
        "--p12",
        files.p12["runtime"],
        "--password-file",
        files.password_file,
    )
    for xml in trusted.certificates:
        prod.bring(xml)
    assert trusted.content is not None
    prod.bring(trusted.content)
    prod.run_job(TURN_ON_NAME)
    prod.mid_token = prod.on("user", "add", "midsrv", "--roles", "mid_server").out.strip()
    return prod


def turn_off_xml(trusted: Trusted) -> Path:
    return trusted.job_xml(TURN_OFF_NAME)
