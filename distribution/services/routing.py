"""Agent routing: decide who gets a lead, persist it, and record why.

`Router` is the one write path shared by arrival, the `distribute_pending` batch, expiry
and decline rounds, held leads, claims and manual assignment: it loads the rules once, locks
and loads each pool once, asks the engine, keeps its pool snapshots current in memory as
leads are given out, and writes everything in bulk (so a batch of leads costs a fixed number
of queries, and one lead a constant number whatever the pool size).
"""

from __future__ import annotations

import gc
import json
import logging
import operator
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import JSONField, Max, Model, Q
from django.db.models.base import ModelState
from django.utils import timezone

from accounts.models import AgentProfile, User
from distribution.engine import routing as engine
from distribution.engine.eligibility import Checkers
from distribution.engine.filters import match_filters
from distribution.engine.schedule import add_open_time
from distribution.engine.types import (
    AgentSnapshot,
    Candidate,
    Decision,
    LeadSnapshot,
    RuleSnapshot,
    RuleTrial,
)
from distribution.models import (
    Assignment,
    Automation,
    DistributionAttempt,
    Notice,
    Offer,
    Rule,
    Strategy,
    Workflow,
)
from distribution.services.notify import Email, emails_dispatch, tcpa_allows, webhooks_dispatch
from distribution.services.snapshot import (
    PoolState,
    PoolWanted,
    RuleBook,
    agent_snapshot,
    directory_load,
    filters_of,
    lead_snapshot,
    pool_state_load,
    pools_lock,
    pools_state_load,
    rulebook_load,
)
from leads.models import Activity, Campaign, DistributionState, Lead, LeadEvent, LeadStatus, Source

logger = logging.getLogger(__name__)
Trigger = DistributionAttempt.Trigger
Method = Assignment.Method
COPY_MIN_ROWS = 20  # fewer rows go through a plain INSERT
STORED_CANDIDATES = 10  # ranked and rejected lines kept per attempt; the rest are counted
LEAD_UPDATE_FIELDS = [
    "status",
    "status_changed_at",
    "distribution_state",
    "owner",
    "rule",
    "assigned_at",
    "held_until",
    "sla_due_at",
    "exception_reason",
    "updated_at",
]
LEAD_RELATED = ("source", "campaign", "duplicate_of")
# triggers of a lead's first distribution: its `created` automations fire then
NEW_LEAD_TRIGGERS = frozenset({Trigger.ARRIVAL, Trigger.SWEEPER, Trigger.COMMAND})


# --- accumulated writes ---------------------------------------------------------------------

M = TypeVar("M", bound=Model)


class NewRow(Generic[M]):
    """Makes new, unsaved rows of one model for the bulk writes, without `Model.__init__`.

    `__init__` resolves every keyword against the fields and goes through each descriptor:
    for the five or so rows a routed lead writes that was a good part of a batch's CPU.
    Here the given attribute values (`<fk>_id` for foreign keys) go straight into the
    instance, every other field gets its default, and RELATED objects are cached as a
    foreign key assignment would cache them. The rows are what `__init__` would build
    (no pre/post_init receivers exist for these models).
    """

    def __init__(self, model: type[M]) -> None:
        self.model = model
        self.static: dict[str, Any] = {}
        self.dynamic: list[Any] = []  # fields with a callable default, called per row
        for f in model._meta.concrete_fields:
            if f.has_default() and callable(f.default):
                self.dynamic.append(f)
            else:
                self.static[f.attname] = f.get_default()

    def __call__(self, related: Mapping[str, Model | None] | None = None, **values: Any) -> M:
        row = self.model.__new__(self.model)
        state = ModelState()
        row._state = state
        attrs = row.__dict__
        attrs.update(self.static)
        for f in self.dynamic:
            if f.attname not in values:
                attrs[f.attname] = f.get_default()
        attrs.update(values)
        if related:
            state.fields_cache.update(related)
        return row


new_attempt = NewRow(DistributionAttempt)
new_assignment = NewRow(Assignment)
new_offer = NewRow(Offer)
new_notice = NewRow(Notice)
new_activity = NewRow(Activity)
new_event = NewRow(LeadEvent)


class EncodedJSON(list[Any]):
    """A list for a JSON column together with its JSON text, made where the list is made
    (from cached pieces): the bulk writes send the text instead of encoding the list again.
    It is an ordinary list to everyone else; the text is what `json.dumps` makes of it."""

    __slots__ = ("text",)

    def __init__(self, items: list[Any], text: str) -> None:
        super().__init__(items)
        self.text = text


# JSON text of the history lines seen lately: one routed lead stores some thirty lines,
# and a pool's lines repeat from lead to lead (the same member at the same rank, the same
# rule not matching for the same reason). Bounded: emptied when it grows past its limit.
_LINE_TEXTS: dict[tuple[Any, ...], str] = {}
_LINE_TEXTS_LIMIT = 50_000


def _line_text(key: tuple[Any, ...], line: dict[str, Any]) -> str:
    text = _LINE_TEXTS.get(key)
    if text is None:
        if len(_LINE_TEXTS) >= _LINE_TEXTS_LIMIT:
            _LINE_TEXTS.clear()
        text = _LINE_TEXTS[key] = json.dumps(line)
    return text


def _encoded(lines: list[dict[str, Any]], texts: list[str]) -> EncodedJSON:
    return EncodedJSON(lines, "[" + ", ".join(texts) + "]")


