"""Passwords: argon2id, old scrypt hashes still verify and are replaced at the next log-in."""

from __future__ import annotations

import hashlib
import os

from master.services.users import check_password, hash_password
from tests.master.mastertest import MasterClient


def old_scrypt_hash(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return f"scrypt${salt.hex()}${digest.hex()}"


def test_hash_and_check() -> None:
    stored = hash_password("correct horse")
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    assert check_password("correct horse", stored)
    assert not check_password("wrong horse", stored)
    assert not check_password("x", None) and not check_password("x", "garbage")
    assert check_password("legacy", old_scrypt_hash("legacy"))
    assert not check_password("other", old_scrypt_hash("legacy"))


async def test_old_hash_is_rehashed_on_login(master: MasterClient) -> None:
    users = master.master.ctx.store.users
    await users.insert_one(
        {"_id": "u-old", "username": "old", "password_hash": old_scrypt_hash("pw")}
    )
    bad = await master.request(
        "POST", "/api/v0/get-token/", None, data={"username": "old", "password": "nope"}
    )
    assert bad.status_code == 401
    assert (await users.find_one({"_id": "u-old"}))["password_hash"].startswith("scrypt$")
    good = await master.request(
        "POST", "/api/v0/get-token/", None, data={"username": "old", "password": "pw"}
    )
    assert good.status_code == 200, good.text
    stored = (await users.find_one({"_id": "u-old"}))["password_hash"]
    assert stored.startswith("$argon2id$") and check_password("pw", stored)
    token = good.json()["token"]
    assert len(token) >= 32
    me = await master.request("GET", "/api/v0/users/me/", token)
    assert me.json()["username"] == "old"
