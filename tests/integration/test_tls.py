"""resq over TLS (``rediss://``) against a redis-server with a certificate made here, signed by a CA made
here: a worker runs a job end to end with ``?ssl_ca_certs=``, a client certificate passes with
``ssl_certfile``/``ssl_keyfile``; without the CA (or for a host the certificate does not name) producers,
the worker and the command line stop at once with one line saying what to fix, instead of retrying.

Skipped, with the reason, where redis-server was built without TLS.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from resq import BrokerRefused, BrokerUnavailable, Resq
from resq.cli import main
from tests.conftest import RunWorker
from tests.helpers import read_log, wait_for
from tests.redis_server import RedisServer, TlsFiles

APP = "tests.integration.test_tls:app"
#: Where ``app`` points until a test binds it: nothing listens on port 1 (never the Redis on 6379).
UNBOUND = "redis://127.0.0.1:1/0"
TLS_HINT = "TLS certificate cannot be verified"

app = Resq(os.environ.get("RESQ_REDIS_URL") or UNBOUND)


@app.task(name="tls.add", retries=0)
def add(a: int, b: int) -> int:
    return a + b


# -- certificates -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certs:
    ca: Path
    server: Path
    server_key: Path
    client: Path
    client_key: Path


def _write(base: Path, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> tuple[Path, Path]:
    cert_path, key_path = base.with_suffix(".crt"), base.with_suffix(".key")
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    key_path.write_bytes(pem)
    key_path.chmod(0o600)
    return cert_path, key_path


def _builder(subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
    )


def make_certs(where: Path) -> Certs:
    """A self-signed CA, a server certificate for 127.0.0.1 only (not ``localhost``), a client certificate."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "resq test CA")])
    usage = x509.KeyUsage(True, False, False, False, False, True, True, False, False)  # sign certs and CRLs
    ca = (
        _builder(ca_name, ca_name, ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage, critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, _ = _write(where / "ca", ca_key, ca)
    made: list[Path] = []
    for name, san in (("server", x509.IPAddress(ipaddress.ip_address("127.0.0.1"))), ("client", x509.DNSName("app"))):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            _builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]), ca_name, key)
            .add_extension(x509.SubjectAlternativeName([san]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        made += _write(where / name, key, cert)
    return Certs(ca_path, *made)


def start_tls_server(certs: Certs, auth_clients: bool = False) -> RedisServer:
    """A redis-server serving TLS on ``tls_port`` (its plain port stays, for readiness); skips the test
    where redis-server has no TLS."""
    try:
        # Client certificates are asked for under TLS 1.2, where a refusal is an alert within the handshake;
        # under TLS 1.3 the client learns of it after its handshake, and a try may see the connection end
        # first (then resq retries, and the alert of a later try refuses: see docs/security.md).
        protocols = ("--tls-protocols", "TLSv1.2") if auth_clients else ()
        tls = TlsFiles(certs.server, certs.server_key, certs.ca, auth_clients=auth_clients)
        return RedisServer(tls=tls, extra_args=protocols)
    except RuntimeError as exc:  # a build without TLS does not know the tls-* directives
        said = str(exc)
        if "Bad directive" in said and ">>> 'tls-" in said:
            directive = next(line for line in said.splitlines() if ">>> 'tls-" in line)
            pytest.skip(f"redis-server was built without TLS (BUILD_TLS=no): it refuses {directive[4:].strip()}")
        raise


@pytest.fixture
def certs(tmp_path: Path) -> Certs:
    return make_certs(tmp_path)


@pytest.fixture
def tls_server(certs: Certs) -> Iterator[RedisServer]:
    server = start_tls_server(certs)
    try:
        yield server
    finally:
        app.reconfigure(url=UNBOUND, broker_retry_s=5.0)
        server.cleanup()


def cli(url: str, *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env={"RESQ_REDIS_URL": url, "RESQ_APP": None}, catch_exceptions=False)


def assert_refused(message: str) -> None:
    """A refusal, not an outage given up on (that says "is unavailable ... gave up after retrying")."""
    assert "refused resq" in message and TLS_HINT in message and "ssl_ca_certs" in message, message


# -- tests --------------------------------------------------------------------------------------------


def test_a_worker_runs_jobs_over_tls_with_the_ca_in_the_url(
    tls_server: RedisServer, certs: Certs, run_worker: RunWorker
) -> None:
    url = f"{tls_server.tls_url()}?ssl_ca_certs={certs.ca}&ssl_cert_reqs=required"
    app.reconfigure(url=url)
    worker = run_worker(APP, "--no-banner", url=url)
    jobs = [add.delay(2, 3), add.delay(40, 2)]
    assert [job.result(timeout=15) for job in jobs] == [5, 42], read_log(worker)
    # the counters travel after the results (a worker adds a batch's counters at its end): read them once added
    stats = wait_for(lambda: (r := cli(url, "stats", "--json")).exit_code == 0 and '"processed": 2' in r.stdout and r)
    assert stats.exit_code == 0 and '"processed": 2' in stats.stdout, stats.output
    with pytest.raises(BrokerUnavailable):  # the TLS port speaks TLS only: the jobs went over TLS
        Resq(f"redis://127.0.0.1:{tls_server.tls_port}/0", broker_retry_s=0.1).enqueue_many([(add, (1, 1))])


def test_a_client_certificate_in_the_url_passes_a_server_that_asks_for_one(certs: Certs) -> None:
    server = start_tls_server(certs, auth_clients=True)
    try:
        files = f"ssl_ca_certs={certs.ca}&ssl_certfile={certs.client}&ssl_keyfile={certs.client_key}"
        mutual = Resq(f"{server.tls_url()}?{files}")
        job = mutual.enqueue_many([(add, (1, 2))])[0]
        assert job.status() == "queued"
        assert '"waiting": 1' in cli(f"{server.tls_url()}?{files}", "queues", "--json").stdout
        mutual.broker.close()
    finally:
        server.cleanup()


def test_without_the_ca_producers_and_the_cli_are_refused_at_once(tls_server: RedisServer, certs: Certs) -> None:
    for url in (
        tls_server.tls_url(),  # the system's CAs do not know the test CA
        f"{tls_server.tls_url(host='localhost')}?ssl_ca_certs={certs.ca}",  # a host the certificate does not name
    ):
        app.reconfigure(url=url, broker_retry_s=30)  # a refusal is not retried for broker_retry_s
        with pytest.raises(BrokerRefused) as refused:  # an outage would be BrokerUnavailable, after 30 s
            add.delay(1, 2)
        assert_refused(str(refused.value))
        done = cli(url, "stats")
        assert done.exit_code == 2, done.output
        assert_refused(done.output)
        assert len(done.output.strip().splitlines()) == 1 and "Traceback" not in done.output, done.output


def test_a_worker_without_the_ca_exits_at_once_with_one_line(tls_server: RedisServer, run_worker: RunWorker) -> None:
    worker = run_worker(APP, "--no-banner", url=tls_server.tls_url())
    code = worker.wait(timeout=20)  # no retrying for ever: it exits by itself
    log = read_log(worker)
    assert code == 2, log
    errors = [line for line in log.splitlines() if "refused resq" in line]
    assert len(errors) == 1, log
    assert TLS_HINT in errors[0] and "ssl_ca_certs" in errors[0], log
    assert "Traceback" not in log and "redis_unavailable" not in log, log


def test_a_missing_client_certificate_is_refused_at_once(certs: Certs) -> None:
    server = start_tls_server(certs, auth_clients=True)
    try:
        producer = Resq(f"{server.tls_url()}?ssl_ca_certs={certs.ca}", broker_retry_s=30)
        with pytest.raises(BrokerRefused, match="certificate"):  # an outage: BrokerUnavailable, after 30 s
            producer.enqueue_many([("tls.add", (1, 2))])
        producer.broker.close()
    finally:
        server.cleanup()