def rows_update(
    model: type[Any], rows: Sequence[Any], fields: Sequence[str], *, key: str = "pk"
) -> None:
    """Write FIELDS of many rows in one statement: on PostgreSQL an `UPDATE … FROM
    jsonb_populate_recordset()` of the rows as one JSON parameter (cheap to build and to
    plan at any size); elsewhere Django's bulk_update. KEY is the column that finds each row
    (the primary key by default)."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        if key == "pk":
            model.objects.bulk_update(rows, list(fields))
        else:
            for row in rows:
                model.objects.filter(**{key: getattr(row, f"{key}_id")}).update(
                    **{f: getattr(row, f) for f in fields}
                )
        return
    sql, params = _update_sql(model, rows, fields, key=key)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _rows_json(fields: Sequence[Any], rows: Sequence[Any], *, stamp: bool) -> str:
    """ROWS as one JSON array of objects keyed by column, for `jsonb_populate_recordset`:
    one text parameter that the driver quotes in C, where a parameter per value (or an
    array per column) was quoted value by value in Python. Times go as ISO 8601 text (aware,
    as Django sends them), JSON columns as nested JSON. STAMP: read each value through
    `pre_save` (auto_now fields stamped), as an INSERT does."""
    columns = [f.column for f in fields]
    times = [
        i
        for i, f in enumerate(fields)
        if f.get_internal_type() in ("DateTimeField", "DateField", "TimeField")
    ]
    if stamp:
        values_of: Callable[[Any], Sequence[Any]] = lambda row: [  # noqa: E731
            f.pre_save(row, True) for f in fields
        ]
    else:
        read = operator.attrgetter(*(f.attname for f in fields))
        values_of = (lambda row: (read(row),)) if len(fields) == 1 else read
    objects = []
    for row in rows:
        values = values_of(row)
        if times:
            values = list(values)
            for i in times:
                value = values[i]
                if value is not None:
                    if isinstance(value, datetime) and value.tzinfo is None:
                        value = fields[i].get_db_prep_save(value, connection)  # made aware
                    values[i] = value.isoformat()
        objects.append(dict(zip(columns, values, strict=True)))
    # other values (decimals, UUIDs, durations) as Django's encoder writes them
    return json.dumps(objects, cls=DjangoJSONEncoder)


def _update_sql(
    model: type[Any], rows: Sequence[Any], fields: Sequence[str], *, key: str = "pk"
) -> tuple[str, list[Any]]:
    """The PostgreSQL `UPDATE … FROM jsonb_populate_recordset()` of rows_update and its one
    parameter (the rows as JSON, typed by the table's own row type: cheap to build and to
    plan at any size)."""
    meta = model._meta
    qn = connection.ops.quote_name
    key_field = meta.pk if key == "pk" else meta.get_field(key)
    columns = [key_field, *(meta.get_field(f) for f in fields)]
    sets = ", ".join(f"{qn(c.column)} = v.{qn(c.column)}" for c in columns[1:])
    table, key_column = qn(meta.db_table), qn(key_field.column)
    # the LIMIT tells the planner how many rows come (it assumes 100 from a function):
    # one lead's UPDATE then looks its row up by key instead of hashing the whole table
    sql = (
        f"UPDATE {table} AS t SET {sets} FROM (SELECT * FROM jsonb_populate_recordset("
        f"NULL::{table}, %s::jsonb) LIMIT {len(rows):d}) AS v "
        f"WHERE t.{key_column} = v.{key_column}"
    )
    return sql, [_rows_json(columns, rows, stamp=False)]


def _insert_sql(model: type[Any], rows: Sequence[Any]) -> tuple[str, list[Any]]:
    """A PostgreSQL INSERT of new rows from one JSON parameter, values as bulk_create
    prepares them (auto_now stamped); the rows get no primary key back."""
    meta = model._meta
    qn = connection.ops.quote_name
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    columns = ", ".join(qn(f.column) for f in fields)
    table = qn(meta.db_table)
    params = [_rows_json(fields, rows, stamp=True)]
    for row in rows:
        row._state.adding = False
        row._state.db = connection.alias
    sql = (
        f"INSERT INTO {table} ({columns}) SELECT {columns} "
        f"FROM jsonb_populate_recordset(NULL::{table}, %s::jsonb)"
    )
    return sql, params


def _copy_rows(fields: Sequence[Any], rows: Sequence[Any]) -> Iterator[Sequence[Any]]:
    """The values COPY writes for ROWS: the attributes (read in one C call per row), JSON as
    its text (as `json.dumps(value, cls=encoder)` writes it, one encoder for all rows),
    auto_now fields stamped."""
    read = operator.attrgetter(*(f.attname for f in fields))
    encoders = [
        (i, (f.encoder or DjangoJSONEncoder)())
        for i, f in enumerate(fields)
        if isinstance(f, JSONField)
    ]
    stamped = [
        (i, f)
        for i, f in enumerate(fields)
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)
    ]
    single = len(fields) == 1
    for row in rows:
        values: Sequence[Any] = [read(row)] if single else read(row)
        if encoders or stamped:
            values = list(values)
            for i, encoder in encoders:
                value = values[i]
                values[i] = value.text if type(value) is EncodedJSON else encoder.encode(value)
            for i, f in stamped:
                values[i] = f.pre_save(row, True)
        yield values


def rows_insert(model: type[Any], rows: Sequence[Any]) -> None:
    """Insert many new rows in one statement: on PostgreSQL a COPY (no per-row SQL to build,
    no array escaping of JSON documents: several times faster than an INSERT of the
    distribution history); elsewhere bulk_create. The rows get no primary key back."""
    if not rows:
        return
    if connection.vendor != "postgresql" or len(rows) < COPY_MIN_ROWS:
        model.objects.bulk_create(rows)
        return
    meta = model._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    columns = ", ".join(f'"{f.column}"' for f in fields)
    sql = f'COPY "{meta.db_table}" ({columns}) FROM STDIN'
    started = time.monotonic()
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for values in _copy_rows(fields, rows):
            copy.write_row(values)
    if connection.queries_logged:  # count the COPY like any statement (query budgets)
        connection.queries_log.append(
            {"sql": f"{sql} -- {len(rows)} rows", "time": f"{time.monotonic() - started:.3f}"}
        )


@dataclass
class Writes:
    """Everything one operation writes, flushed in a fixed number of bulk statements."""

    leads: dict[int, Lead] = field(default_factory=dict)
    events: list[LeadEvent] = field(default_factory=list)
    attempts: list[DistributionAttempt] = field(default_factory=list)
    assignments: list[Assignment] = field(default_factory=list)
    offers: list[Offer] = field(default_factory=list)
    activities: list[Activity] = field(default_factory=list)
    turns: dict[int, datetime] = field(default_factory=dict)
    notices: list[Notice] = field(default_factory=list)
    emails: list[Email] = field(default_factory=list)
    webhooks: list[dict[str, Any]] = field(default_factory=list)

    def flush(self) -> None:
        """Write in bulk; e-mails and webhooks go out after commit. On PostgreSQL the
        lead and agent UPDATEs and the INSERTs go to the server as one statement
        (data-modifying CTEs: one round trip, no ORM query building); in a batch of leads
        the lists of COPY_MIN_ROWS rows or more go by COPY instead."""
        if connection.vendor == "postgresql":
            self._flush_postgresql()
        else:
            if self.leads:
                rows_update(Lead, list(self.leads.values()), LEAD_UPDATE_FIELDS)
            if self.turns:
                rows_update(AgentProfile, self._turn_rows(), ["last_turn_at"], key="user")
            for model, rows in self._inserts():
                rows_insert(model, rows)
        emails, webhooks = list(self.emails), list(self.webhooks)
        if emails:
            transaction.on_commit(lambda: emails_dispatch(emails))
        if webhooks:
            transaction.on_commit(lambda: webhooks_dispatch(webhooks))

    def _inserts(self) -> list[tuple[type[Any], list[Any]]]:
        return [
            (LeadEvent, self.events),
            (DistributionAttempt, self.attempts),
            (Assignment, self.assignments),
            (Offer, self.offers),
            (Activity, self.activities),
            (Notice, self.notices),
        ]

    def _turn_rows(self) -> list[AgentProfile]:
        """The agents whose turn moved (round robin order), their rows locked in id order
        first when there are several: two batches whose pools share agents then wait for
        each other instead of deadlocking in the UPDATE. One row has no order: its UPDATE
        takes the same lock the SELECT … FOR UPDATE would."""
        if len(self.turns) > 1:
            list(
                AgentProfile.objects.select_for_update()
                .filter(user_id__in=list(self.turns))
                .order_by("user_id")
                .values_list("pk", flat=True)
            )
        return [
            AgentProfile(user_id=agent_id, last_turn_at=stamp)
            for agent_id, stamp in sorted(self.turns.items())
        ]

    def _flush_postgresql(self) -> None:
        statements: list[tuple[str, list[Any]]] = []
        if self.leads:
            statements.append(_update_sql(Lead, list(self.leads.values()), LEAD_UPDATE_FIELDS))
        if self.turns:
            statements.append(
                _update_sql(AgentProfile, self._turn_rows(), ["last_turn_at"], key="user")
            )
        copies = []
        # one lead's writes always go in the one statement (broadcast offers included), so
        # its cost does not grow a statement with the pool's size
        batch = len(self.leads) > 1
        for model, rows in self._inserts():
            if batch and len(rows) >= COPY_MIN_ROWS:
                copies.append((model, rows))
            elif rows:
                statements.append(_insert_sql(model, rows))
        if statements:
            if len(statements) == 1:
                sql, params = statements[0]
            else:
                # every sub-statement runs to completion; they write different tables
                ctes = ", ".join(f"w{i} AS ({text})" for i, (text, _) in enumerate(statements))
                sql = f"WITH {ctes} SELECT 1"
                params = [p for _, values in statements for p in values]
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
        for model, rows in copies:
            rows_insert(model, rows)


@dataclass
class Job:
    """One lead to decide: fresh routing, a further round, or a resumed (held) lead."""

    lead: Lead
    snap: LeadSnapshot
    started: float
    rule: RuleSnapshot | None = None
    tried: tuple[RuleTrial, ...] = ()
    round_no: int = 1
    offered: frozenset[int] = frozenset()
    after_round: bool = False  # decide with engine.next_round (an offer round ended)
    decision: Decision | None = None  # decided already (no rule, automation, sticky owner)
    method: str = Method.AUTO
    hopper_owner: int | None = None  # automation "hopper with owner"
    note: str = ""


def _candidate_line(c: Candidate) -> dict[str, Any]:
    """Candidate.to_dict, inlined (twenty lines per routed lead)."""
    return {
        "agent_id": c.agent_id,
        "agent": c.email,
        "member_id": c.member_id,
        "rank": c.rank,
        "reason": c.reason,
        "detail": c.detail,
    }


def _trial_lines(trials: Sequence[RuleTrial]) -> EncodedJSON:
    """RuleTrial.to_dict of each rule tried, with their JSON text."""
    lines, texts = [], []
    for t in trials:
        line = {
            "rule_id": t.rule_id,
            "rule": t.rule_name,
            "matched": t.matched,
            "reason": t.reason,
            "detail": t.detail,
        }
        lines.append(line)
        texts.append(_line_text((t.rule_id, t.rule_name, t.matched, t.reason, t.detail), line))
    return _encoded(lines, texts)


def _store_candidates(decision: Decision) -> tuple[EncodedJSON, str]:
    """The first ranked and rejected candidates, and a count of the rest by reason."""
    ranked: list[Candidate] = []
    rejected: list[Candidate] = []
    for c in decision.candidates:
        (ranked if c.reason is None else rejected).append(c)
    kept = ranked[:STORED_CANDIDATES] + rejected[:STORED_CANDIDATES]
    rest = ranked[STORED_CANDIDATES:] + rejected[STORED_CANDIDATES:]
    lines: list[dict[str, Any]] = []
    texts: list[str] = []
    known = _LINE_TEXTS.get
    for c in kept:
        line = {
            "agent_id": c.agent_id,
            "agent": c.email,
            "member_id": c.member_id,
            "rank": c.rank,
            "reason": c.reason,
            "detail": c.detail,
        }
        lines.append(line)
        key = (c.agent_id, c.email, c.member_id, c.rank, c.reason, c.detail)
        texts.append(known(key) or _line_text(key, line))
    if decision.default_candidate is not None and decision.default_candidate not in kept:
        line = {**_candidate_line(decision.default_candidate), "detail": "default agent"}
        lines.append(line)
        texts.append(json.dumps(line))
    note = ""
    if rest:
        counts = Counter(c.reason or "eligible" for c in rest)
        note = (
            f" (+{len(rest)} more candidates: "
            + ", ".join(f"{n} {r}" for r, n in counts.most_common())
            + ")"
        )
    return _encoded(lines, texts), note


def outcome_code(decision: Decision) -> str:
    """The attempt's outcome: the decision's reason code (default agent named as such)."""
    if decision.used_default_agent:
        return "default_agent"
    return decision.reason_code


class Router:
    """Decide and persist leads through the engine; see the module docstring."""

    def __init__(
        self,
        *,
        now: datetime | None = None,
        trigger: str,
        actor: User | None = None,
        book: RuleBook | None = None,
        automations: bool = False,
        dry_run: bool = False,
    ) -> None:
        self.now = now or timezone.now()
        self.trigger = trigger
        self.actor = actor
        self._book = book
        self._book_users = False
        self._automations = automations
        self.pools: dict[tuple[int, str], PoolState] = {}
        self._pools_of: dict[int, list[PoolState]] = {}  # agent id → loaded pools with them
        self.directory: list[AgentSnapshot] = []
        self.users: dict[int, User] = {}
        # e-mail and phone of the pools' agents, as the pool loads read them
        self.contacts: dict[int, tuple[str, str]] = {}
        # eligibility checks shared by the decisions of this operation (one `now`)
        self.checkers = Checkers()
        self.writes = Writes()
        # simulate: no pool locks, and flush() drops the writes (nothing written, no e-mail
        # or webhook sent); pools, turns and counts still change in memory, lead after lead
        self.dry_run = dry_run

    @property
    def actor_id(self) -> int | None:
        return self.actor.pk if self.actor is not None and self.actor.pk else None

    def _contact(self, agent_id: int) -> tuple[str, str]:
        """The agent's e-mail and phone, for messages, e-mails and the ring-all webhook."""
        known = self.contacts.get(agent_id)
        if known is not None:
            return known
        user = self.users.get(agent_id)
        return (user.email or "", _phone(user)) if user is not None else ("", "")

    # --- loading ----------------------------------------------------------------------
    @property
    def book(self) -> RuleBook:
        if self._book is None:
            self._book = rulebook_load(self.now, automations=self._automations)
        if not self._book_users:
            # default agents and automation targets, for e-mails and phone numbers
            self.users.update(self._book.users)
            self._book_users = True
        return self._book

    def pool(self, rule: RuleSnapshot) -> PoolState | None:
        if rule.pool_id is None:
            return None
        return self.pools.get((rule.pool_id, rule.cap_timezone))

    def members(self, rule: RuleSnapshot) -> list[Any]:
        state = self.pool(rule)
        return state.members if state is not None else []

    def load_pools(self, rules: Iterable[RuleSnapshot]) -> None:
        """Lock every pool the rules use (id order), then load each once."""
        all_rules = list(rules)
        # a pool is loaded once per cap time zone (its window counts depend on it)
        wanted = {
            (r.pool_id, r.cap_timezone): r
            for r in all_rules
            if r.pool_id is not None and (r.pool_id, r.cap_timezone) not in self.pools
        }
        if not wanted:
            return
        if not self.dry_run:
            pools_lock(pool_id for pool_id, _ in wanted)
        needs = []
        for pool_id, tz in wanted:
            using = [r for r in all_rules if r.pool_id == pool_id]
            needs.append(
                PoolWanted(
                    pool_id,
                    tz,
                    with_open_leads=any(r.strategy == Strategy.LOAD_BALANCED for r in using),
                    with_metrics=any(r.strategy == Strategy.PERFORMANCE or r.tiers for r in using),
                )
            )
        if connection.vendor == "postgresql":  # every pool in one fixed query
            loaded = pools_state_load(needs, now=self.now, schedules=self.book.schedules)
        else:
            loaded = {
                (w.pool_id, w.timezone): pool_state_load(
                    pool_id=w.pool_id,
                    rule=wanted[(w.pool_id, w.timezone)],
                    now=self.now,
                    with_open_leads=w.with_open_leads,
                    with_metrics=w.with_metrics,
                    schedules=self.book.schedules,
                )
                for w in needs
            }
        for key, state in loaded.items():
            self.pools[key] = state
            self.contacts.update(state.contacts)
            for agent_id in state.index:
                self._pools_of.setdefault(agent_id, []).append(state)

    def load_directory(self, jobs: Sequence[Job]) -> None:
        direct = [j.snap for j in jobs if j.rule is not None and j.rule.strategy == "direct"]
        if direct:
            users = directory_load(direct, self.now)
            known = {a.id for a in self.directory}
            self.directory += [a for a in users if a.id not in known]

    # --- planning ---------------------------------------------------------------------
    def job(self, lead: Lead, **kwargs: Any) -> Job:
        return Job(lead=lead, snap=lead_snapshot(lead), started=time.perf_counter(), **kwargs)

    def plan_new(self, lead: Lead) -> Job:
        """Which rule takes a new lead: an automation, else the rule table, else nobody.

        1. An enabled `created` automation whose filters match decides first (seed 004).
        2. Else the first enabled rule in priority order that matches (engine).
        3. A sticky-owner rule sends a duplicate of an owned lead to that owner.
        """
        job = self.job(lead)
        if self._automations and self.trigger in NEW_LEAD_TRIGGERS:
            automation = next(
                (
                    a
                    for a in self.book.automations
                    if match_filters(filters_of(a.filters), job.snap)[0]
                ),
                None,
            )
            if automation is not None and self._plan_automation(job, automation):
                return job
        match = engine.match_rule(job.snap, self.book.ordered(), ordered=True)
        job.rule, job.tried = match.rule, match.tried
        if match.rule is None:
            job.decision = Decision(
                outcome="queue_unassigned",
                reason_code="no_rule_matched",
                reason="No enabled rule matches this lead; it waits in the Lead Assignment queue.",
                rules_tried=match.tried,
            )
        elif match.rule.id in self.book.models and self.book.models[match.rule.id].sticky_owner:
            self._plan_sticky(job)
        return job

    def _plan_automation(self, job: Job, automation: Automation) -> bool:
        """Apply an automation's action to the plan; False = go on with the rule table."""
        job.note = f"automation {automation.name!r}"
        if automation.action == Automation.Action.ASSIGNMENT_RULES:
            return False
        uid = automation.target_user_id
        # the book reads target users fresh; an automation loaded elsewhere brings its own
        user = (self.book.users.get(uid) or automation.target_user) if uid is not None else None
        if automation.action == Automation.Action.USER and user is not None:
            self.users[user.pk] = user
            cand = Candidate(agent_id=user.pk, email=user.email or "", rank=1)
            job.method = Method.AUTOMATION
            job.decision = Decision(
                outcome="assign",
                reason_code="automation",
                reason=f"Automation {automation.name!r}: sent to {user.email}",
                chosen=(cand,),
                candidates=(cand,),
            )
            return True
        target = self.book.snapshot(automation.target_rule_id)
        if automation.action == Automation.Action.HOPPER:
            if target is None:
                target = next(
                    (r for r in self.book.snapshots if r.enabled and r.strategy == "hopper"), None
                )
            job.hopper_owner = automation.target_user_id
        if target is None:
            job.decision = Decision(
                outcome="exception",
                reason_code="automation_no_rule",
                reason=f"Automation {automation.name!r}: no rule to send the lead to",
            )
            return True
        job.rule = target
        job.tried = (
            RuleTrial(
                target.id,
                target.name,
                True,
                "automation",
                f"chosen by automation {automation.name!r}",
            ),
        )
        return True

    def attach_originals(self, leads: Sequence[Lead]) -> None:
        """Read the leads' duplicate-of leads when a sticky-owner rule may ask for them
        (1 query, none when no rule is sticky or no lead a duplicate)."""
        if not any(rule.sticky_owner for rule in self.book.models.values()):
            return
        field = Lead._meta.get_field("duplicate_of")
        todo = [lead for lead in leads if lead.duplicate_of_id and not field.is_cached(lead)]
        if not todo:
            return
        originals = Lead.objects.in_bulk({lead.duplicate_of_id for lead in todo})
        for lead in todo:
            field.set_cached_value(lead, originals.get(lead.duplicate_of_id))

    def _plan_sticky(self, job: Job) -> None:
        original = job.lead.duplicate_of
        if original is None or original.owner_id is None or job.rule is None:
            return
        owner = User.objects.select_related("agent__schedule").filter(pk=original.owner_id).first()
        if owner is None:
            return
        self.users[owner.pk] = owner
        from distribution.engine.eligibility import check_agent

        verdict = check_agent(agent_snapshot(owner, self.now), job.rule, self.now)
        if not verdict.eligible:
            job.note = f"sticky owner {owner.email} not eligible ({verdict.reason})"
            return
        cand = Candidate(agent_id=owner.pk, email=owner.email or "", rank=1)
        job.method = Method.STICKY
        job.decision = Decision(
            outcome="assign",
            reason_code="sticky_owner",
            reason=f"Rule {job.rule.name!r}: duplicate of lead #{original.pk}, sent to its "
            f"owner {owner.email}",
            rule_id=job.rule.id,
            rule_name=job.rule.name,
            rules_tried=job.tried,
            chosen=(cand,),
            candidates=(cand,),
        )

    # --- deciding and persisting ------------------------------------------------------
    def run(self, jobs: Sequence[Job]) -> list[DistributionAttempt]:
        """Decide every job in order and persist; pools are locked once for all of them."""
        self.load_pools([j.rule for j in jobs if j.rule is not None and j.decision is None])
        self.load_directory([j for j in jobs if j.decision is None])
        attempts = []
        for job in jobs:
            # kept on the job: a dry run reads its decisions there
            job.decision = decision = job.decision or self.decide(job)
            attempts.append(self.persist(job, decision))
        return attempts

    def decide(self, job: Job) -> Decision:
        rule = job.rule
        assert rule is not None
        members = self.members(rule)
        if job.after_round:
            return engine.next_round(
                rule,
                job.snap,
                members,
                self.now,
                offered_member_ids=job.offered,
                round_no=job.round_no,
                rules_tried=job.tried,
                directory=self.directory,
                checkers=self.checkers,
            )
        return engine.decide(
            rule,
            job.snap,
            members,
            self.now,
            rules_tried=job.tried,
            round_no=job.round_no,
            offered=job.offered,
            directory=self.directory,
            checkers=self.checkers,
        )

    def _change(
        self, lead: Lead, status: str, kind: str, message: str, data: dict[str, Any]
    ) -> None:
        """Move the lead to STATUS and write one timeline event: the status change carrying
        what happened, or, when the status stays, an event of KIND."""
        event = lead.transition_to(status, by=self.actor, note=message[:500])
        if event is None:
            event = new_event(
                {"lead": lead, "actor": self.actor},
                lead_id=lead.pk,
                kind=kind,
                actor_id=self.actor_id,
                message=message[:500],
            )
        event.data = {**event.data, **data}
        event.created_at = self.now
        self.writes.events.append(event)

    def _touch(self, lead: Lead) -> None:
        lead.updated_at = self.now
        self.writes.leads[lead.pk] = lead

    def persist(self, job: Job, decision: Decision) -> DistributionAttempt:
        """Write the decision: the lead's state, offers or assignment, the history."""
        lead = job.lead
        rule = self.book.models.get(decision.rule_id) if decision.rule_id else None
        outcome = decision.outcome
        lead.held_until = None
        if outcome == "assign" and decision.chosen:
            method = Method.DEFAULT if decision.used_default_agent else job.method
            if rule is not None and rule.strategy == Strategy.DIRECT and method == Method.AUTO:
                method = Method.DIRECT
            self.assign(
                lead,
                agent_id=decision.chosen[0].agent_id,
                rule=rule,
                method=method,
                note=decision.reason,
            )
        elif outcome == "offer":
            self._offer(job, decision, rule)
        else:
            lead.owner_id = job.hopper_owner if outcome == "wait_hopper" else None
            lead.rule = rule
            self._change(
                lead,
                decision.status,
                LeadEvent.Kind.ROUTED,
                decision.reason,
                {"outcome": outcome, "code": decision.reason_code},
            )
            waiting = outcome in ("hold", "wait_pull", "wait_hopper")
            lead.distribution_state = (
                DistributionState.ACTIVE if waiting else DistributionState.DONE
            )
            lead.exception_reason = decision.reason[:200] if outcome == "exception" else ""
            lead.held_until = decision.hold_until if outcome == "hold" else None
            lead.sla_due_at = None
            self._touch(lead)
        candidates, more = _store_candidates(decision)
        reason = decision.reason + more + (f" [{job.note}]" if job.note else "")
        attempt = new_attempt(
            {"lead": lead, "actor": self.actor},
            lead_id=lead.pk,
            trigger=self.trigger,
            rule_name=decision.rule_name or "",
            rules_tried=_trial_lines(decision.rules_tried),
            candidates=candidates,
            outcome=outcome_code(decision),
            reason=reason,
            duration_ms=(time.perf_counter() - job.started) * 1000,
            actor_id=self.actor_id,
            created_at=self.now,
        )
        self.writes.attempts.append(attempt)
        return attempt

    def _offer(self, job: Job, decision: Decision, rule: Rule | None) -> None:
        lead = job.lead
        lead.owner_id = None
        lead.rule = rule
        lead.distribution_state = DistributionState.ACTIVE
        lead.exception_reason = ""
        self._change(
            lead,
            LeadStatus.OFFERED,
            LeadEvent.Kind.OFFERED,
            decision.reason,
            {
                "round": decision.round_no,
                "agents": [c.email for c in decision.chosen],
                "expires_at": decision.expires_at.isoformat() if decision.expires_at else None,
            },
        )
        self._touch(lead)
        broadcast = rule is not None and rule.strategy == Strategy.BROADCAST
        agents = []
        related = {"lead": lead, "rule": rule}
        rule_id = rule.pk if rule is not None else None
        expires = decision.expires_at.isoformat() if decision.expires_at else ""
        for cand in decision.chosen:
            self.writes.offers.append(
                new_offer(
                    related,
                    lead_id=lead.pk,
                    agent_id=cand.agent_id,
                    member_id=cand.member_id,
                    rule_id=rule_id,
                    round=decision.round_no,
                    batch=decision.round_no,
                    expires_at=decision.expires_at,
                    created_at=self.now,
                )
            )
            # no inbox notice: the offers list is where an agent sees an offer
            self.writes.emails.append(
                Email(
                    "lead_offered",
                    cand.agent_id,
                    lead.pk,
                    {"broadcast": broadcast, "expires_at": expires},
                )
            )
            agents.append({"email": cand.email, "phone": self._contact(cand.agent_id)[1]})
        if broadcast and rule is not None:
            self._ring_all(lead, rule, decision, agents)

    def _ring_all(
        self, lead: Lead, rule: Rule, decision: Decision, agents: list[dict[str, str]]
    ) -> None:
        """Push a broadcast to the telephony webhook, within TCPA hours when asked."""
        fallback = rule.schedule.timezone if rule.schedule else timezone.get_default_timezone_name()
        if rule.tcpa and not tcpa_allows(
            attributes=lead.attributes or {}, fallback_tz=fallback, now=self.now
        ):
            self.writes.events.append(
                LeadEvent(
                    lead=lead,
                    kind=LeadEvent.Kind.NOTE,
                    created_at=self.now,
                    message="Ring-all webhook not sent: outside TCPA calling hours (08:00–21:00 "
                    "lead-local)",
                )
            )
            return
        self.writes.webhooks.append(
            {
                "event": "offer",
                "strategy": rule.strategy,
                "rule": rule.name,
                "round": decision.round_no,
                "lead": {
                    "id": lead.pk,
                    "name": lead.full_name,
                    "phone": lead.phone,
                    "pin": lead.pin,
                },
                "agents": agents,
                "expires_at": decision.expires_at.isoformat() if decision.expires_at else None,
            }
        )

    def assign(
        self,
        lead: Lead,
        *,
        agent_id: int,
        rule: Rule | None,
        method: str,
        note: str = "",
        initial_status: str | None = None,
    ) -> None:
        """Give the lead to an agent: owner, initial status and activity, the received log,
        the agent's turn, timeline, notice and e-mail (after commit)."""
        stamp = self.now
        pool_id = None
        if rule is not None:
            snap = self.book.snapshot(rule.pk) if self.pools else None
            state = self.pool(snap) if snap is not None else None
            if state is not None and state.member_of(agent_id) is not None:
                pool_id = state.pool_id
                # strictly after every turn in the pool: round robin never sees a tie
                stamp = engine.turn_timestamp(state.members, self.now)
            elif rule.pool_id is not None and method in (
                Method.CLAIM,
                Method.PIN,
                Method.PULL,
                Method.HOPPER,
            ):
                pool_id = rule.pool_id
        stamp = max(stamp, self.writes.turns.get(agent_id, stamp))
        for state in self._pools_of.get(agent_id, ()):
            state.record_turn(agent_id, stamp, received=state.pool_id == pool_id)
        self.writes.turns[agent_id] = stamp
        lead.owner_id = agent_id
        lead.rule = rule if rule is not None else lead.rule
        status = initial_status or (
            rule.initial_status if rule is not None else LeadStatus.ASSIGNED
        )
        email = self._contact(agent_id)[0]
        self._change(
            lead,
            status,
            LeadEvent.Kind.ASSIGNED,
            f"assigned to {email or agent_id} ({method})" + (f": {note}" if note else ""),
            {"agent": email, "method": method, "rule": rule.name if rule else None},
        )
        lead.assigned_at = self.now
        lead.distribution_state = DistributionState.DONE
        lead.exception_reason = ""
        lead.held_until = None
        lead.sla_due_at = None
        if rule is not None and rule.contact_sla:
            schedule = self.book.snapshot(rule.pk)
            lead.sla_due_at = add_open_time(
                schedule.schedule if schedule else None, self.now, rule.contact_sla
            )
        self._touch(lead)
        rule_id = rule.pk if rule is not None else None
        self.writes.assignments.append(
            new_assignment(
                {"lead": lead, "rule": rule, "actor": self.actor},
                lead_id=lead.pk,
                agent_id=agent_id,
                rule_id=rule_id,
                pool_id=pool_id,
                method=method,
                actor_id=self.actor_id,
                created_at=self.now,
            )
        )
        if rule is not None and rule.initial_activity:
            self.writes.activities.append(
                new_activity(
                    {"lead": lead},
                    lead_id=lead.pk,
                    agent_id=agent_id,
                    kind=rule.initial_activity,
                    note=f"initial activity of rule {rule.name}",
                    created_at=self.now,
                )
            )
        self.writes.notices.append(
            new_notice(
                {"lead": lead},
                agent_id=agent_id,
                lead_id=lead.pk,
                created_at=self.now,
                message=f"Lead #{lead.pk} is yours.",
            )
        )
        self.writes.emails.append(
            Email(
                "lead_assigned",
                agent_id,
                lead.pk,
                {"rule": rule.name if rule else "", "manual": method == Method.MANUAL},
            )
        )

    def flush(self) -> None:
        if not self.dry_run:
            self.writes.flush()
        self.writes = Writes()


