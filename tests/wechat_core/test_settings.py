"""One settings module, driven by the environment: production passes `check --deploy`,
the embedded defaults need nothing installed, and a missing secret fails clearly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.processes import ROOT

PRODUCTION_ENV = {
    "SECRET_KEY": "x7!Qm2#vR9$kLp4@Zt8^Wn3&Yb6*Hc1(Jd5)Fg0-Se7+Ua2=Xi9",
    "DEBUG": "false",
    "ALLOWED_HOSTS": "chat.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://chat.example.com",
    "DATABASE_URL": "postgres://wechat@db.internal:5432/wechat",
    "REDIS_URL": "redis://cache.internal:6379/0",
    "SECURE_SSL_REDIRECT": "true",
    "SESSION_COOKIE_SECURE": "true",
    "CSRF_COOKIE_SECURE": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
    "TRUST_X_FORWARDED_PROTO": "true",
}
SETTINGS_NAMES = [
    "DEBUG", "EMBEDDED", "CELERY_TASK_ALWAYS_EAGER", "CELERY_BROKER_URL", "DATACENTER", "CAMPUS",
    "ASGI_SERVER", "FRIEND_LIMIT", "TICKET_TTL_SECONDS",
]  # fmt: skip


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if key in ("PATH", "HOME", "LANG")}
    clean["DOTENV_FILE"] = ""  # only what the test passes, never a developer's .env
    clean.update(env)
    clean["DJANGO_SETTINGS_MODULE"] = "wechat_core.settings"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def loaded_settings(env: dict[str, str]) -> dict[str, object]:
    code = (
        "import django, json; django.setup(); from django.conf import settings as s; "
        f"print(json.dumps({{n: getattr(s, n) for n in {SETTINGS_NAMES!r}}} | "
        "{'cache': s.CACHES['default']['BACKEND'], 'layer': s.CHANNEL_LAYERS['default']['BACKEND'],"
        " 'db': s.DATABASES['default']['ENGINE']}))"
    )
    result = run_python(code, env)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_check_deploy__with_production_environment__passes_without_warnings() -> None:
    result = run_python(
        "import sys; from django.core.management import execute_from_command_line as run; "
        "run(['manage.py', 'check', '--deploy', '--fail-level', 'WARNING'])",
        PRODUCTION_ENV,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy__with_embedded_defaults__warns_about_what_production_must_set() -> None:
    result = run_python(
        "from django.core.management import execute_from_command_line as run; "
        "run(['manage.py', 'check', '--deploy', '--fail-level', 'WARNING'])",
        {"SECRET_KEY": PRODUCTION_ENV["SECRET_KEY"]},
    )
    assert result.returncode != 0
    assert "SECURE_HSTS_SECONDS" in result.stderr + result.stdout


def test_settings__embedded_defaults__need_no_database_server_nor_redis() -> None:
    loaded = loaded_settings({"SECRET_KEY": "embedded"})
    assert loaded["db"] == "django.db.backends.sqlite3"
    assert loaded["cache"] == "django.core.cache.backends.locmem.LocMemCache"
    assert loaded["layer"] == "channels.layers.InMemoryChannelLayer"
    assert loaded["CELERY_TASK_ALWAYS_EAGER"] is True
    assert loaded["DEBUG"] is False
    assert (loaded["DATACENTER"], loaded["CAMPUS"], loaded["ASGI_SERVER"]) == (
        "sh",
        "sh-a",
        "uvicorn",
    )


def test_settings__production_environment__switches_every_backend() -> None:
    loaded = loaded_settings(PRODUCTION_ENV | {"DATACENTER": "hk", "FRIEND_LIMIT": "300"})
    assert loaded["db"] == "wechat_core.postgresql"  # Django's, with a failover-proof pool
    assert loaded["cache"] == "django.core.cache.backends.redis.RedisCache"
    assert loaded["layer"] == "channels_redis.pubsub.RedisPubSubChannelLayer"
    assert loaded["CELERY_TASK_ALWAYS_EAGER"] is False
    assert loaded["CELERY_BROKER_URL"] == "redis://cache.internal:6379/0"
    assert (loaded["DATACENTER"], loaded["FRIEND_LIMIT"]) == ("hk", 300)


def test_settings__without_secret_key__fail_and_say_which_variable() -> None:
    result = run_python("import django; django.setup()", {})
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr
    assert "ImproperlyConfigured" in result.stderr


@pytest.mark.parametrize(
    "key",
    [
        "x",
        "short-but-not-x-0123456789",
        "x" * 64,  # long, one character
        "django-insecure-" + "k3y-generated-by-startproject-0123456789abcdef",
    ],
)
def test_settings__production_layout_with_a_weak_secret_key__fails_and_says_how_to_fix(
    key: str,
) -> None:
    # when: the production layout starts with a key anyone could guess
    result = run_python("import django; django.setup()", PRODUCTION_ENV | {"SECRET_KEY": key})
    # then: it refuses to start, naming the variable and how to make a real one
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY is too weak" in result.stderr
    assert "secrets.token_urlsafe(50)" in result.stderr


def test_settings__embedded_mode_with_a_short_secret_key__starts() -> None:
    # the embedded demo runs on one machine; `make run` writes a real key anyway
    assert loaded_settings({"SECRET_KEY": "x"})["EMBEDDED"] is True


def test_settings__dotenv_file__fills_gaps_but_never_overrides_the_environment(
    tmp_path: Path,
) -> None:
    dotenv = tmp_path / "local.env"
    dotenv.write_text("SECRET_KEY=from-the-file\nDATACENTER=hk\nCAMPUS=hk-a\n")
    loaded = loaded_settings({"DOTENV_FILE": str(dotenv), "DATACENTER": "ca"})
    assert (loaded["DATACENTER"], loaded["CAMPUS"]) == ("ca", "hk-a")


def test_settings__invalid_value__fails_and_names_it() -> None:
    result = run_python(
        "import django; django.setup()", {"SECRET_KEY": "k", "ASGI_SERVER": "gunicorn"}
    )
    assert result.returncode != 0
    assert "ASGI_SERVER" in result.stderr


def test_readme__documents_every_environment_variable_settings_read() -> None:
    import re

    settings_source = (ROOT / "wechat_core" / "settings.py").read_text()
    readme = (ROOT / "README.md").read_text()
    names = set(
        re.findall(
            r'env_(?:str|bool|int|float|list|choice|db|networks)\(\s*"([A-Z_]+)"', settings_source
        )
    )
    assert len(names) > 40
    missing = sorted(name for name in names if f"`{name}`" not in readme)
    assert missing == []


def test_settings__guard_limit_within_reach_of_heartbeats__refused() -> None:
    """An idle client heartbeats at the interval the server gives, each time the
    same frame answered the same way: a guard limit below that would block it."""
    result = run_python(
        "import django; django.setup()",
        {"SECRET_KEY": "k", "MESSAGING_HEARTBEAT_SECONDS": "2",
         "MONITORING_GUARD_REPEATS_PER_MINUTE": "60"},
    )  # fmt: skip
    assert result.returncode != 0
    assert "MONITORING_GUARD_REPEATS_PER_MINUTE" in result.stderr


def test_deploy_doc__proxy_body_limit__admits_the_largest_upload() -> None:
    import re

    from django.conf import settings

    # given: the proxy configuration docs/deploy.md recommends
    deploy = (ROOT / "docs" / "deploy.md").read_text()
    limits = re.findall(r"client_max_body_size (\d+)m", deploy)
    # then: a file as large as the settings allow gets through the proxy
    assert limits, "docs/deploy.md names no client_max_body_size"
    assert all(int(limit) * 1024 * 1024 >= settings.UPLOAD_MAX_BYTES for limit in limits)
