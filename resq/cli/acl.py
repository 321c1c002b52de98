"""``resq acl``: the ``ACL SETUSER`` line of a least-privilege Redis user for one namespace.

The rule itself is :func:`resq.broker.acl.acl_rule` (the namespace's keys and channels, and only the
commands resq sends); this command prints it, ready to paste into ``redis-cli`` or an ACL file. It reads
no Redis.
"""

from __future__ import annotations

import secrets

import click

from resq.broker.acl import acl_rule, acl_setuser, parse_version
from resq.cli.common import BadInput, guard
from resq.resque import validate_namespace
from resq.settings import resolve_namespace

__all__ = ["acl"]

ACL_EPILOG = """\b
Examples:
  resq acl                                   # user "resq", namespace resq, a new random password
  resq acl --user shop-app --namespace shop --password "$PASSWORD"
  resq acl --redis-version 7.0 | redis-cli -u redis://admin:ADMIN_PASSWORD@db-1:6379
  resq acl --acl-file >> /etc/redis/users.acl
"""


@click.command(epilog=ACL_EPILOG, short_help="Print the ACL line of a least-privilege Redis user.")
@click.option(
    "--namespace", envvar="RESQ_NAMESPACE", default=None, help="Key namespace (default resq); env RESQ_NAMESPACE."
)
@click.option("--user", default="resq", show_default=True, help="The ACL user name.")
@click.option("--password", default=None, help="The user's password (default: a new random one).")
@click.option(
    "--redis-version",
    default=None,
    metavar="MAJOR.MINOR",
    help="The Redis the user is for, when older than 7.2 (it lacks CLIENT SETINFO).",
)
@click.option("--acl-file", is_flag=True, help="Print a line for an ACL file (user …) instead of ACL SETUSER.")
@click.option(
    "--resque",
    "resque_namespace",
    flag_value="resque",
    default=None,
    help="Also the Resque family's keys (resque:*), for app.resque, --resque-queues and scheduler --resque.",
)
@click.option(
    "--resque-namespace",
    "resque_namespace",
    default=None,
    help="As --resque, for another Resque namespace (e.g. resque:App).",
)
def acl(
    namespace: str | None,
    user: str,
    password: str | None,
    redis_version: str | None,
    acl_file: bool,
    resque_namespace: str | None,
) -> None:
    """Print the ACL SETUSER line of a Redis user that may touch only NAMESPACE's keys ({ns}:* and
    {ns:<queue>}:*) and channels ({ns}:*), and run only the commands resq sends; then connect with
    redis://USER:PASSWORD@host:port/db. The url to use is printed on stderr. Reads no Redis."""
    ns = resolve_namespace(namespace)
    secret = password if password is not None else secrets.token_urlsafe(24)
    try:
        version = None if redis_version is None else parse_version(redis_version)
        resque = None if resque_namespace is None else guard(lambda: validate_namespace(resque_namespace))
        line = guard(lambda: acl_setuser(user, secret, ns, version, resque))  # a bad namespace: exit 2
    except ValueError as exc:  # a bad version, user name or password
        raise BadInput(str(exc)) from exc
    click.echo(f"user {user} on >{secret} {acl_rule(ns, version, resque)}" if acl_file else line)
    click.echo(f"# then: RESQ_REDIS_URL=redis://{user}:{'***' if password else secret}@HOST:6379/0", err=True)