def _phone(user: User) -> str:
    profile = getattr(user, "agent", None)
    return profile.phone if profile is not None else ""


# --- entry points ---------------------------------------------------------------------------

_gc_lock = threading.Lock()
_gc_pausers = 0
_gc_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside (reference counting frees as usual).

    A batch keeps every row it writes until its flush: some hundred thousand objects that
    made the collector run its full, whole-heap pass several times per 10,000 leads — about
    a seventh of the batch's time — to find nothing (the rows hold no cycles). Nested and
    concurrent users (threads) share one pause: the last to leave restores the collector.
    """
    global _gc_pausers, _gc_was_enabled
    with _gc_lock:
        if _gc_pausers == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pausers += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pausers -= 1
            if _gc_pausers == 0 and _gc_was_enabled:
                gc.enable()


def _locked_leads(
    ids: Sequence[int] | None = None,
    *,
    skip_locked: bool = False,
    limit: int | None = None,
    **filters: Any,
) -> list[Lead]:
    qs = (
        Lead.objects.select_for_update(of=("self",), skip_locked=skip_locked)
        .select_related(*LEAD_RELATED)
        .filter(**filters)
    )
    if ids is not None:
        qs = qs.filter(pk__in=list(ids))
    qs = qs.order_by("created_at", "id")
    return list(qs[:limit] if limit else qs)


class _RowReader(Generic[M]):
    """Model rows from a fixed SELECT of every concrete column of MODEL (`columns`), made as
    `Model.from_db` makes them — values through the fields' converters (JSON text to
    Python, ...), no deferred field — without going through `Model.__init__`."""

    def __init__(self, model: type[M], alias: str) -> None:
        qn = connection.ops.quote_name
        fields = list(model._meta.concrete_fields)
        self.model = model
        self.columns = [f"{alias}.{qn(str(f.column))}" for f in fields]
        self.attnames = [f.attname for f in fields]
        self.converters = [
            (i, f, conv) for i, f in enumerate(fields) for conv in f.get_db_converters(connection)
        ]

    def __call__(self, values: Sequence[Any]) -> M:
        if self.converters:
            values = list(values)
            for i, f, conv in self.converters:
                values[i] = conv(values[i], f, connection)
        row = self.model.__new__(self.model)
        state = row._state = ModelState()
        state.adding = False
        state.db = connection.alias
        row.__dict__.update(zip(self.attnames, values, strict=True))
        return row


_readers: dict[tuple[type[Any], str, str], _RowReader[Any]] = {}


def _reader(model: type[M], alias: str) -> _RowReader[M]:
    """The model's _RowReader for the current connection, made once."""
    key = (model, alias, connection.alias)
    reader = _readers.get(key)
    if reader is None:
        reader = _readers[key] = _RowReader(model, alias)
    return reader


