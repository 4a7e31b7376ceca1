"""Episode: one anomaly's series with its expected band, the explanation, and actions by role."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State, dcc, html

from components.anomaly import LABEL_TEXT, history_list, severity_pill, status_pill, with_unit
from components.anomaly_episode import (
    alarms_changes_panel,
    explanation_panel,
    group_panel,
    normal_words,
    peers_panel,
    quality_panel,
    series_figure,
    similar_panel,
)
from components.cards import empty_state, notice, section, stat_tile, tile_row
from components.format import age, local_time
from components.forms import field
from components.oncall import owner_strip
from pages._params import positive_id
from services.anomaly import actions, feed, feed_series
from services.auth import ALL_ROLES, OPERATE_ROLES
from services.db.models import utcnow
from services.errors import BeaconError, NotFound
from services.oncall.owners import DETECTOR, owners_of_output
from services.web.authz import allow
from services.web.context import beacon
from services.web.principal import current_principal

PAGE_ROLES = ALL_ROLES

dash.register_page(
    __name__,
    path_template="/anomalies/<anomaly_id>",
    name="Anomaly episode",
    title="Anomaly episode · Beacon",
    order=11,
    roles=PAGE_ROLES,
)

EPISODE = "anomaly-episode-id"
STATUS = "anomaly-episode-status"
CHART = "anomaly-episode-chart"
HISTORY = "anomaly-episode-history"
MESSAGE = "anomaly-episode-message"
ACK = "anomaly-episode-ack"
LABEL = "anomaly-episode-label"
NOTE = "anomaly-episode-note"
FEEDBACK = "anomaly-episode-feedback"
TITLE = "anomaly-episode-incident-title"
CREATE = "anomaly-episode-create-incident"
INCIDENT = "anomaly-episode-incident"
LINK = "anomaly-episode-link-incident"
INCIDENT_INFO = "anomaly-episode-incident-info"


def layout(anomaly_id: str | None = None, **_query: str) -> html.Div:
    """The whole episode, read once on load; actions refresh status and history in place."""
    episode_id = positive_id(anomaly_id)
    ctx = beacon()
    try:
        if episode_id is None:
            raise NotFound(f"“{anomaly_id}” is not an episode number.")
        with ctx.db.session() as session:
            detail = feed.episode_detail(session, anomaly_id=episode_id)
            series = feed_series.episode_series(session, anomaly_id=episode_id)
            now = utcnow()
            owners = owners_of_output(
                session,
                now=now,
                domain=detail.episode.domain,
                region=detail.episode.region,
                component=DETECTOR,
            )
    except NotFound as error:
        return html.Div(
            className="page-message",
            id="anomaly-episode-not-found",
            children=[
                html.H2("Episode not found"),
                html.P(error.message),
                dcc.Link("Back to the anomaly feed", href="/anomalies"),
            ],
        )
    principal = current_principal()
    can_act = principal is not None and principal.role in OPERATE_ROLES and not principal.is_kiosk
    zone = ctx.settings.zone
    episode = detail.episode
    explanation = detail.explanation
    chart = (
        dcc.Graph(
            id=CHART,
            figure=series_figure(series, episode, zone=zone),
            # The mode bar would sit on the episode label; drag still zooms, double-click resets.
            config={"displaylogo": False, "displayModeBar": False},
            className="chart",
        )
        if len(series.frame)
        else empty_state("No measurements stored", "The series for this episode is not stored.")
    )
    group = group_panel(detail.group, zone=zone)
    return html.Div(
        className="page",
        children=[
            dcc.Store(id=EPISODE, data=episode.id),
            html.Div(
                className="page-header",
                children=[
                    html.Div(
                        [
                            dcc.Link("← Anomalies", href="/anomalies", className="muted"),
                            html.H1(f"{episode.kpi} on {episode.element}"),
                            html.P(html.Span(episode.dn, className="mono")),
                        ]
                    ),
                    html.Div(_status(detail, zone), id=STATUS, className="anomaly-status"),
                ],
            ),
            owner_strip(owners, zone=zone, now=now, id_="anomaly-episode-owners"),
            _tiles(detail, zone),
            section(
                "Series",
                html.Div([chart, html.P(series.note, className="muted small")]),
                subtitle=f"{local_time(series.window_start, zone)} – "
                f"{local_time(series.window_end, zone)} · red: the episode · grey: the "
                + normal_words(series.normal_sigma, series.normal_coverage)
                + " · dotted: the alert threshold",
            ),
            html.Div(
                className="columns",
                children=[
                    section("Explanation", explanation_panel(explanation, episode)),
                    section(
                        "Confidence and data quality",
                        quality_panel(episode, detail.data_quality, explanation),
                    ),
                ],
            ),
            html.Div(
                className="columns",
                children=[
                    section("Peers", peers_panel(explanation.get("peers") or {})),
                    section("Alarms and changes", alarms_changes_panel(explanation, zone=zone)),
                ],
            ),
            section(
                "Similar past episodes",
                similar_panel(explanation.get("similar") or [], zone=zone),
                subtitle="and how people judged them",
            ),
            section("Same site, same time", group, subtitle=episode.group_key or "")
            if group is not None
            else None,
            _actions(detail, can_act),
            section(
                "History",
                html.Div(history_list(detail.history, detail.feedback, zone=zone), id=HISTORY),
                subtitle="every action on this episode, newest first",
            ),
        ],
    )


def _status(detail: feed.EpisodeDetail, zone: Any) -> list:
    episode = detail.episode
    pills: list[Any] = [severity_pill(episode.severity), " ", status_pill(episode.status)]
    if episode.suppressed:
        pills += [" ", html.Span("suppressed", className="pill pill-muted")]
    if episode.revised:
        pills += [" ", html.Span("revised", className="pill pill-warn")]
    if detail.acknowledged_by or episode.acknowledged_at:
        pills.append(
            html.Div(
                f"acknowledged by {detail.acknowledged_by or 'API'} "
                f"{local_time(episode.acknowledged_at, zone)}",
                className="muted small",
            )
        )
    if detail.incident is not None:
        pills.append(
            html.Div(
                f"incident #{detail.incident.id} ({detail.incident.severity}, "
                f"{detail.incident.status}): {detail.incident.title}",
                className="small",
                id=INCIDENT_INFO,
            )
        )
    return pills


def _tiles(detail: feed.EpisodeDetail, zone: Any) -> html.Div:
    episode = detail.episode
    if episode.ongoing:
        timing = f"ongoing for {age(episode.started_at)}"
    elif episode.ended_at == episode.started_at:
        timing = "a single period"  # "lasted just now" reads as nonsense
    else:
        timing = f"lasted {age(episode.started_at, now=episode.ended_at)}"
    return tile_row(
        [
            stat_tile(
                "Confidence",
                f"{episode.confidence:.2f}",
                detail=f"calibrated · {len(episode.flags)} data-quality flag(s)",
                tone="bad" if episode.confidence >= 0.8 else "warn",
            ),
            stat_tile("Deviation", f"{episode.score:+.1f} σ", detail="robust, at the peak"),
            stat_tile(
                "Observed at peak",
                with_unit(episode.observed, episode.unit),
                detail=f"expected {with_unit(episode.expected, episode.unit)}",
            ),
            stat_tile("Started", local_time(episode.started_at, zone), detail=timing),
        ]
    )


def _actions(detail: feed.EpisodeDetail, can_act: bool) -> html.Section:
    if not can_act:
        body: Any = html.P(
            "Your role can read this episode. Operators, engineers and admins acknowledge it, "
            "give feedback and open incidents.",
            className="muted",
        )
        return section("Actions", body)
    episode = detail.episode
    body = html.Div(
        [
            html.Div(
                className="anomaly-inline",
                children=[
                    html.Button(
                        "Acknowledge",
                        id=ACK,
                        className="btn",
                        disabled=episode.status != "open",
                        title="Mark that a person has seen it (audited)",
                    ),
                ],
            ),
            html.H3("Feedback"),
            html.Div(
                className="anomaly-inline",
                children=[
                    field(
                        "Verdict",
                        dcc.RadioItems(
                            id=LABEL,
                            options=[{"label": LABEL_TEXT[k], "value": k} for k in feed.LABELS],
                            className="anomaly-labels",
                            inline=True,
                        ),
                    ),
                    field(
                        "Note",
                        dcc.Textarea(
                            id=NOTE,
                            maxLength=actions.MAX_NOTE,
                            placeholder="why (kept for review and calibration)",
                            className="input anomaly-note",
                        ),
                    ),
                    html.Button("Send feedback", id=FEEDBACK, className="btn"),
                ],
            ),
            html.H3("Incident"),
            html.Div(
                className="anomaly-inline",
                children=[
                    field(
                        "Title of a new incident",
                        dcc.Input(
                            id=TITLE,
                            className="input",
                            maxLength=300,
                            placeholder=f"{episode.kpi} on {episode.element}",
                        ),
                    ),
                    html.Button("Create incident", id=CREATE, className="btn"),
                    field("Or link to", dcc.Dropdown(id=INCIDENT, placeholder="open incident")),
                    html.Button("Link", id=LINK, className="btn btn-quiet"),
                ],
            ),
            html.Div(id=MESSAGE, className="anomaly-message"),
        ]
    )
    return section("Actions", body, subtitle="every action is audited")


@dash.callback(
    Output(INCIDENT, "options"),
    Input(EPISODE, "data"),
)
@allow(OPERATE_ROLES)
def load_incidents(_episode: int | None) -> list[dict]:
    """Open incidents to link the episode to."""
    with beacon().db.session() as session:
        return [
            {"label": f"#{i.id} {i.severity} · {i.title}", "value": i.id}
            for i in actions.open_incidents(session)
        ]


@dash.callback(
    Output(MESSAGE, "children"),
    Output(STATUS, "children"),
    Output(HISTORY, "children"),
    Output(NOTE, "value"),
    Input(ACK, "n_clicks"),
    Input(FEEDBACK, "n_clicks"),
    Input(CREATE, "n_clicks"),
    Input(LINK, "n_clicks"),
    State(EPISODE, "data"),
    State(LABEL, "value"),
    State(NOTE, "value"),
    State(TITLE, "value"),
    State(INCIDENT, "value"),
    prevent_initial_call=True,
)
@allow(OPERATE_ROLES, mutates=True)
def act(
    ack: int | None,
    feedback: int | None,
    create: int | None,
    link: int | None,
    episode_id: Any,
    label: str | None,
    note: str | None,
    title: str | None,
    incident_id: Any,
) -> tuple:
    """Acknowledge, give feedback, or open or link an incident; the service audits each."""
    trigger = dash.ctx.triggered_id
    clicks = {ACK: ack, FEEDBACK: feedback, CREATE: create, LINK: link}
    anomaly_id = positive_id(episode_id)
    if trigger not in clicks or not clicks[trigger] or anomaly_id is None:
        return dash.no_update, dash.no_update, dash.no_update, dash.no_update
    principal = current_principal()
    assert principal is not None  # the guard and @allow ran first
    actor = principal.actor()
    clear_note: Any = dash.no_update
    ctx = beacon()
    try:
        with ctx.db.session(write=True) as session:
            if trigger == ACK:
                anomaly = actions.acknowledge(session, anomaly_id=anomaly_id, actor=actor)
                text = f"Episode #{anomaly_id} {anomaly.status}."
            elif trigger == FEEDBACK:
                actions.give_feedback(
                    session, anomaly_id=anomaly_id, label=label or "", note=note or "", actor=actor
                )
                text, clear_note = f"Feedback “{LABEL_TEXT.get(label or '', label)}” saved.", ""
            elif trigger == CREATE:
                incident = actions.create_incident(
                    session, anomaly_id=anomaly_id, actor=actor, title=title
                )
                text = f"Incident #{incident.id} ({incident.severity}) opened."
            else:
                picked = positive_id(incident_id)
                if picked is None:
                    raise NotFound("Choose an open incident to link to.")
                incident = actions.link_incident(
                    session, anomaly_id=anomaly_id, incident_id=picked, actor=actor
                )
                text = f"Linked to incident #{incident.id}."
    except BeaconError as error:
        return notice(error.message, tone="warn"), dash.no_update, dash.no_update, dash.no_update
    with ctx.db.session() as session:
        detail = feed.episode_detail(session, anomaly_id=anomaly_id)
    zone = ctx.settings.zone
    return (
        notice(text, tone="ok", id_="anomaly-episode-done"),
        _status(detail, zone),
        history_list(detail.history, detail.feedback, zone=zone),
        clear_note,
    )
