"""The staffing offices' workspace, served by Airflow's api-server under ``/roster-sync`` and
linked from Airflow's menu. The app itself is :mod:`include.workspace.app`."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from include.workspace.app import PREFIX, create_app


class RosterSyncWorkspace(AirflowPlugin):
    name = "roster_sync_workspace"
    fastapi_apps = [{"app": create_app(), "url_prefix": PREFIX, "name": "roster-sync workspace"}]
    external_views = [{"name": "编办工作台 Workspace", "href": f"{PREFIX}/", "destination": "nav",
                       "category": "browse", "url_route": "roster-sync"}]