def _pending_leads_locked(
    ids: Sequence[int] | None, *, skip_locked: bool, limit: int
) -> list[Lead]:
    """The pending leads to route (of the IDS, when given), oldest first, locked — not those of
    a campaign with a marketplace workflow — with their source and campaign (1 query).

    What `_locked_leads` does for the batch path on PostgreSQL, as one fixed SQL text: no
    ORM query to build, a simple plan, one model row per lead (sources and campaigns are
    few: one row each, shared). The duplicate-of lead is not joined: only a sticky-owner
    rule reads it (`Router.attach_originals`).
    """
    qn = connection.ops.quote_name
    read_lead, read_source = _reader(Lead, "l"), _reader(Source, "s")
    read_campaign = _reader(Campaign, "c")
    workflow_table = qn(Workflow._meta.db_table)
    workflow_column = qn(Workflow._meta.get_field("campaign").column)
    where = ["l.distribution_state = %s"]
    params: list[Any] = [DistributionState.PENDING.value]
    if ids is not None:
        where.append("l.id = ANY(%s)")
        params.append(list(ids))
    sql = (
        f"SELECT {', '.join(read_lead.columns + read_source.columns + read_campaign.columns)} "
        f"FROM {qn(Lead._meta.db_table)} l "
        f"LEFT JOIN {qn(Source._meta.db_table)} s ON s.id = l.source_id "
        f"LEFT JOIN {qn(Campaign._meta.db_table)} c ON c.id = l.campaign_id "
        f"WHERE {' AND '.join(where)} AND NOT EXISTS (SELECT 1 FROM {workflow_table} w "
        f"WHERE w.{workflow_column} = l.campaign_id) "
        f"ORDER BY l.created_at, l.id LIMIT %s FOR UPDATE OF l"
        + (" SKIP LOCKED" if skip_locked else "")
    )
    params.append(limit)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    n_lead, n_source = len(read_lead.columns), len(read_source.columns)
    sources: dict[int, Source] = {}
    campaigns: dict[int, Campaign] = {}
    source_cache, campaign_cache = Lead._meta.get_field("source"), Lead._meta.get_field("campaign")
    leads = []
    for row in rows:
        lead = read_lead(row[:n_lead])
        if lead.source_id is not None:
            source = sources.get(lead.source_id)
            if source is None:
                values = row[n_lead : n_lead + n_source]
                source = sources[lead.source_id] = read_source(values)
            source_cache.set_cached_value(lead, source)
        if lead.campaign_id is not None:
            campaign = campaigns.get(lead.campaign_id)
            if campaign is None:
                values = row[n_lead + n_source :]
                campaign = campaigns[lead.campaign_id] = read_campaign(values)
            campaign_cache.set_cached_value(lead, campaign)
        leads.append(lead)
    return leads


