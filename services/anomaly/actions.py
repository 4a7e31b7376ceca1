"""What people do with anomaly episodes: acknowledge, give feedback, open or link incidents.

Every action checks the actor's role here, in the service, whatever the caller already
checked, and writes an audit event in the same transaction as the change.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services import audit
from services.anomaly.feed import AUDIT_OBJECT, LABEL_TEXT, LABELS
from services.audit import Actor
from services.auth import OPERATE_ROLES
from services.db.models import (
    Anomaly,
    AnomalyFeedback,
    Element,
    Incident,
    IncidentEvent,
    Kpi,
    User,
    UserView,
    utcnow,
)
from services.decisions.disagreements import on_anomaly_feedback
from services.errors import Conflict, Forbidden, InvalidInput, NotFound
from services.incidents import openers

OPEN_INCIDENT_STATES = ("triggered", "acknowledged", "mitigated")
MAX_NOTE = 2000
MAX_BULK = 500
VIEW_PAGE = "anomalies"
MAX_VIEWS = 50


@dataclass(frozen=True)
class BulkResult:
    """What a bulk acknowledge did: which episodes changed and which were already handled."""

    acknowledged: list[int]
    skipped: list[int]
    missing: list[int]


def require_operator(actor: Actor) -> None:
    """Operators, engineers and admins act on episodes; viewers, executives and screens do not."""
    if actor.kind == "kiosk":
        raise Forbidden("Wall screens are read-only.")
    if actor.role not in OPERATE_ROLES:
        raise Forbidden(
            f"The {actor.role or 'unknown'} role cannot act on anomalies; "
            "operators, engineers and admins can."
        )


def acknowledge(session: Session, *, anomaly_id: int, actor: Actor) -> Anomaly:
    """Mark one episode acknowledged (resolved when it has already ended); audited."""
    require_operator(actor)
    anomaly = _get(session, anomaly_id)
    if anomaly.status != "open":
        raise Conflict(f"Episode #{anomaly_id} is already {anomaly.status}.")
    _acknowledge(session, anomaly, actor)
    return anomaly


def acknowledge_many(session: Session, *, anomaly_ids: Iterable[int], actor: Actor) -> BulkResult:
    """Acknowledge every open episode among `anomaly_ids`; the others are reported, not errors."""
    require_operator(actor)
    wanted = sorted({int(i) for i in anomaly_ids})
    if not wanted:
        raise InvalidInput("Select at least one episode to acknowledge.")
    if len(wanted) > MAX_BULK:
        raise InvalidInput(f"Acknowledge at most {MAX_BULK} episodes at once.")
    found = {a.id: a for a in session.scalars(select(Anomaly).where(Anomaly.id.in_(wanted)))}
    done, skipped = [], []
    for anomaly_id in wanted:
        anomaly = found.get(anomaly_id)
        if anomaly is None:
            continue
        if anomaly.status != "open":
            skipped.append(anomaly_id)
            continue
        _acknowledge(session, anomaly, actor, bulk=True)
        done.append(anomaly_id)
    missing = [i for i in wanted if i not in found]
    return BulkResult(acknowledged=done, skipped=skipped, missing=missing)


def give_feedback(
    session: Session, *, anomaly_id: int, label: str, note: str, actor: Actor
) -> AnomalyFeedback:
    """Store a verdict (it feeds calibration and later review); audited."""
    require_operator(actor)
    if label not in LABELS:
        raise InvalidInput(f"Choose a verdict: {', '.join(LABEL_TEXT[x] for x in LABELS)}.")
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise InvalidInput(f"Keep the note under {MAX_NOTE} characters.")
    anomaly = _get(session, anomaly_id)
    feedback = AnomalyFeedback(
        anomaly_id=anomaly.id, user_id=_user_id(session, actor), label=label, note=note
    )
    session.add(feedback)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="anomaly.feedback",
        object_type=AUDIT_OBJECT,
        object_id=anomaly.id,
        after={"label": label, "note": note, "feedback_id": feedback.id},
    )
    # "Not an anomaly" and "new normal" disagree with the detector: a case for review.
    on_anomaly_feedback(
        session, anomaly_id=anomaly.id, label=label, actor=actor, now=feedback.created_at
    )
    return feedback


def create_incident(
    session: Session,
    *,
    anomaly_id: int,
    actor: Actor,
    title: str | None = None,
    include_group: bool = True,
) -> Incident:
    """Open an incident from an episode (and its unlinked site-group peers); audited."""
    require_operator(actor)
    anomaly = _get(session, anomaly_id)
    if anomaly.incident_id is not None:
        raise Conflict(
            f"Episode #{anomaly_id} is already linked to incident #{anomaly.incident_id}."
        )
    if title is not None and len(title.strip()) > 300:
        raise InvalidInput("Keep the incident title under 300 characters.")
    members = [anomaly, *(_group_unlinked(session, anomaly) if include_group else [])]
    # The incidents service routes it to the domain's owner and starts escalation.
    return openers.create_from_episodes(
        session, anomaly_ids=[m.id for m in members], actor=actor, title=title
    )


def link_incident(session: Session, *, anomaly_id: int, incident_id: int, actor: Actor) -> Incident:
    """Attach an episode to an existing incident; audited and noted on its timeline."""
    require_operator(actor)
    anomaly = _get(session, anomaly_id)
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(f"There is no incident #{incident_id}.")
    if anomaly.incident_id == incident.id:
        raise Conflict(f"Episode #{anomaly_id} is already linked to incident #{incident_id}.")
    if incident.status == "resolved":
        raise Conflict(f"Incident #{incident_id} is resolved; open a new one instead.")
    _link(session, anomaly, incident, actor, created=False)
    return incident


def open_incidents(session: Session, *, limit: int = 100) -> list[Incident]:
    """Incidents not yet resolved, newest first, for the link picker."""
    return list(
        session.scalars(
            select(Incident)
            .where(Incident.status.in_(OPEN_INCIDENT_STATES))
            .order_by(Incident.created_at.desc())
            .limit(limit)
        )
    )


def save_view(session: Session, *, name: str, state: dict[str, Any], actor: Actor) -> UserView:
    """Save (or replace) one of the actor's own named grid views; audited."""
    user_id = _own_user(session, actor)
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise InvalidInput("Name the view (at most 100 characters).")
    existing = session.scalar(
        select(UserView).where(
            UserView.user_id == user_id, UserView.page == VIEW_PAGE, UserView.name == name
        )
    )
    if existing is None:
        if len(list_views(session, actor=actor)) >= MAX_VIEWS:
            raise InvalidInput(f"At most {MAX_VIEWS} saved views; delete one first.")
        existing = UserView(user_id=user_id, page=VIEW_PAGE, name=name, state=dict(state))
        session.add(existing)
    else:
        existing.state = dict(state)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="view.save",
        object_type="user_view",
        object_id=existing.id,
        after={"page": VIEW_PAGE, "name": name, "state": dict(state)},
    )
    return existing


