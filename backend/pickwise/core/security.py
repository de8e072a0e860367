import asyncio
import base64
import hashlib
import hmac
import os
import secrets
import weakref
from concurrent.futures import ThreadPoolExecutor

from pwdlib import PasswordHash

_password_hash = PasswordHash.recommended()
# Argon2 spends about a tenth of a second of CPU and 64 MiB per hash by design. Hashes run
# in threads of their own (argon2 releases the GIL), so a burst of logins neither stalls the
# event loop nor takes every thread of asyncio's shared pool, and at most one hash per core
# holds its memory at a time.
HASHING_THREADS = os.cpu_count() or 2
_hashing = ThreadPoolExecutor(max_workers=HASHING_THREADS, thread_name_prefix="argon2")
# Logins past this many wait for their turn before they touch the database: a burst then
# queues in memory instead of holding pool connections (which other requests need) while
# it waits for a hashing thread.
LOGINS_AT_ONCE = 2 * HASHING_THREADS
_login_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def login_turn() -> asyncio.Semaphore:
    """The running event loop's queue of logins (a semaphore belongs to one loop)."""
    loop = asyncio.get_running_loop()
    turns = _login_turns.get(loop)
    if turns is None:
        turns = _login_turns[loop] = asyncio.Semaphore(LOGINS_AT_ONCE)
    return turns


def hash_password_now(password: str) -> str:
    """Blocks for the whole hash: for scripts and tests; async code awaits `hash_password`."""
    return _password_hash.hash(password)


def _verify(password: str, hashed: str | None) -> bool:
    if not hashed:
        # Spend the same time as a real check so unknown accounts are not revealed by timing.
        _password_hash.verify(password, _DUMMY_HASH)
        return False
    return _password_hash.verify(password, hashed)


async def hash_password(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_hashing, hash_password_now, password)


async def verify_password(password: str, hashed: str | None) -> bool:
    return await asyncio.get_running_loop().run_in_executor(_hashing, _verify, password, hashed)


_DUMMY_HASH = hash_password_now("not-a-real-password")


def new_token(prefix: str = "") -> str:
    return prefix + secrets.token_urlsafe(32)


def keyed_token(secret: str, purpose: str, nonce: str) -> str:
    """A token drawn from a secret and a stored nonce: whoever holds the secret can make it
    again (to show an invite link twice), the database alone cannot."""
    digest = hmac.new(secret.encode(), f"{purpose}:{nonce}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def token_digest(token: str) -> str:
    """Tokens are long and random, so a plain SHA-256 is enough to store them safely."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_pseudonym() -> str:
    return "r_" + secrets.token_hex(8)