def lead_distribute(*, lead_id: int, trigger: str = Trigger.ARRIVAL) -> DistributionAttempt | None:
    """Distribute one pending lead; a lead already distributed is left alone (idempotent)."""
    attempts = leads_distribute_batch(lead_ids=[lead_id], trigger=trigger, skip_locked=False)
    return attempts[0] if attempts else None


def leads_distribute_batch(
    *,
    trigger: str = Trigger.COMMAND,
    lead_ids: Sequence[int] | None = None,
    limit: int = 500,
    skip_locked: bool = True,
    book: RuleBook | None = None,
) -> list[DistributionAttempt]:
    """Distribute up to LIMIT pending leads in one transaction, oldest first.

    1. Claim the leads: `FOR UPDATE SKIP LOCKED`, so concurrent runs take disjoint leads.
    2. Match each lead's rule (automations first) with the rules loaded once.
    3. Lock the pools those rules use, in id order, and load each once: concurrent pickers
       of a pool take turns, so round robin stays fair and caps exact.
    4. Decide lead by lead, updating the in-memory pools as leads are given out.
    5. Write everything in bulk; e-mails and webhooks after commit.
    """
    with gc_paused(), transaction.atomic():
        # a campaign with a marketplace workflow sells its leads instead (lead_dispatch)
        if connection.vendor == "postgresql":
            leads = _pending_leads_locked(lead_ids, skip_locked=skip_locked, limit=limit)
        else:
            leads = _locked_leads(
                lead_ids,
                skip_locked=skip_locked,
                limit=limit,
                distribution_state=DistributionState.PENDING,
                campaign__workflow__isnull=True,
            )
        if not leads:
            return []
        router = Router(trigger=trigger, book=book, automations=True)
        router.attach_originals(leads)
        attempts = router.run([router.plan_new(lead) for lead in leads])
        router.flush()
    return attempts


