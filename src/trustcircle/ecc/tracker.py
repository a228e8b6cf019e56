"""The tracker: notarize an ECC message only when signed code created it (DESIGN §7).

When an instance script calls ``ecc.enqueue(...)``, the tracker looks at the calling
stack the script runner keeps (the job, then each ``include``-d script). The message is
notarized with the runtime key (``cm_runtime``) only if every script on the stack, up to
``com.glide.codesigning.expanded.tracking.length`` levels counted from the enqueue
outwards (default 3), has verdict ``valid`` for any purpose its table's signature
configuration lists (trust: chain to this instance's anchors now). Otherwise the message
is stored unnotarized and the Code Signing log names the unsigned script.

Scripts of one run share one Python interpreter (and the run's process), so a script
that is not valid could rewrite what the signed scripts do after it returns. The tracker
therefore judges every included script when it is entered, on the very text it would
run, and refuses one that is not valid: ``include`` fails in the script and the Code
Signing log says why (``include_refused``). A signed job runs only signed code.

``com.glide.codesigning.tracking.agent.validation.exclusion.list`` (comma-separated MID
names, with or without ``mid.server.``): messages for those agents are notarized without
the stack check (and the exception is logged when the stack would have failed).
``com.glide.codesigning.tracking.validation.fail_fast``: instead of storing an
unnotarized message, the enqueue is refused and the script gets an error.
"""

from __future__ import annotations

import datetime as dt
import inspect
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from .._time import Clock, format_ts
from .._types import Fingerprint, new_sys_id
from ..errors import PolicyError, TrustcircleError, UsageError
from ..jobs.runner import ApiCall, Frame, Include
from ..platform import kmf, properties, records, signatures
from ..platform.context import Operation
from ..platform.records import Record
from ..signing import RecordVerifier, Verdict
from ..store.models import CryptoKey
from . import cslog, notary, queue
from .expand import SCRIPT_TOPICS, expand, find_record

INCLUDE_TABLE = "sys_script_include"
_KEYS: dict[tuple[str, str], kmf.SigningKey] = {}
"""Unsealed runtime keys by (database URL, key sys_id): trust is still checked every run."""
_KEYS_LOCK = threading.Lock()
_NO_SCRIPT = "(no script)"


@dataclass(frozen=True)
class Judgement:
    """Whether one script may stand behind a notarized message."""

    table: str
    document_id: str
    name: str
    valid: bool
    signature: str
    reason: str

    def describe(self) -> str:
        if self.table == _NO_SCRIPT:
            return "no script is on the calling stack"
        return f"{self.table} {self.name!r} ({self.document_id})"

    def problem(self) -> str:
        if self.table == _NO_SCRIPT:
            return "no signed script is on the calling stack"
        return f"{self.describe()} is not validly signed ({self.reason})"

    def origin(self) -> dict[str, str]:
        return {"table": self.table, "document_id": self.document_id, "signature": self.signature}


NO_SCRIPT = Judgement(_NO_SCRIPT, "", "", False, "", "a message needs a signed script behind it")


@dataclass(frozen=True)
class TrackerSettings:
    """The tracking properties, read once per run."""

    tracking_length: int = 3
    exclusions: frozenset[str] = frozenset()
    fail_fast: bool = False

    @classmethod
    def load(cls, op: Operation) -> TrackerSettings:
        session = op.session
        try:
            length = properties.get_int(session, properties.TRACKING_LENGTH)
        except (TrustcircleError, ValueError):
            length = 3
        raw = properties.get_property(session, properties.TRACKING_EXCLUSIONS) or ""
        names = {n.strip().removeprefix(queue.AGENT_PREFIX) for n in raw.split(",")}
        return cls(
            tracking_length=min(64, max(1, length)),
            exclusions=frozenset(n for n in names if n),
            fail_fast=properties.get_bool(session, properties.TRACKING_FAIL_FAST),
        )


