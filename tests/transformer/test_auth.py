"""The tokens file, the constant-time lookup and the ASGI layer, without servers."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
from pathlib import Path

import pytest

from transformer import auth
from transformer.auth import AuthConfigError, BearerAuth, Tokens, bearer, parse_tokens

pytestmark = pytest.mark.unit

A = "a" * 16
B = "b" * 32


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_parse_scopes_comments_and_blank_lines(tmp_path):
    f = write(tmp_path / "t", f"# comment\n\ninfer:{A}\n  infer, write:{B}  \n")
    entries = parse_tokens(f)
    assert [scopes for _, scopes in entries] == [{"infer"}, {"infer", "write"}]
    assert all(A.encode() not in d and len(d) == 32 for d, _ in entries)  # digests only


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (f"infer:{A}\n{B}\n", "t:2: expected 'scope:token'"),
        (f"admin:{A}\n", "t:1: unknown scope ['admin']"),
        ("infer:short\n", "t:1: token must be 16-512 printable characters"),
        (f"infer:{A} {A}\n", "t:1: token must be"),
        (f"infer:{A}\nwrite:{A}\n", "t:2: the same token appears twice"),
        ("# nothing\n", "no tokens"),
    ],
)
def test_bad_files_name_the_file_and_line_not_the_token(tmp_path, text, error):
    f = write(tmp_path / "t", text)
    with pytest.raises(AuthConfigError) as e:
        parse_tokens(f)
    assert error in str(e.value) and str(f) in str(e.value)
    assert A not in str(e.value) and B not in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(AuthConfigError, match="cannot read tokens file"):
        Tokens(tmp_path / "absent")


def test_scopes_of_known_and_unknown_tokens(tmp_path):
    tokens = Tokens(write(tmp_path / "t", f"infer:{A}\nwrite:{B}\n"))
    assert tokens.scopes(A.encode()) == {"infer"}
    assert tokens.scopes(B.encode()) == {"write"}
    assert tokens.scopes(A[:-1].encode()) == frozenset()
    assert tokens.scopes(b"") == frozenset()


def test_every_digest_is_compared_even_after_a_match(tmp_path, monkeypatch):
    """No early exit: the lookup costs the same whichever token (if any) matches."""
    tokens = Tokens(write(tmp_path / "t", "".join(f"infer:{c * 20}\n" for c in "abcdef")))
    calls = []
    real = hmac.compare_digest

    def counting(x, y):
        calls.append(1)
        return real(x, y)

    monkeypatch.setattr(auth.hmac, "compare_digest", counting)
    for presented in ("a" * 20, "f" * 20, "z" * 20):
        calls.clear()
        tokens.scopes(presented.encode())
        assert len(calls) == 6


def test_a_valid_token_is_remembered_until_the_file_changes(tmp_path, monkeypatch):
    """The second request with a token skips the hash; an unknown token is hashed every time
    and never remembered; a reload forgets every remembered token (a removed one is refused)."""
    f = write(tmp_path / "t", f"infer:{A}\n")
    tokens = Tokens(f)
    hashed = []
    real = auth._digest
    monkeypatch.setattr(auth, "_digest", lambda t: hashed.append(t) or real(t))
    for _ in range(3):
        assert tokens.scopes(A.encode()) == {"infer"}
        assert tokens.scopes(B.encode()) == frozenset()
    assert hashed == [A.encode(), B.encode(), B.encode(), B.encode()]
    write(f, f"write:{B}\n")
    os.utime(f, ns=(1, 1))
    assert tokens.reload_if_changed()
    assert tokens.scopes(A.encode()) == frozenset()  # rotated out: refused at once
    assert tokens.scopes(B.encode()) == {"write"}


def test_remembered_tokens_are_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(auth, "MAX_VERIFIED", 2)
    tokens = Tokens(write(tmp_path / "t", "".join(f"infer:{c * 20}\n" for c in "abc")))
    for c in "abc":
        assert tokens.scopes((c * 20).encode()) == {"infer"}
    assert len(tokens._current[1]) == 2


def test_reload_when_the_file_changes_and_keep_tokens_when_it_turns_bad(tmp_path):
    f = write(tmp_path / "t", f"infer:{A}\n")
    tokens = Tokens(f)
    assert not tokens.reload_if_changed()  # unchanged: no read
    write(f, f"infer:{B}\n")
    os.utime(f, ns=(1, 1))  # same size, different mtime
    assert tokens.reload_if_changed()
    assert tokens.scopes(B.encode()) and not tokens.scopes(A.encode())
    write(f, "infer:short\n")
    assert not tokens.reload_if_changed()
    assert tokens.scopes(B.encode())
    f.unlink()
    assert not tokens.reload_if_changed()
    assert tokens.scopes(B.encode())


def test_reload_follows_a_kubernetes_symlink_swap(tmp_path):
    for name, token in (("v1", A), ("v2", B)):
        (tmp_path / name).mkdir()
        write(tmp_path / name / "tokens", f"infer:{token}\n")
    (tmp_path / "..data").symlink_to("v1")
    (tmp_path / "tokens").symlink_to("..data/tokens")
    tokens = Tokens(tmp_path / "tokens")
    assert tokens.scopes(A.encode())
    (tmp_path / "..tmp").symlink_to("v2")
    os.replace(tmp_path / "..tmp", tmp_path / "..data")  # atomic, as the kubelet does
    assert tokens.reload_if_changed()
    assert tokens.scopes(B.encode()) and not tokens.scopes(A.encode())


@pytest.mark.parametrize(
    ("value", "token"),
    [
        (b"Bearer abc", b"abc"),
        (b"bearer   abc ", b"abc"),
        ("Bearer abc", b"abc"),
        (b"Basic abc", None),
        (b"Bearer ", None),
        (b"abc", None),
        (None, None),
    ],
)
def test_bearer(value, token):
    assert bearer(value) == token


def call(app, path: str, method: str = "GET", headers=()):
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": list(headers)}
    asyncio.run(app(scope, receive, send))
    return sent


async def ok_app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.mark.parametrize(
    ("method", "path", "header", "status"),
    [
        ("POST", "/v2/models/m/infer", None, 401),
        ("POST", "/v2/models/m/infer", f"Bearer {A}", 200),
        ("POST", "/v2/models/m/infer", f"Bearer {B}", 403),
        ("POST", "/producer/v1/write", f"Bearer {A}", 403),
        ("POST", "/producer/v1/write", f"Bearer {B}", 200),
        ("POST", "/v2/models/m/feedback", f"Bearer {A}", 403),  # rewards steer the bandit
        ("POST", "/v2/models/m/feedback", f"Bearer {B}", 200),
        ("POST", "/v2/models/m/labels", f"Bearer {A}", 200),
        ("GET", "/v2/health/ready", None, 200),
        ("GET", "/metrics", None, 200),
        ("POST", "/metrics", None, 401),  # only GET/HEAD are probes
        ("GET", "/v2/models/m", None, 401),  # metadata is not a probe
    ],
)
def test_asgi_layer(tmp_path, method, path, header, status):
    tokens = Tokens(write(tmp_path / "t", f"infer:{A}\nwrite:{B}\n"))
    headers = [(b"authorization", header.encode())] if header else []
    sent = call(BearerAuth(ok_app, tokens), path, method, headers)
    assert sent[0]["status"] == status
    if status in (401, 403):
        assert dict(sent[0]["headers"])[b"www-authenticate"].startswith(b"Bearer")
        assert b'"error"' in sent[1]["body"]


def test_probes_can_require_a_token(tmp_path):
    tokens = Tokens(write(tmp_path / "t", f"write:{B}\n"))
    app = BearerAuth(ok_app, tokens, probes_public=False)
    assert call(app, "/v2/health/ready")[0]["status"] == 401
    headers = [(b"authorization", f"Bearer {B}".encode())]
    assert call(app, "/v2/health/ready", headers=headers)[0]["status"] == 200  # any scope


def test_digest_is_sha256():
    assert auth._digest(b"x") == hashlib.sha256(b"x").digest()