def leads_distribute_all_pending(
    *,
    trigger: str = Trigger.COMMAND,
    chunk: int = 1000,
    progress: Callable[[int], object] | None = None,
) -> dict[str, int]:
    """Distribute every pending lead in chunks until none is left; outcome counts."""
    outcomes: Counter[str] = Counter()
    while True:
        attempts = leads_distribute_batch(trigger=trigger, limit=chunk)
        if not attempts:
            break
        outcomes.update(a.outcome for a in attempts)
        if progress:
            progress(len(attempts))
    return dict(outcomes)


def _offered_members(lead_ids: Sequence[int]) -> dict[int, tuple[frozenset[int], int]]:
    """Per lead: every pool member offered it so far, and the last round (1 query)."""
    out: dict[int, tuple[set[int], int]] = {}
    for lead_id, member_id, round_no in Offer.objects.filter(
        lead_id__in=list(lead_ids)
    ).values_list("lead_id", "member_id", "round"):
        members, last = out.setdefault(lead_id, (set(), 0))
        if member_id is not None:
            members.add(member_id)
        out[lead_id] = (members, max(last, round_no))
    return {k: (frozenset(m), r) for k, (m, r) in out.items()}


def leads_next_round(
    *, leads: Sequence[Lead], trigger: str, router: Router | None = None
) -> list[DistributionAttempt]:
    """After an offer round ended unclaimed (locked LEADS): the next in line, the next
    broadcast batch, or the fallback after max_rounds (engine.next_round)."""
    router = router or Router(trigger=trigger)
    history = _offered_members([lead.pk for lead in leads])
    jobs = []
    for lead in leads:
        rule = router.book.snapshot(lead.rule_id)
        if rule is None or not rule.enabled:
            lead.distribution_state = DistributionState.PENDING
            jobs.append(router.plan_new(lead))
            continue
        offered, last_round = history.get(lead.pk, (frozenset(), 1))
        jobs.append(
            router.job(
                lead, rule=rule, round_no=max(last_round, 1), offered=offered, after_round=True
            )
        )
    attempts = router.run(jobs)
    router.flush()
    return attempts


