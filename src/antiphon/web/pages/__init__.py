"""One module per page; each exports ``routes``."""

from starlette.routing import BaseRoute

from antiphon.web.pages import auth, config, dashboard, datasets, logs, models

ROUTES: list[BaseRoute] = [
    *auth.routes,
    *dashboard.routes,
    *logs.routes,
    *datasets.routes,
    *models.routes,
    *config.routes,
]
