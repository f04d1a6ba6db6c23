"""Request-scoped access to the app's ports, so routers never open backends themselves."""

from __future__ import annotations

from fastapi import Request

from ebbtide.services import Services


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services