def leads_release_held(*, now: datetime | None = None, limit: int = 500) -> int:
    """Distribute held leads whose rule's schedule has opened (Beat task)."""
    now = now or timezone.now()
    with transaction.atomic():
        leads = _locked_leads(
            skip_locked=True, limit=limit, status=LeadStatus.HELD, held_until__lte=now
        )
        if not leads:
            return 0
        router = Router(now=now, trigger=Trigger.SCHEDULE, automations=False)
        history = _offered_members([lead.pk for lead in leads])
        jobs = []
        for lead in leads:
            rule = router.book.snapshot(lead.rule_id)
            if rule is None or not rule.enabled:
                jobs.append(router.plan_new(lead))
                continue
            offered, last_round = history.get(lead.pk, (frozenset(), 1))
            jobs.append(router.job(lead, rule=rule, round_no=max(last_round, 1), offered=offered))
        router.run(jobs)
        router.flush()
    return len(leads)


WAITING_FOR_A_RULE = (LeadStatus.UNASSIGNED, LeadStatus.EXCEPTION, LeadStatus.PENDING)


def rule_distribute_waiting(
    *, rule_id: int, actor: User | None = None, limit: int = 5000
) -> dict[str, int]:
    """Distribute, now, every waiting lead the rule matches (seed 002: enabling a rule).

    1. Waiting = no owner, in the Lead Assignment or Exception queue (or still pending),
       not routed by another rule.
    2. Keep those the rule matches (engine), mark them pending, then run them through the
       same batch path as new leads — the rule table decides, so priorities still hold.
    """
    now = timezone.now()
    book = rulebook_load(now, automations=True)
    rule = book.snapshot(rule_id)
    if rule is None or not rule.enabled:
        return {}
    candidates = Lead.objects.filter(
        Q(rule__isnull=True) | Q(rule_id=rule_id), owner__isnull=True, status__in=WAITING_FOR_A_RULE
    )
    matched = [
        lead.pk
        for lead in candidates.select_related(*LEAD_RELATED).order_by("created_at", "id")[:limit]
        if engine.rule_mismatch(rule, lead_snapshot(lead)) is None
    ]
    if not matched:
        return {}
    Lead.objects.filter(pk__in=matched, owner__isnull=True, status__in=WAITING_FOR_A_RULE).update(
        distribution_state=DistributionState.PENDING, updated_at=now
    )
    outcomes: Counter[str] = Counter()
    for start in range(0, len(matched), 500):
        attempts = leads_distribute_batch(
            trigger=Trigger.ENABLE,
            lead_ids=matched[start : start + 500],
            skip_locked=True,
            book=book,
        )
        outcomes.update(a.outcome for a in attempts)
    return dict(outcomes)


def rule_queue_waiting_leads(*, rule_id: int) -> None:
    """After the current transaction commits, distribute the leads a just-enabled rule
    matches (apply_config, the admin)."""
    transaction.on_commit(lambda: rule_distribute_waiting(rule_id=rule_id))


def rules_enable(*, rule_ids: Sequence[int], actor: User | None = None) -> dict[str, int]:
    """Enable rules; each then distributes at once every waiting lead it matches."""
    with transaction.atomic():
        ids = list(
            Rule.objects.filter(pk__in=list(rule_ids), enabled=False).values_list("pk", flat=True)
        )
        Rule.objects.filter(pk__in=ids).update(enabled=True, updated_at=timezone.now())
    outcomes: Counter[str] = Counter({"enabled": len(ids)})
    for rule_id in ids:
        outcomes.update(rule_distribute_waiting(rule_id=rule_id, actor=actor))
    return dict(outcomes)


def rules_disable(*, rule_ids: Sequence[int]) -> int:
    """Disable rules: new leads stop matching them (waiting leads stay where they are)."""
    return Rule.objects.filter(pk__in=list(rule_ids), enabled=True).update(
        enabled=False, updated_at=timezone.now()
    )


