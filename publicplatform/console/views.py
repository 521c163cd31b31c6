"""Developer console pages: thin views over publicplatform services and selectors.
Login is the Django session of the site (the same accounts as the chat); a
developer sees only the accounts they own."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from publicplatform import protocol, selectors
from publicplatform.console.forms import AccountForm, AutoReplyForm, ServerForm, WebhookTestForm
from publicplatform.exceptions import AccountNotFound
from publicplatform.models import AutoReply, OfficialAccount
from publicplatform.services import accounts as account_services
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


@login_required
@require_http_methods(["GET", "POST"])
def account(request: HttpRequest, account_id: int) -> HttpResponse:
    target = _account(request, account_id)
    profile = AccountForm(
        initial={
            "name": target.name,
            "description": target.description,
            "greeting": target.greeting,
        }
    )
    server = ServerForm(initial=_server_initial(target))
    verification: object = None
    action = request.POST.get("action")
    try:
        if action == "profile":
            profile = AccountForm(request.POST)
            if profile.is_valid():
                account_services.account_update(account=target, **profile.cleaned_data)
                messages.success(request, "Saved.")
        elif action == "server":
            server = ServerForm(request.POST)
            if server.is_valid():
                verified = account_services.account_server_configure(
                    account=target,
                    server_url=server.cleaned_data["server_url"],
                    token=server.cleaned_data["token"],
                    encoding_aes_key=server.cleaned_data["encoding_aes_key"],
                    mode=server.cleaned_data["encryption_mode"],
                )
                if verified is not None:
                    verification = {
                        "status_code": verified.status_code,
                        "body": verified.body_excerpt,
                        "signed_string": verified.signed_string,
                        "signature": verified.signature,
                    }
                messages.success(
                    request, "Server verified and saved." if verified else "Server turned off."
                )
        elif action == "secret":
            request.session[NEW_SECRET] = account_services.account_secret_reset(account=target)
            return redirect("console-account", account_id=target.pk)
        elif action == "rule":
            rule = AutoReplyForm(request.POST)
            if rule.is_valid():
                account_services.autoreply_add(account=target, **rule.cleaned_data)
        elif action == "delete-rule":
            account_services.autoreply_delete(
                account=target, rule_id=int(request.POST.get("rule", 0))
            )
    except ServiceError as error:
        messages.error(request, error.message)
        verification = error.details or None
    context = {
        "account": target,
        "profile": profile,
        "server": server,
        "verification": verification,
        "new_secret": request.session.pop(NEW_SECRET, None),
        "rules": AutoReply.objects.filter(account=target),
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
        if not target.server_url:
            messages.error(request, "Configure and verify a server first.")
        else:
            outcome = webhooks.webhook_test(account=target, text=form.cleaned_data["text"])
    return render(
        request, "publicplatform/test.html", {"account": target, "form": form, "outcome": outcome}
    )