@dataclass(frozen=True)
class Decision:
    """What the tracker decided for one message."""

    notarize: bool
    exempt: bool
    checked: tuple[Judgement, ...]
    problems: tuple[Judgement, ...]


def decide(stack: Sequence[Judgement], mid: str, settings: TrackerSettings) -> Decision:
    """Pure: notarize when the innermost *tracking_length* scripts are valid, or when the
    agent is excluded from tracking."""
    checked = tuple(stack[-settings.tracking_length :])
    problems = [j for j in checked if not j.valid]
    if not checked:
        problems.append(NO_SCRIPT)
    exempt = mid in settings.exclusions
    return Decision(exempt or not problems, exempt, checked, tuple(problems))


_ENQUEUE = inspect.Signature(
    [
        inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=d)
        for n, d in (
            ("agent", inspect.Parameter.empty),
            ("topic", inspect.Parameter.empty),
            ("name", None),
            ("payload", None),
            ("source", None),
        )
    ]
)


def bind(signature: inspect.Signature, call: ApiCall) -> dict[str, Any]:
    """The call's arguments by name, or :class:`UsageError` the script sees."""
    try:
        bound = signature.bind(*call.args, **call.kwargs)
    except TypeError as exc:
        raise UsageError(f"{call.target}.{call.method}{signature}: {exc}") from exc
    bound.apply_defaults()
    return dict(bound.arguments)


