"""Encrypted arguments and results (issue 11, "Security"): ``@app.task(encrypt=True)`` and the app-wide
``encrypt`` setting seal a job's arguments and result at rest (AES-256-GCM, keys named by id), keys
rotate (the first seals, every one opens), and what a process cannot open is dead or shown sealed, never
a crash. Real Redis; one real ``resq worker``, the rest through ``resq.testing.drain`` (the worker's
consumer and executor, in this process).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import replace
from types import ModuleType
from typing import Any

import msgpack
import pytest
import redis
from click.testing import CliRunner

from resq import ConfigError, DecryptError, Resq, generate_key
from resq.broker.keys import Keys
from resq.cli import main
from resq.codec import decode_envelope, decode_event, encode_envelope
from resq.job import new_job_id
from resq.ops import Inspector
from resq.sealing import NEEDS_CRYPTO, key_id_of
from resq.testing import drain
from tests.apps import sealed as sealed_module
from tests.conftest import RunWorker
from tests.helpers import burst, read_log, stored_envelope, wait_for

K1, K2 = generate_key(), generate_key()
CARD = "4111-1111-1111-1111"
K = Keys("resq")


@pytest.fixture
def sealed(redis_url: str) -> Iterator[ModuleType]:
    """``tests.apps.sealed`` on this test's database, holding the key ``k1`` only."""
    sealed_module.bind(redis_url, f"k1:{K1}")
    yield sealed_module
    sealed_module.app.broker.close()


def _record(client: redis.Redis, job_id: str) -> bytes:
    """Everything Redis holds of a job, its stream entries included, as one blob of bytes."""
    fields = client.hgetall(K.job("default", job_id))
    entries = client.xrange(K.queue("default"))
    return b"|".join([*fields.values(), *(v for _, entry in entries for v in entry.values())])


def _result_token(client: redis.Redis, job_id: str) -> bytes:
    value = msgpack.unpackb(client.hget(K.job("default", job_id), "result"))
    assert isinstance(value, msgpack.ExtType) and value.code == 5, value
    return bytes(value.data)


def test_an_encrypted_job_runs_in_a_worker_and_is_never_in_clear_at_rest(
    sealed: ModuleType, redis_client: redis.Redis, run_worker: RunWorker
) -> None:
    sealed.bind(sealed.app.settings.url, f"k1:{K1},k2:{K2}")  # mid-rotation: seals with k1, opens k2 too
    subscription = sealed.app.broker.admin.events()
    assert subscription.message() is None
    wait_for(lambda: redis_client.pubsub_numsub(K.events)[0][1] == 1, timeout=5, message="subscribed")
    job = sealed.charge.delay(CARD, amount=42)
    envelope = decode_envelope(stored_envelope(redis_client, "default", job.id))
    assert envelope.sealed is not None and key_id_of(envelope.sealed) == "k1"
    assert (envelope.task, envelope.args, envelope.kwargs) == ("sealed.charge", [], {})  # routing stays in clear
    assert CARD.encode() not in _record(redis_client, job.id)

    worker = burst(
        run_worker, "tests.apps.sealed:app", "--log-level", "debug", env={"RESQ_ENCRYPTION_KEYS": f"k2:{K2},k1:{K1}"}
    )

    assert job.result(timeout=5) == f"charged 42 to {CARD}"
    assert CARD.encode() not in _record(redis_client, job.id)  # the result is sealed too
    assert key_id_of(_result_token(redis_client, job.id)) == "k2"  # by the worker's current key
    assert job.info()["args"] == [CARD] and job.info()["kwargs"] == {"amount": 42}
    assert CARD not in read_log(worker) and job.id in read_log(worker)
    events = []
    while (raw := subscription.message(0.5)) is not None:
        events.append(decode_event(raw))
    subscription.close()
    assert [e["event"] for e in events] == ["enqueued", "started", "succeeded"]
    assert CARD not in repr(events)


def test_a_job_under_a_key_the_worker_lacks_is_dead_until_the_key_is_added(sealed: ModuleType, cli: Any) -> None:
    job = sealed.charge.delay(CARD, amount=7)  # sealed with k1
    sealed.bind(sealed.app.settings.url, [("k2", K2)])  # a worker that holds k2 only

    assert drain(sealed.app) == 1
    assert job.status() == "dead"
    error = job.info()["error"]
    assert error["type"] == "DecryptError"
    assert error["message"] == "sealed with key 'k1', which this worker does not hold (it holds: k2)"
    assert sealed.app.broker.stats.counters([])[0]["failed"] == 0  # no attempt ran: not a failure

    shown = cli("dead", "show", job.id)  # the CLI holds no key
    assert shown.exit_code == 0, shown.output
    assert "<encrypted with key k1>" in shown.output and "DecryptError" in shown.output
    assert CARD not in shown.output

    assert cli("dead", "retry", job.id).exit_code == 0
    sealed.bind(sealed.app.settings.url, {"k2": K2, "k1": K1})  # the older key added
    assert drain(sealed.app) == 1
    assert job.result(timeout=1) == f"charged 7 to {CARD}"


