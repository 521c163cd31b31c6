"""Developer console pages: thin views over publicplatform services and selectors.
Login is the Django session of the site (the same accounts as the chat); a
developer sees only the accounts they own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from publicplatform import protocol, selectors
from publicplatform.console.forms import (
    AccountForm,
    AutoReplyForm,
    MenuForm,
    ServerForm,
    WebhookTestForm,
)
from publicplatform.exceptions import AccountNotFound
from publicplatform.models import OfficialAccount
from publicplatform.services import accounts as account_services
from publicplatform.services import menus as menu_services
from publicplatform.services import webhooks
from wechat_core.errors import ServiceError

NEW_SECRET = "publicplatform-new-secret"  # noqa: S105 - a session key


def _owner(request: HttpRequest) -> int:
    return int(request.user.pk or 0)  # login_required: always someone


def _account(request: HttpRequest, account_id: int) -> OfficialAccount:
    try:
        return selectors.access_account(owner_id=_owner(request), account_id=account_id)
    except AccountNotFound as error:
        raise Http404("No such account of yours.") from error


@login_required
@require_http_methods(["GET", "POST"])
def index(request: HttpRequest) -> HttpResponse:
    form = AccountForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            created = account_services.account_create(owner_id=_owner(request), **form.cleaned_data)
        except ServiceError as error:
            messages.error(request, error.message)
        else:
            request.session[NEW_SECRET] = created.secret
            return redirect("console-account", account_id=created.account.pk)
    accounts = selectors.developer_accounts(owner_id=_owner(request))
    return render(request, "publicplatform/index.html", {"accounts": accounts, "form": form})


def _server_initial(account: OfficialAccount) -> dict[str, str]:
    return {
        "server_url": account.server_url,
        "token": account.token,
        "encoding_aes_key": account.encoding_aes_key or protocol.new_encoding_aes_key(),
        "encryption_mode": account.encryption_mode,
    }


Page = dict[str, Any]  # the account page's forms and what the last action showed


def _save_profile(request: HttpRequest, target: OfficialAccount, page: Page) -> None:
    page["profile"] = profile = AccountForm(request.POST)
    if profile.is_valid():
        account_services.account_update(account=target, **profile.cleaned_data)
        messages.success(request, "Saved.")


def _save_server(request: HttpRequest, target: OfficialAccount, page: Page) -> None:
    page["server"] = server = ServerForm(request.POST)
    if not server.is_valid():
        return
    verified = account_services.account_server_configure(
        account=target,
        server_url=server.cleaned_data["server_url"],
        token=server.cleaned_data["token"],
        encoding_aes_key=server.cleaned_data["encoding_aes_key"],
        mode=server.cleaned_data["encryption_mode"],
    )
    if verified is not None:
        page["verification"] = verified.shown()
    messages.success(request, "Server verified and saved." if verified else "Server turned off.")


def _reset_secret(request: HttpRequest, target: OfficialAccount, page: Page) -> HttpResponse:
    request.session[NEW_SECRET] = account_services.account_secret_reset(account=target)
    return redirect("console-account", account_id=target.pk)


def _add_rule(request: HttpRequest, target: OfficialAccount, page: Page) -> None:
    rule = AutoReplyForm(request.POST)
    if rule.is_valid():
        account_services.autoreply_add(account=target, **rule.cleaned_data)


def _delete_rule(request: HttpRequest, target: OfficialAccount, page: Page) -> None:
    try:
        rule_id = int(request.POST.get("rule", ""))
    except ValueError:
        return
    account_services.autoreply_delete(account=target, rule_id=rule_id)


def _save_menu(request: HttpRequest, target: OfficialAccount, page: Page) -> None:
    page["menu_form"] = form = MenuForm(request.POST)
    if not form.is_valid():
        return
    data = form.menu_data()
    if not data["button"]:
        menu_services.menu_delete(account=target)
        page["menu_saved"] = True
        messages.success(request, "Menu deleted.")
        return
    menu_services.menu_set(account=target, data=data)  # its rules; a ServiceError says why
    page["menu_saved"] = True
    messages.success(request, "Menu saved: followers see it in the chat now.")


def _delete_menu(request: HttpRequest, target: OfficialAccount, page: Page) -> None:
    menu_services.menu_delete(account=target)
    messages.success(request, "Menu deleted.")


ACTIONS: dict[str, Callable[[HttpRequest, OfficialAccount, Page], HttpResponse | None]] = {
    "profile": _save_profile,
    "server": _save_server,
    "secret": _reset_secret,
    "rule": _add_rule,
    "delete-rule": _delete_rule,
    "menu": _save_menu,
    "delete-menu": _delete_menu,
}


@login_required
@require_http_methods(["GET", "POST"])
def account(request: HttpRequest, account_id: int) -> HttpResponse:
    target = _account(request, account_id)
    page: Page = {
        "profile": AccountForm(
            initial={
                "name": target.name,
                "description": target.description,
                "greeting": target.greeting,
            }
        ),
        "server": ServerForm(initial=_server_initial(target)),
        "verification": None,
    }
    action = ACTIONS.get(request.POST.get("action", "")) if request.method == "POST" else None
    if action is not None:
        try:
            response = action(request, target, page)
        except ServiceError as error:
            messages.error(request, error.message)
            page["verification"] = error.details or None
        else:
            if response is not None:
                return response
    # The saved menu, or (after a refusal) what the developer typed, to correct it.
    if "menu_form" not in page or page.get("menu_saved"):
        target.refresh_from_db(fields=["menu"])
        page["menu_form"] = MenuForm(menu=target.menu)
    context = page | {
        "account": target,
        "new_secret": request.session.pop(NEW_SECRET, None),
        "rules": selectors.autoreply_rules(account=target),
        "rule_form": AutoReplyForm(),
        "followers": selectors.follower_count(account=target),
    }
    return render(request, "publicplatform/account.html", context)


@login_required
def deliveries(request: HttpRequest, account_id: int) -> HttpResponse:
    target = _account(request, account_id)
    log = selectors.delivery_log(account=target, limit=100)
    return render(request, "publicplatform/deliveries.html", {"account": target, "deliveries": log})


@login_required
@require_http_methods(["GET", "POST"])
def webhook_test(request: HttpRequest, account_id: int) -> HttpResponse:
    target = _account(request, account_id)
    form = WebhookTestForm(request.POST or None)
    outcome = None
    if request.method == "POST" and form.is_valid():
        try:
            outcome = webhooks.webhook_test(account=target, text=form.cleaned_data["text"])
        except ServiceError as error:
            messages.error(request, error.message)
    return render(
        request, "publicplatform/test.html", {"account": target, "form": form, "outcome": outcome}
    )
