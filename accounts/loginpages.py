"""Login pages that answer the brute-force lock as what it is: 429 with Retry-After.

The developer console logs in through `LoginView`; the admin keeps Django's
own view, wrapped by `admin_login_answering_locks`. Either page shows the lock
and the wait in the form's errors (accounts.forms). Public: other apps' login pages
reuse these (a module of its own, so that no app imports another's views).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from accounts.forms import LoginForm


def _as_locked(response: HttpResponse) -> HttpResponse:
    """A login page re-shown because of the lock: 429 Too Many Requests, Retry-After."""
    context = getattr(response, "context_data", None) or {}
    locked = getattr(context.get("form"), "locked", None)
    if isinstance(response, TemplateResponse) and locked is not None:
        response.status_code = 429
        response["Retry-After"] = str(locked.retry_after)
    return response


class LoginView(auth_views.LoginView):
    authentication_form = LoginForm

    def form_invalid(self, form: Any) -> HttpResponse:
        return _as_locked(super().form_invalid(form))


def admin_login_answering_locks(
    login: Callable[..., HttpResponse],
) -> Callable[..., HttpResponse]:
    """The admin site's login view, answering the lock with 429."""

    def view(request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        return _as_locked(login(request, extra_context))

    return view
