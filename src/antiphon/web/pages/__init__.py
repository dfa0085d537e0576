"""One module per page; each exports ``routes``."""

from starlette.routing import BaseRoute

from antiphon.web.pages import (
    api,
    auth,
    config,
    control,
    dashboard,
    datasets,
    live,
    logs,
    models,
    play,
    train,
)

ROUTES: list[BaseRoute] = [
    *api.routes,
    *auth.routes,
    *play.routes,
    *dashboard.routes,
    *live.routes,
    *control.routes,
    *logs.routes,
    *datasets.routes,
    *models.routes,
    *train.routes,
    *config.routes,
]
