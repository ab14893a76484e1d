"""For leads and admins: the dashboards (agents, trends, automatic-vs-human agreement, CSV)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy.orm import Session

from pipeline.review.web import Who, db_session, lead, templates

router = APIRouter()


def period(request: Request) -> dict[str, str]:
    return {k: request.query_params.get(k, "") for k in ("start", "end", "team", "agent", "bucket")}

@router.get("/api/dashboard")
def api_dashboard(request: Request, who: Who = Depends(lead),
                  s: Session = Depends(db_session)) -> JSONResponse:
    return JSONResponse(dashboard_data(s, period(request)))

@router.get("/dashboard.csv")
def dashboard_csv(request: Request, who: Who = Depends(lead),
                  s: Session = Depends(db_session)) -> Response:
    from pipeline.review.dashboards import to_csv

    rows = dashboard_data(s, period(request))["agents"]
    return Response(to_csv(rows), media_type="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="agents.csv"'})

@router.get("/dashboard", response_class=HTMLResponse)
def dashboard_page(request: Request, who: Who = Depends(lead),
                   s: Session = Depends(db_session)) -> Response:
    from pipeline.evaluation.plots import bar_chart

    f = period(request)
    data = dashboard_data(s, f)
    plots = [
        bar_chart([r["period"] for r in data["trend"]], [r["mean_score"] for r in data["trend"]],
                  "Mean automatic score per period", max_value=1.0, fmt="{:.0%}"),
        bar_chart([r["period"] for r in data["trend"]], [r["mean_reviewed_score"] for r in data["trend"]],
                  "Mean reviewed score per period", max_value=1.0, fmt="{:.0%}"),
        bar_chart(list(data["agreement"]), [a.get("accuracy") for a in data["agreement"].values()],
                  "Automatic vs human agreement per item", max_value=1.0, fmt="{:.0%}"),
    ]
    return templates.TemplateResponse(request, "dashboard.html", {
        "user": who[0], "csrf": who[1].csrf_token, "data": data, "f": f, "plots": plots,
        "query": str(request.url.query)})


def dashboard_data(s: Session, f: dict[str, str]) -> dict[str, Any]:
    """Agent KPIs, the trend and automatic-vs-human agreement for a period (``start``/``end``),
    team (queue) and agent."""
    from pipeline.errors import ConfigError
    from pipeline.review.dashboards import agent_kpis, agreement_by_item, trend

    start, end, team = f.get("start") or None, f.get("end") or None, f.get("team") or None
    try:
        return {
            "agents": agent_kpis(s, start, end, team),
            "trend": trend(s, f.get("agent") or None, f.get("bucket") or "week", start, end, team),
            "agreement": agreement_by_item(s, start, end),
        }
    except ConfigError as e:
        raise HTTPException(422, str(e)) from None