def leads_reassign_missed_sla(*, now: datetime | None = None, limit: int = 200) -> int:
    """Take back assigned leads whose contact SLA passed with no contact attempt logged, and
    re-distribute them without the agent who missed it (the miss is recorded)."""
    now = now or timezone.now()
    with transaction.atomic():
        leads = _locked_leads(
            skip_locked=True, limit=limit, sla_due_at__lte=now, owner__isnull=False
        )
        if not leads:
            return 0
        attempted = set(
            Activity.objects.filter(
                lead_id__in=[lead.pk for lead in leads], kind__in=Activity.CONTACT_ATTEMPT_KINDS
            ).values_list("lead_id", "agent_id")
        )
        missed = [lead for lead in leads if (lead.pk, lead.owner_id) not in attempted]
        kept = [lead.pk for lead in leads if (lead.pk, lead.owner_id) in attempted]
        if kept:
            Lead.objects.filter(pk__in=kept).update(sla_due_at=None)
        if not missed:
            return 0
        router = Router(now=now, trigger=Trigger.SLA)
        latest = dict(
            Assignment.objects.filter(lead_id__in=[lead.pk for lead in missed])
            .values("lead_id")
            .annotate(last=Max("id"))
            .values_list("lead_id", "last")
        )
        Assignment.objects.filter(pk__in=latest.values()).update(sla_missed=True)
        history = _offered_members([lead.pk for lead in missed])
        jobs = []
        for lead in missed:
            loser = int(lead.owner_id or 0)  # the query asked for owned leads only
            rule = router.book.snapshot(lead.rule_id)
            router.writes.notices.append(
                Notice(
                    agent_id=loser,
                    lead=lead,
                    created_at=now,
                    message=f"Lead #{lead.pk} was taken back: no contact attempt in time.",
                )
            )
            router.writes.events.append(
                LeadEvent(
                    lead=lead,
                    kind=LeadEvent.Kind.NOTE,
                    created_at=now,
                    message="contact SLA missed: taken back for re-distribution",
                    data={"agent_id": loser},
                )
            )
            lead.owner_id = None
            event = lead.transition_to(LeadStatus.PENDING, note="contact SLA missed")
            if event is not None:
                router.writes.events.append(event)
            if rule is None or not rule.enabled:
                jobs.append(router.plan_new(lead))
                continue
            offered, _ = history.get(lead.pk, (frozenset(), 1))
            # the member who missed is not offered the lead again
            router.load_pools([rule])
            state = router.pool(rule)
            member = state.member_of(loser) if state is not None and loser else None
            if member is not None:
                offered = offered | {member.id}
            jobs.append(router.job(lead, rule=rule, offered=offered))
        router.run(jobs)
        router.flush()
    return len(missed)


def leads_redistribute(*, lead_ids: Sequence[int], actor: User | None = None) -> dict[str, int]:
    """Send leads (from a queue) through the rule table again, e.g. after a rule changed."""
    with transaction.atomic():
        leads = _locked_leads(list(lead_ids))
        for lead in leads:
            Offer.objects.filter(lead=lead, status=Offer.Status.OPEN).update(
                status=Offer.Status.WITHDRAWN, closed_at=timezone.now()
            )
        ids = [lead.pk for lead in leads]
        Lead.objects.filter(pk__in=ids).update(
            distribution_state=DistributionState.PENDING, owner=None, updated_at=timezone.now()
        )
        attempts = leads_distribute_batch(
            trigger=Trigger.MANUAL, lead_ids=ids, skip_locked=False, limit=len(ids) or 1
        )
    return dict(Counter(a.outcome for a in attempts))


def schedule_fill_holidays(*, schedule_id: int, today: datetime | None = None) -> int:
    """Store the public holidays of the schedule's country (last year to two years ahead)
    as holiday rows; entered holidays are kept. Returns how many were added."""
    from distribution.models import Holiday, Schedule
    from distribution.services.snapshot import country_holidays

    schedule = Schedule.objects.get(pk=schedule_id)
    if not schedule.holiday_country:
        return 0
    day = (today or timezone.now()).date()
    table = country_holidays(schedule.holiday_country, day)
    existing = set(schedule.holidays.values_list("date", flat=True))
    rows = [
        Holiday(schedule=schedule, date=d, name=name[:200], origin=Holiday.Origin.COUNTRY)
        for d, name in table.items()
        if d not in existing
    ]
    Holiday.objects.bulk_create(rows)
    return len(rows)


def lead_run_automations(
    *, lead_id: int, trigger: str, actor: User | None = None
) -> DistributionAttempt | None:
    """Run the first enabled automation of TRIGGER (updated, status_changed) whose filters
    match the lead: to a user (reassigning the owner), the assignment rules, one rule, or
    the hopper (seed 004). None when no automation matches."""
    with transaction.atomic():
        leads = _locked_leads([lead_id])
        if not leads:
            return None
        lead = leads[0]
        snap = lead_snapshot(lead)
        automations = (
            Automation.objects.filter(enabled=True, trigger=trigger)
            .select_related("target_user", "target_rule")
            .order_by("priority", "name")
        )
        automation = next(
            (a for a in automations if match_filters(filters_of(a.filters), snap)[0]), None
        )
        if automation is None:
            return None
        Offer.objects.filter(lead=lead, status=Offer.Status.OPEN).update(
            status=Offer.Status.WITHDRAWN, closed_at=timezone.now()
        )
        router = Router(trigger=Trigger.AUTOMATION, actor=actor)
        job = router.job(lead)
        if not router._plan_automation(job, automation):
            match = engine.match_rule(snap, router.book.snapshots)
            job.rule, job.tried = match.rule, match.tried
            if match.rule is None:
                job.decision = Decision(
                    outcome="queue_unassigned",
                    reason_code="no_rule_matched",
                    reason="No enabled rule matches this lead.",
                    rules_tried=match.tried,
                )
        job.note = f"automation {automation.name!r} ({trigger})"
        attempt = router.run([job])[0]
        router.flush()
    return attempt


AGENT_SETTABLE_STATUSES = frozenset(
    {
        LeadStatus.WORKING,
        LeadStatus.CONTACTED,
        LeadStatus.QUALIFIED,
        LeadStatus.CONVERTED,
        LeadStatus.LOST,
    }
)


def lead_status_update(*, lead_id: int, agent: User, status: str) -> Lead:
    """The owner moves a lead along the sales pipeline; `status_changed` automations run
    after commit."""
    from distribution.errors import NotAllowed

    if status not in AGENT_SETTABLE_STATUSES:
        raise NotAllowed(f"{status!r} is not a status an agent sets.", code="invalid_status")
    with transaction.atomic():
        leads = _locked_leads([lead_id], owner=agent)
        if not leads:
            raise NotAllowed("Only the owner changes a lead's status.", code="not_owner")
        lead = leads[0]
        event = lead.transition_to(status, by=agent)
        if event is None:
            return lead
        lead.save(update_fields=["status", "status_changed_at", "updated_at"])
        event.save()
        Activity.objects.create(
            lead=lead, agent=agent, kind=Activity.Kind.STATUS_CHANGE, note=event.message
        )
        transaction.on_commit(
            lambda: lead_run_automations(
                lead_id=lead_id, trigger=Automation.Trigger.STATUS_CHANGED, actor=agent
            )
        )
    return lead


def notices_mark_read(*, agent: User) -> int:
    """Mark the agent's notices read."""
    return Notice.objects.filter(agent=agent, read=False).update(read=True)