def test_an_altered_or_moved_seal_is_dead_and_never_runs(sealed: ModuleType, redis_client: redis.Redis) -> None:
    good = sealed.charge.delay(CARD, amount=1)
    raw = stored_envelope(redis_client, "default", good.id)
    envelope = decode_envelope(raw)
    assert envelope.sealed is not None
    altered_id, moved_id = new_job_id(), new_job_id()
    flipped = envelope.sealed[:-1] + bytes([envelope.sealed[-1] ^ 1])
    altered = encode_envelope(replace(envelope, id=altered_id, sealed=flipped), 1 << 20)
    queues = sealed.app.broker.queues
    queues.enqueue("default", altered_id, "sealed.charge", altered, 0)
    queues.enqueue("default", moved_id, "sealed.charge", raw, 0)  # good's seal under another job's id

    assert drain(sealed.app) == 3
    assert good.result(timeout=1) == f"charged 1 to {CARD}"
    for job_id in (altered_id, moved_id):
        job = sealed.app.job(job_id)
        assert job.status() == "dead"
        error = job.info()["error"]
        assert error["type"] == "DecryptError"
        assert error["message"].startswith("sealed payload failed authentication under key 'k1'")
    assert sealed.app.broker.stats.counters([])[0]["processed"] == 1  # only the intact job ran


def test_app_wide_encrypt_seals_every_task_but_one_that_opts_out(redis_url: str, redis_client: redis.Redis) -> None:
    app = Resq(redis_url, encrypt=True, encryption_keys={"k1": K1})

    @app.task(name="wide.note")
    def note(text: str) -> str:
        return text.upper()

    @app.task(name="wide.public", encrypt=False)
    def public(text: str) -> str:
        return text.upper()

    secret, shown = note.delay("secret words"), public.delay("public words")
    assert b"secret words" not in stored_envelope(redis_client, "default", secret.id)
    assert b"public words" in stored_envelope(redis_client, "default", shown.id)
    assert drain(app) == 2
    assert secret.result(timeout=1) == "SECRET WORDS" and shown.result(timeout=1) == "PUBLIC WORDS"
    assert key_id_of(_result_token(redis_client, secret.id)) == "k1"
    assert redis_client.hget(K.job("default", shown.id), "result") == msgpack.packb("PUBLIC WORDS")

    other = Resq(redis_url)  # a producer without the key cannot read the sealed result
    with pytest.raises(DecryptError, match="sealed with key 'k1', which this process does not hold"):
        other.job(secret.id).result(timeout=1)
    app.broker.close()
    other.broker.close()


def test_the_inspector_shows_what_it_cannot_open_as_encrypted_and_redacts_what_it_can(
    sealed: ModuleType, redis_url: str
) -> None:
    job = sealed.login.delay("ada", "s3cret")
    assert drain(sealed.app) == 1
    keyless = Resq(redis_url)

    hidden = Inspector(keyless).job_info(job.id)
    assert hidden["args"] == hidden["kwargs"] == hidden["result"] == "<encrypted with key k1>"
    assert hidden["encrypted"] == {"args": "k1", "result": "k1", "unreadable": ["args", "result"]}
    opened = Inspector(sealed.app).job_info(job.id)
    assert opened["args"] == ["ada", "***"] and opened["result"] == "welcome ada"  # opened, then redacted
    keyless.broker.close()


def test_bad_or_missing_keys_are_clear_one_line_errors(
    redis_url: str, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    short = K1[:20]
    with pytest.raises(ConfigError, match="encryption key 'k1' is 15 bytes: AES-256-GCM takes 32") as caught:
        Resq(redis_url, encryption_keys=f"k1:{short}")
    assert "\n" not in str(caught.value) and short not in str(caught.value) and "generate_key" in str(caught.value)
    with pytest.raises(ConfigError, match="has no id"):
        Resq(redis_url, encryption_keys=K1)  # a key without its id: never echoed
    with pytest.raises(ConfigError, match="names a key id twice"):
        Resq(redis_url, encryption_keys=[("k1", K1), ("k1", K2)])

    result = CliRunner().invoke(
        main, ["job", "0123"], env={"RESQ_REDIS_URL": redis_url, "RESQ_APP": None, "RESQ_ENCRYPTION_KEYS": "k1:@@"}
    )
    assert result.exit_code == 2, result.output
    assert result.output.strip().count("\n") == 0 and "encryption key 'k1' is not urlsafe base64" in result.output

    keyless = Resq(redis_url)

    @keyless.task(name="keyless.pay", encrypt=True)
    def pay(card: str) -> None: ...

    with pytest.raises(ConfigError, match=r"task 'keyless\.pay' is encrypted but this process holds no encryption key"):
        pay.delay(CARD)
    assert redis_client.dbsize() == 0  # nothing was enqueued

    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.ciphers.aead", None)  # as if not installed
    with pytest.raises(ConfigError) as no_crypto:
        Resq(redis_url, encrypt=True)
    assert str(no_crypto.value) == NEEDS_CRYPTO == "encrypt=True needs the crypto extra: pip install 'resq[crypto]'"
    with pytest.raises(ConfigError, match="needs the crypto extra"):
        keyless.task(encrypt=True)(lambda: None)


def test_settings_never_show_the_keys(redis_url: str) -> None:
    app = Resq(redis_url, encryption_keys=f"k1:{K1}")
    assert app.settings.encryption_keys[0][0] == "k1" and len(app.settings.encryption_keys[0][1]) == 32
    assert K1 not in repr(app.settings) and repr(app.settings.encryption_keys[0][1]) not in repr(app.settings)
