"""`grader lms add|list|revoke`: the LMS integrations whose signed webhooks the service accepts (docs/lms.md)."""

from __future__ import annotations

import click

# `grader lms add --lti` options that the platform's administrator provides; --audience is optional.
LTI_REQUIRED = ("issuer", "client_id", "token_url", "jwks_url", "deployment_id")


@click.group()
def lms() -> None:
    """LMS integrations: signed webhooks in, signed reports and LTI 1.3 scores out."""


@lms.command("add")
@click.argument("name")
@click.option("--full-report", is_flag=True,
              help="Callbacks carry the full report, hidden checks' output included (default: the student view).")
@click.option("--lti", is_flag=True, help="An LTI 1.3 platform: scores also go to the gradebook's line items (AGS).")
@click.option("--issuer", help="LTI: the platform's issuer.")
@click.option("--client-id", help="LTI: the tool's client id on the platform.")
@click.option("--token-url", help="LTI: the platform's OAuth 2 token endpoint.")
@click.option("--jwks-url", help="LTI: the platform's public key set.")
@click.option("--deployment-id", help="LTI: the tool's deployment id on the platform.")
@click.option("--audience", help="LTI: `aud` of the tool's client assertion, if not the token URL.")
def add(name: str, full_report: bool, lti: bool, **registration: str | None) -> None:
    """Add the integration NAME (the LMS sends it as X-Grader-Integration); its secret is printed once, alone on
    the last line."""
    from pydantic import ValidationError

    from grader.lms import LtiPlatform, new_secret

    given = {key: value for key, value in registration.items() if value is not None}
    platform = None
    if given and not lti:
        raise click.UsageError(f"{_flags(given)}: only for an LTI platform (add --lti)")
    if lti:
        if missing := [key for key in LTI_REQUIRED if key not in given]:
            raise click.UsageError(f"--lti needs {_flags(missing)}")
        try:
            platform = LtiPlatform(**given)
        except ValidationError as exc:
            raise click.UsageError("; ".join(f"{_flag(e['loc'][0])}: {e['msg']}" for e in exc.errors())) from None
    secret = new_secret()
    try:
        _lms_store().add_integration(name, secret, full_report=full_report, lti=platform)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"created integration {name}" + (" (LTI 1.3)" if platform else ""))
    if platform:
        click.echo("register the grader's key set with the platform: https://<this service>/.well-known/jwks.json")
    click.echo("its webhook secret, for the LMS's configuration, is not shown again:")
    click.echo(secret)


@lms.command("list")
def list_integrations() -> None:
    """List the integrations (never their secrets)."""
    for found in _lms_store().integrations():
        state = f"revoked {found.revoked_at:%Y-%m-%d}" if found.revoked_at else "active"
        kind = f"lti {found.lti['issuer']}" if found.lti else "webhook"
        report = "full report" if found.full_report else "student view"
        click.echo(f"{found.name:<20}  {state:<18}  {report:<12}  {kind}")


@lms.command("revoke")
@click.argument("name")
def revoke(name: str) -> None:
    """Refuse NAME's webhooks from now on (what it sent before is still graded and reported back)."""
    if not _lms_store().revoke_integration(name):
        raise click.ClickException(f"no active integration {name!r}")
    click.echo(f"revoked integration {name}")


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def _flags(keys) -> str:
    return ", ".join(_flag(key) for key in keys)


def _lms_store():
    from grader.app import settings
    from grader.lms import SecretBox
    from grader.lms_store import LmsStore
    from grader.store import Store

    config = settings.from_env()
    return LmsStore(Store(config["DATABASE_URL"]), SecretBox(config["DATA_DIR"]))