class Tracker:
    """Judges the scripts of one run and puts its messages on the queue."""

    def __init__(self, op: Operation, clock: Clock | None = None) -> None:
        self._op = op
        self._clock = clock or op.instance.clock
        self._forget()

    def _forget(self) -> None:
        """Drop everything worked out from the data read so far (see :meth:`_current`)."""
        self._epoch = self._op.epoch
        self._judged: dict[tuple[str, str, str], Judgement] = {}
        self._verifier: RecordVerifier | None = None
        self._signable: frozenset[str] = frozenset()
        self._settings: TrackerSettings | None = None
        self._key: kmf.SigningKey | None = None
        self._key_problem: str | None = None
        self._validity: dt.timedelta | None = None
        self._snapshot: kmf.TrustSnapshot | None = None

    def _current(self) -> None:
        """Forget what was worked out before the operation began writing (a job's run reads
        without the lock until its first write, whoever makes it, and sees newer data then)."""
        if self._op.epoch != self._epoch:
            self._forget()

    @property
    def settings(self) -> TrackerSettings:
        if self._settings is None:
            self._settings = TrackerSettings.load(self._op)
        return self._settings

    # -- judging scripts ------------------------------------------------------------

    def judge_record(self, record: Record) -> Judgement:
        """The verdict of *record* as it is now, for any purpose its table allows."""
        self._current()
        fields_key = json.dumps(record.fields, sort_keys=True)
        key = (record.table, record.sys_id, fields_key)
        cached = self._judged.get(key)
        if cached is not None:
            return cached
        session = self._op.session
        if self._verifier is None:
            configs = signatures.configurations(session)
            self._verifier = RecordVerifier(self._trust().signers, configs, self._clock())
            self._signable = frozenset(configs)
        name = record.fields.get("name") or record.fields.get("api_name") or ""
        if record.table not in self._signable:
            judgement = Judgement(
                record.table, record.sys_id, name, False, "", "its table is not signable"
            )
        else:
            result = self._verifier.verify(
                record.table,
                record.sys_id,
                record.fields,
                signatures.signatures_of(session, record.table, record.sys_id),
            )
            good = result.valid_signature
            if result.verdict is Verdict.VALID and good is not None:
                judgement = Judgement(record.table, record.sys_id, name, True, good.sys_id, "")
            else:
                why = ", ".join(result.reasons) or result.verdict.value
                judgement = Judgement(
                    record.table,
                    record.sys_id,
                    name,
                    False,
                    "",
                    f"verdict {result.verdict.value} ({why})",
                )
        self._judged[key] = judgement
        return judgement

    def judge(self, frame: Frame) -> Judgement:
        record = records.find(self._op.session, frame.table, frame.document_id)
        if record is None:
            return Judgement(
                frame.table, frame.document_id, "", False, "", "the record no longer exists"
            )
        return self.judge_record(record)

    def resolve_include(self, name: str, _stack: tuple[Frame, ...]) -> Include:
        """``include(name)``: the script include by sys_id, api_name or name, judged now on
        the text it will run; one that is not valid is refused (and logged)."""
        record = _find_include(self._op, name)
        if (record.fields.get("active") or "true").lower() == "false":
            raise UsageError(f"script include {name[:80]!r} is inactive")
        judgement = self.judge_record(record)
        if not judgement.valid:
            text = (
                f"include of {judgement.problem()} refused: a signed script runs only signed "
                "code; sign the include on a trusted instance and import it again"
            )
            entry = cslog.Entry(
                level="error", source=cslog.INSTANCE, event="include_refused", message=text
            )
            op = self._op
            cslog.add_durable(op.session, op.instance.db, entry, format_ts(self._clock()))
            raise PolicyError(text)
        frame = Frame(record.table, record.sys_id, judgement.signature or None)
        return Include(record.fields.get("script") or "", frame)

    # -- enqueueing -----------------------------------------------------------------

    def handle_enqueue(self, call: ApiCall) -> str:
        """``ecc.enqueue(agent, topic, name=None, payload=None, source=None)`` → sys_id."""
        args = bind(_ENQUEUE, call)
        return self.enqueue(call.stack, **args)

    def enqueue(
        self,
        stack: Sequence[Frame],
        agent: object,
        topic: object,
        name: object = None,
        payload: object = None,
        source: object = None,
    ) -> str:
        """Put one message on the queue, notarized when the stack allows; its sys_id."""
        op = self._op
        op.begin_writing()
        self._current()
        message = self._message(agent, topic, name, payload, source)
        checked = stack[-self.settings.tracking_length :]  # decide() looks no further
        decision = decide(
            [self.judge(f) for f in checked],
            queue.mid_name(message.agent),
            self.settings,
        )
        sys_id = new_sys_id()
        now = self._clock()
        notarization: queue.Notarization | None = None
        if not decision.notarize:
            self._refuse_or_log(message, sys_id, "unsigned_script", _problems(decision))
        elif (key := self._runtime_key()) is None:
            problem = self._key_problem or "no runtime key"
            self._refuse_or_log(message, sys_id, "runtime_key_unavailable", problem)
        else:
            obj = notary.notarization_object(
                instance=op.instance.name,
                ecc=sys_id,
                message=message,
                origin=[j.origin() for j in decision.checked],
                created_at=now,
                valid_for=self._notarization_validity(),
            )
            notarization = notary.notarize(obj, key)
        queue.insert(
            op.session,
            message,
            created_by=op.actor.name,
            now=format_ts(now),
            sys_id=sys_id,
            notarization=notarization,
        )
        if notarization is not None and decision.exempt and decision.problems:
            scripts = "; ".join(p.describe() for p in decision.problems)
            text = (
                f"ECC message {sys_id} to {message.agent} ({message.topic}) notarized without "
                f"the stack check (agent excluded from tracking): {scripts}"
            )
            self._log(message, sys_id, "info", "tracking_exclusion", text)
        return sys_id

    def _message(
        self, agent: object, topic: object, name: object, payload: object, source: object
    ) -> queue.NewMessage:
        for label, value in (("agent", agent), ("topic", topic)):
            if not isinstance(value, str):
                raise UsageError(f"ecc.enqueue: {label} must be text")
        for label, value in (("name", name), ("source", source)):
            if value is not None and not isinstance(value, str):
                raise UsageError(f"ecc.enqueue: {label} must be text or None")
        text = self._payload(str(topic), payload)
        return queue.check_message(str(agent), str(topic), _opt(name), text, _opt(source))

    def _payload(self, topic: str, payload: object) -> str | None:
        if payload is None or isinstance(payload, str):
            return payload
        if topic in SCRIPT_TOPICS and isinstance(payload, Mapping):
            return expand(self._op.session, topic, payload)
        if isinstance(payload, Mapping | list):
            return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        raise UsageError("ecc.enqueue: payload must be text, a JSON object or None")

    def _refuse_or_log(
        self, message: queue.NewMessage, sys_id: str, event: str, problem: str
    ) -> None:
        op = self._op
        if self.settings.fail_fast:
            text = (
                f"ECC message to {message.agent} ({message.topic}) refused (fail_fast): "
                f"{problem}; sign the script on a trusted instance and import it again"
            )
            entry = self._entry(message, "", "error", "enqueue_refused", text)
            cslog.add_durable(op.session, op.instance.db, entry, format_ts(self._clock()))
            raise PolicyError(text)
        text = (
            f"ECC message {sys_id} to {message.agent} ({message.topic}) stored unnotarized: "
            f"{problem}; MIDs that validate will refuse it"
        )
        self._log(message, sys_id, "warn", event, text)

    def _log(
        self, message: queue.NewMessage, sys_id: str, level: str, event: str, text: str
    ) -> None:
        entry = self._entry(message, sys_id, level, event, text)
        cslog.add(self._op.session, entry, format_ts(self._clock()))

    def _entry(
        self, message: queue.NewMessage, sys_id: str, level: str, event: str, text: str
    ) -> cslog.Entry:
        return cslog.Entry(
            level=level,
            source=cslog.INSTANCE,
            event=event,
            message=text,
            ecc=sys_id,
            agent=message.agent,
            topic=message.topic,
            reported_by=self._op.actor.name,
        )

    def _trust(self) -> kmf.TrustSnapshot:
        if self._snapshot is None:
            self._snapshot = kmf.trust_snapshot(self._op.session, self._clock())
        return self._snapshot

    def _runtime_key(self) -> kmf.SigningKey | None:
        if self._key is None and self._key_problem is None:
            try:
                self._key = self._load_runtime_key()
            except TrustcircleError as exc:
                self._key_problem = f"the runtime key cannot notarize: {exc.message}"
        return self._key

    def _load_runtime_key(self) -> kmf.SigningKey:
        """The active cm_runtime key, its certificate trusted now. Unsealed once per process
        and key (``kmf.signing_key`` says why not, when it is missing or untrusted)."""
        op = self._op
        row = op.session.execute(
            select(CryptoKey.sys_id, CryptoKey.certificate).where(
                CryptoKey.module == kmf.RUNTIME_MODULE, CryptoKey.active.is_(True)
            )
        ).first()
        trust = None if row is None else self._trust().trust.get(Fingerprint(row.certificate))
        if row is None or trust is None or not trust.trusted:
            return kmf.signing_key(op, kmf.RUNTIME_MODULE)  # raises the reason
        cache_key = (op.instance.config.database_url, row.sys_id)
        with _KEYS_LOCK:
            key = _KEYS.get(cache_key)
        if key is None or key.certificate != row.certificate:
            key = kmf.signing_key(op, kmf.RUNTIME_MODULE)
            with _KEYS_LOCK:
                _KEYS[cache_key] = key
        return key

    def _notarization_validity(self) -> dt.timedelta:
        if self._validity is None:
            self._validity = notary.validity(self._op.session)
        return self._validity


def _problems(decision: Decision) -> str:
    return "; ".join(p.problem() for p in decision.problems)


def _opt(value: object) -> str | None:
    return None if value is None else str(value)


def _find_include(op: Operation, name: object) -> Record:
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise UsageError("include(name): name a script include by sys_id, api_name or name")
    matches = records.query(op.session, INCLUDE_TABLE, {"api_name": name}, limit=2)
    if len(matches) == 1:
        return matches[0]
    return find_record(op.session, INCLUDE_TABLE, name)