def list_views(session: Session, *, actor: Actor) -> list[UserView]:
    """The actor's saved views of the anomaly feed, by name."""
    if actor.kind != "user":
        return []
    user_id = _user_id(session, actor)
    if user_id is None:
        return []
    return list(
        session.scalars(
            select(UserView)
            .where(UserView.user_id == user_id, UserView.page == VIEW_PAGE)
            .order_by(UserView.name)
        )
    )


def delete_view(session: Session, *, view_id: int, actor: Actor) -> None:
    """Delete one of the actor's own saved views; another user's view is not found."""
    user_id = _own_user(session, actor)
    view = session.get(UserView, view_id)
    if view is None or view.user_id != user_id or view.page != VIEW_PAGE:
        raise NotFound("That saved view does not exist.")
    audit.record(
        session,
        actor=actor,
        action="view.delete",
        object_type="user_view",
        object_id=view.id,
        before={"page": view.page, "name": view.name},
    )
    session.delete(view)


def _acknowledge(session: Session, anomaly: Anomaly, actor: Actor, *, bulk: bool = False) -> None:
    before = anomaly.status
    # An episode that has ended and been seen by a person needs nothing more: resolved.
    anomaly.status = "resolved" if anomaly.ended_at is not None else "acknowledged"
    anomaly.acknowledged_at = utcnow()
    anomaly.acknowledged_by = _user_id(session, actor)
    audit.record(
        session,
        actor=actor,
        action="anomaly.acknowledge",
        object_type=AUDIT_OBJECT,
        object_id=anomaly.id,
        before={"status": before},
        after={"status": anomaly.status, "bulk": bulk},
    )


def _link(
    session: Session, anomaly: Anomaly, incident: Incident, actor: Actor, *, created: bool
) -> None:
    before = anomaly.incident_id
    anomaly.incident_id = incident.id
    element = session.get_one(Element, anomaly.element_id)
    kpi = session.get_one(Kpi, anomaly.kpi_id)
    session.add(
        IncidentEvent(
            incident_id=incident.id,
            kind="anomaly",
            actor=actor.name,
            text=(
                f"{'Opened from' if created else 'Linked'} anomaly episode #{anomaly.id}: "
                f"{kpi.name} on {element.name} ({anomaly.severity}, "
                f"confidence {anomaly.confidence:.0%})"
            ),
            data={"anomaly_id": anomaly.id, "group_key": anomaly.group_key},
        )
    )
    audit.record(
        session,
        actor=actor,
        action="anomaly.incident.link",
        object_type=AUDIT_OBJECT,
        object_id=anomaly.id,
        before={"incident_id": before},
        after={"incident_id": incident.id, "created": created},
    )


def _group_unlinked(session: Session, anomaly: Anomaly) -> list[Anomaly]:
    if not anomaly.group_key:
        return []
    return list(
        session.scalars(
            select(Anomaly)
            .where(Anomaly.group_key == anomaly.group_key)
            .where(Anomaly.id != anomaly.id)
            .where(Anomaly.incident_id.is_(None))
            .order_by(Anomaly.id)
        )
    )


def _get(session: Session, anomaly_id: int) -> Anomaly:
    anomaly = session.get(Anomaly, anomaly_id)
    if anomaly is None:
        raise NotFound(f"There is no anomaly episode #{anomaly_id}.")
    return anomaly


def _user_id(session: Session, actor: Actor) -> int | None:
    # API tokens and the system act without a user row; their name is in the audit event.
    if actor.kind != "user":
        return None
    return session.scalar(select(User.id).where(User.username == actor.name))


def _own_user(session: Session, actor: Actor) -> int:
    # Saved views are personal: only a signed-in user has them (not screens or API tokens).
    if actor.kind != "user":
        raise Forbidden("Only signed-in users save views.")
    user_id = _user_id(session, actor)
    if user_id is None:
        raise NotFound(f"There is no user {actor.name}.")
    return user_id
