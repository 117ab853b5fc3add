"""The master's web application: server-rendered pages, pushed updates, a login of its own.

Pages live under the master's ``base_url`` beside the API (``<base_url>api/...``). A browser logs
in with a username and password (:mod:`master.web.auth`) and holds a session cookie; the API keeps
its tokens. Pages render with autoescaping Tornado templates; page scripts (one esbuild bundle
with uPlot, built from ``master/web/frontend``) are the only scripts, served by the master under
a Content-Security-Policy without inline script. Live parts listen to the same server-sent event
streams as the API (a project's feed, an execution's events), authenticated by the session.
"""

from __future__ import annotations

from .routes import web_routes, web_settings

__all__ = ["web_routes", "web_settings"]
