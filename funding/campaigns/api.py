"""The open, read-only campaign API (described by an OpenAPI 3.1 document) and the
embeddable progress widget that communes and partners put on their own sites.

Amounts are integers of minor units with their ISO currency, as everywhere here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from functools import partial, wraps

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from funding import i18n
from funding.campaigns import richtext, views
from funding.campaigns.models import CampaignStatus, MatchStatus
from funding.db import utcnow
from funding.public import public
from funding.security import content_security_policy
from funding.web import absolute_url, db, path_for, rate_limit

API_HEADERS = {"access-control-allow-origin": "*", "cache-control": "public, max-age=30"}
# The site's CSP, but anyone may frame the widget (the one route that may be framed).
WIDGET_HEADERS = {"content-security-policy": content_security_policy(frame_ancestors="*"), "cache-control": "public, max-age=60"}


def _iso(moment: dt.datetime) -> str:
    return moment.replace(microsecond=0).isoformat() + "Z"


def _summary(request: Request, campaign, site, progress: views.Progress, now: dt.datetime) -> dict:
    return {
        "slug": campaign.slug,
        "title": campaign.title,
        "summary": campaign.summary or richtext.plain(campaign.description, 300),
        "url": absolute_url(request, "campaign", slug=campaign.slug),
        "widget_url": absolute_url(request, "campaign_widget", slug=campaign.slug),
        "site": {"slug": site.slug, "name": site.name, "town": site.town},
        "status": campaign.status,
        "mode": campaign.mode,
        "currency": campaign.currency,
        "goal": campaign.goal,
        "crowd_amount": progress.crowd,
        "match_amount": progress.match,
        "total_amount": progress.total,
        "percent": progress.percent,
        "backers": progress.backers,
        "starts_at": _iso(campaign.starts_at),
        "ends_at": _iso(campaign.ends_at),
        "open": campaign.status == CampaignStatus.LIVE and campaign.starts_at <= now < campaign.ends_at,
    }


async def list_campaigns(request: Request) -> Response:
    now = utcnow()
    async with db(request) as session:
        rows = await views.public_list(session)
    return JSONResponse({"campaigns": [_summary(request, c, s, p, now) for c, s, p in rows]}, headers=API_HEADERS)


async def get_campaign(request: Request) -> Response:
    now = utcnow()
    async with db(request) as session:
        page = await views.load(session, request.path_params["slug"], now)
    if page is None:
        raise HTTPException(404, "campaign not found")
    match = page.match
    body = {
        **_summary(request, page.campaign, page.site, page.progress, now),
        "description": richtext.plain(page.campaign.description, 20_000),
        "image_url": page.campaign.image_url,
        "tiers": [{
            "id": t.tier.id, "title": t.tier.title, "description": t.tier.description, "amount": t.tier.amount,
            "kind": t.tier.kind, "stock": t.tier.stock, "remaining": t.tier.remaining, "backers": t.tier.backers_count,
            "sold_out": t.sold_out,
        } for t in page.tiers],
        "match": None if match is None else {
            "funder": match.funder_name, "ratio": f"{match.ratio_num}:{match.ratio_den}",
            "cap_per_contribution": match.cap_per_pledge, "total_cap": match.total_cap, "status": match.status,
            "amount": page.progress.match,
        },
    }
    return JSONResponse(body, headers=API_HEADERS)


async def widget(request: Request) -> Response:
    """A small page meant for an <iframe>: the only page that may be framed, by anyone."""
    async with db(request) as session:
        page = await views.load(session, request.path_params["slug"], utcnow())
    if page is None:
        raise HTTPException(404)
    # Rendered without the session (no CSRF token, no cookie set inside someone else's page).
    templates = request.app.state.templates
    templates.env.install_gettext_translations(i18n.translations(i18n.get_locale()), newstyle=True)
    return templates.TemplateResponse(request, "campaigns/widget.html", {
        "page": page, "c": page.campaign, "labels": views.STATUS_LABELS, "locale": i18n.get_locale(),
        "base_url": request.app.state.settings.base_url,
    }, headers=WIDGET_HEADERS)


def _money_field(description: str) -> dict:
    return {"type": "integer", "description": f"{description}, in minor units of `currency` (cents for EUR)"}


SUMMARY_SCHEMA = {
    "type": "object",
    "required": ["slug", "title", "summary", "url", "widget_url", "site", "status", "mode", "currency", "goal",
                 "crowd_amount", "match_amount", "total_amount", "percent", "backers", "starts_at", "ends_at", "open"],
    "properties": {
        "slug": {"type": "string"},
        "title": {"type": "string"},
        "summary": {"type": "string"},
        "url": {"type": "string", "format": "uri", "description": "the campaign page"},
        "widget_url": {"type": "string", "format": "uri", "description": "an HTML progress widget to put in an iframe"},
        "site": {"type": "object", "required": ["slug", "name", "town"], "properties": {
            "slug": {"type": "string"}, "name": {"type": "string"}, "town": {"type": "string"}}},
        "status": {"type": "string", "enum": ["live", "succeeded", "failed", "closed"]},
        "mode": {"type": "string", "enum": ["all_or_nothing", "keep_it_all"]},
        "currency": {"type": "string", "description": "ISO 4217 code", "examples": ["EUR"]},
        "goal": _money_field("the goal"),
        "crowd_amount": _money_field("given or promised by the crowd"),
        "match_amount": _money_field("promised (or released) by the public matching funder"),
        "total_amount": _money_field("crowd plus match: what the progress bar shows against the goal"),
        "percent": {"type": "integer", "description": "whole percent of the goal reached (may exceed 100)"},
        "backers": {"type": "integer"},
        "starts_at": {"type": "string", "format": "date-time"},
        "ends_at": {"type": "string", "format": "date-time"},
        "open": {"type": "boolean", "description": "whether it takes contributions now"},
    },
}
DETAIL_SCHEMA = {
    "allOf": [{"$ref": "#/components/schemas/CampaignSummary"}],
    "type": "object",
    "required": ["description", "image_url", "tiers", "match"],
    "properties": {
        "description": {"type": "string", "description": "plain text"},
        "image_url": {"type": ["string", "null"]},
        "tiers": {"type": "array", "items": {"$ref": "#/components/schemas/Tier"}},
        "match": {"oneOf": [{"$ref": "#/components/schemas/Match"}, {"type": "null"}]},
    },
}
TIER_SCHEMA = {
    "type": "object",
    "required": ["id", "title", "description", "amount", "kind", "stock", "remaining", "backers", "sold_out"],
    "properties": {
        "id": {"type": "integer"},
        "title": {"type": "string"},
        "description": {"type": "string"},
        "amount": _money_field("the tier's contribution"),
        "kind": {"type": "string", "enum": ["gift", "reward"]},
        "stock": {"type": ["integer", "null"], "description": "null: unlimited"},
        "remaining": {"type": ["integer", "null"], "description": "units left; null: unlimited"},
        "backers": {"type": "integer"},
        "sold_out": {"type": "boolean"},
    },
}
MATCH_SCHEMA = {
    "type": "object",
    "required": ["funder", "ratio", "cap_per_contribution", "total_cap", "status", "amount"],
    "properties": {
        "funder": {"type": "string", "examples": ["Thiers Dore et Montagne"]},
        "ratio": {"type": "string", "description": "funder euros : crowd euros", "examples": ["1:1"]},
        "cap_per_contribution": _money_field("the most matched for one contribution"),
        "total_cap": _money_field("the most the funder gives in all"),
        "status": {"type": "string", "enum": [str(s) for s in MatchStatus],
                   "description": "released only if the campaign succeeds"},
        "amount": _money_field("the match as of now"),
    },
}
ERROR = {"description": "no such public campaign", "content": {"application/json": {"schema": {
    "type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}}}}
TOO_MANY = {"description": "too many requests from this client: wait the seconds of Retry-After",
            "headers": {"Retry-After": {"schema": {"type": "integer"}}},
            "content": {"application/json": {"schema": {
                "type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}}}}


def openapi_document(base_url: str, path_of: Callable[..., str]) -> dict:
    """The API described for its users; ``path_of(name, **params)`` gives each route's path
    (a parameter given as ``"{slug}"`` stays the template OpenAPI writes)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Entre-Lab Funding — campagnes de financement participatif",
            "version": "1.0.0",
            "description": "Read-only, open data: the crowdfunding campaigns of the Entre-Lab tiers-lieux, "
                           "their progress (crowd and public match), and their tiers. No authentication.",
            "license": {"name": "Licence Ouverte / Open Licence 2.0", "url": "https://www.etalab.gouv.fr/licence-ouverte-open-licence/"},
        },
        "servers": [{"url": base_url}],
        "paths": {
            path_of("api_campaigns"): {"get": {
                "operationId": "listCampaigns", "summary": "Public campaigns, live ones first",
                "responses": {"200": {"description": "the campaigns", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["campaigns"], "properties": {"campaigns": {
                        "type": "array", "items": {"$ref": "#/components/schemas/CampaignSummary"}}}}}}}, "429": TOO_MANY},
            }},
            path_of("api_campaign", slug="{slug}"): {"get": {
                "operationId": "getCampaign", "summary": "One campaign with its tiers and its public match",
                "parameters": [{"name": "slug", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "the campaign", "content": {"application/json": {"schema": {
                    "$ref": "#/components/schemas/Campaign"}}}}, "404": ERROR, "429": TOO_MANY},
            }},
            path_of("openapi"): {"get": {
                "operationId": "openapi", "summary": "This document",
                "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["openapi", "info", "paths"]}}}}},
            }},
        },
        "components": {"schemas": {"CampaignSummary": SUMMARY_SCHEMA, "Campaign": DETAIL_SCHEMA, "Tier": TIER_SCHEMA,
                                   "Match": MATCH_SCHEMA}},
    }


async def openapi(request: Request) -> Response:
    return JSONResponse(openapi_document(request.app.state.settings.base_url, partial(path_for, request)), headers=API_HEADERS)


def limited(endpoint: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint behind the ``api`` rate limit (per client IP): past it, 429 with Retry-After."""

    @wraps(endpoint)
    async def guarded(request: Request) -> Response:
        await rate_limit(request, ("api", None))
        return await endpoint(request)

    return guarded


routes = [
    # A public answer kept (funding.public) is served without counting: it costs us next to nothing.
    Route("/api/campaigns", public(limited(list_campaigns)), name="api_campaigns"),
    Route("/api/campaigns/{slug:str}", public(limited(get_campaign)), name="api_campaign"),
    Route("/api/openapi.json", limited(openapi), name="openapi"),
    Route("/widget/campaigns/{slug:str}", public(limited(widget)), name="campaign_widget"),
]
