"""One module per page; each exports ``routes``."""

from starlette.routing import BaseRoute

from antiphon.web.pages import api, auth, config, dashboard, datasets, logs, models

ROUTES: list[BaseRoute] = [
    *api.routes,
    *auth.routes,
    *dashboard.routes,
    *logs.routes,
    *datasets.routes,
    *models.routes,
    *config.routes,
]
