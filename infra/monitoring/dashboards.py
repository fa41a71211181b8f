"""Grafana dashboards built with grafana-foundation-sdk from the spec's panel list."""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import bargauge, stat, table, timeseries
from grafana_foundation_sdk.builders import dashboard as gdash
from grafana_foundation_sdk.builders import prometheus as gprom
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as model

from infra.monitoring.generated import HEADER
from infra.monitoring.spec import Dashboard, Panel, Spec

DATASOURCE_VAR = "datasource"
PROVIDER_VAR = "provider"
# Every provider, manual ones included: the exporter reports a queue for each of the twelve.
PROVIDER_QUERY = "label_values(nilecare_pending_verifications, provider)"
PanelBuilder = timeseries.Panel | stat.Panel | bargauge.Panel | table.Panel


def _new(kind: str) -> PanelBuilder:
    if kind == "timeseries":
        return timeseries.Panel()
    if kind == "stat":
        return stat.Panel()
    if kind == "bargauge":
        return bargauge.Panel()
    if kind == "table":
        return table.Panel()
    raise ValueError(f"panel type '{kind}' is not one of timeseries, stat, bargauge, table")


def _datasource() -> model.DataSourceRef:
    return model.DataSourceRef(type_val="prometheus", uid=f"${{{DATASOURCE_VAR}}}")


def _panel(panel: Panel) -> PanelBuilder:
    builder = (_new(panel.type).title(panel.title).datasource(_datasource())
               .unit(panel.unit).span(panel.w).height(panel.h))
    for index, target in enumerate(panel.targets):
        query = (gprom.Dataquery().expr(target.expr).ref_id(chr(ord("A") + index))
                 .datasource(_datasource()))
        if target.legend:
            query = query.legend_format(target.legend)
        query = query.instant() if target.instant else query.range()
        builder = builder.with_target(query)
    return builder


def build(spec: Spec, dash: Dashboard) -> dict[str, Any]:
    builder = (
        gdash.Dashboard(dash.title).uid(dash.uid).tags(list(dash.tags))
        .description(f"{HEADER}. Service: {spec.service}.")
        .time("now-6h", "now").refresh("1m").timezone("browser").readonly()
        .with_variable(gdash.DatasourceVariable(DATASOURCE_VAR).label("Data source")
                       .type("prometheus"))
        .with_variable(
            gdash.QueryVariable(PROVIDER_VAR).label("Provider").datasource(_datasource())
            .query(PROVIDER_QUERY).multi(True).include_all(True).all_value(".*")
            .refresh(model.VariableRefresh.ON_DASHBOARD_LOAD).sort(model.VariableSort.ALPHABETICAL_ASC)
        )
    )
    for row in dash.rows:
        builder = builder.with_row(gdash.Row(row.title))
        for panel in row.panels:
            builder = builder.with_panel(_panel(panel))
    built = builder.build()
    # Round-trip through JSON so the result is plain data (what Grafana and the tests read).
    data: dict[str, Any] = json.loads(json.dumps(built, cls=JSONEncoder))
    for index, item in enumerate(data.get("panels", []), start=1):
        item["id"] = index
    return data


def dashboards(spec: Spec) -> dict[str, dict[str, Any]]:
    """File name → dashboard JSON document."""
    return {f"{d.uid.removeprefix('nilecare-')}.json": build(spec, d) for d in spec.dashboards}
