"""/api/v1/auth/*: registration, JWT pairs, refresh rotation, verify, logout, profile, passwords."""
from __future__ import annotations

from datetime import timedelta

import jwt as pyjwt
import pytest
from integration_helpers import API, assert_error, unique

AUTH = f"{API}/auth"


def claims(token: str) -> dict:
    return pyjwt.decode(token, options={"verify_signature": False})


def login(client, username: str, password: str):
    return client.post(f"{AUTH}/token/", json={"username": username, "password": password})


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


# --- register -----------------------------------------------------------------------------


def test_register_returns_user_tokens_and_message(register, db):
    response, body = register(first_name="Ada", last_name="Lovelace")
    assert response.status_code == 201
    data = response.get_json()
    assert set(data) == {"user", "tokens", "message"}
    assert isinstance(data["message"], str) and data["message"]
    user = data["user"]
    assert set(user) == {"id", "username", "email", "first_name", "last_name", "is_staff", "date_joined"}
    assert user["username"] == body["username"]
    assert user["email"] == body["email"]
    assert (user["first_name"], user["last_name"]) == ("Ada", "Lovelace")
    assert user["is_staff"] is False
    assert isinstance(user["id"], int) and user["date_joined"]
    assert set(data["tokens"]) == {"access", "refresh"}
    assert claims(data["tokens"]["access"])["type"] == "access"
    assert claims(data["tokens"]["refresh"])["type"] == "refresh"
    assert claims(data["tokens"]["access"])["sub"] == str(user["id"])

    row = db.user_row(body["username"])
    assert row.id == user["id"] and row.email == body["email"] and row.is_active


def test_password_is_stored_hashed(register, db):
    response, body = register(password="plain-text-never-stored")
    assert response.status_code == 201
    stored = db.user_row(body["username"]).password_hash
    assert stored.startswith("scrypt:")
    assert stored != body["password"]
    assert body["password"] not in stored


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"password_confirm": "something-else-123"}, "password_confirm"),
        ({"password": "short7!", "password_confirm": "short7!"}, "password"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@b"}, "email"),
        ({"email": None}, "email"),
        ({"username": ""}, "username"),
        ({"username": "has spaces"}, "username"),
        ({"username": 12345}, "username"),
        ({"password": None}, "password"),
        ({"password_confirm": None}, "password_confirm"),
        ({"username": "x" * 151}, "username"),
    ],
)
def test_register_rejects_bad_fields(client, db, overrides, field):
    username = overrides.get("username") if "username" in overrides else unique()
    body = {
        "username": username,
        "email": f"{unique()}@example.com",
        "password": "long-enough-pw",
        "password_confirm": "long-enough-pw",
    }
    body.update(overrides)
    body = {k: v for k, v in body.items() if v is not None}
    response = client.post(f"{AUTH}/register/", json=body)
    data = assert_error(response, 400)
    assert field in data, data
    if isinstance(username, str) and username:
        assert not db.user_exists(username)


def test_register_missing_fields(client):
    data = assert_error(client.post(f"{AUTH}/register/", json={}), 400)
    for field in ("username", "email", "password", "password_confirm"):
        assert field in data


def test_register_duplicate_username(register, user, db):
    before = db.scalar("SELECT count(*) FROM users WHERE lower(username) = lower(:u)", u=user.username)
    response, _ = register(username=user.username)
    assert "username" in assert_error(response, 400)
    # case-insensitively taken, too
    response, _ = register(username=user.username.upper())
    assert "username" in assert_error(response, 400)
    assert db.scalar("SELECT count(*) FROM users WHERE lower(username) = lower(:u)", u=user.username) == before == 1


@pytest.mark.parametrize(
    "data, content_type",
    [
        (b'{"username": "x", ', "application/json"),
        (b"not json at all", "application/json"),
        (b"[1, 2, 3]", "application/json"),
        (b'"a string"', "application/json"),
        (b"null", "application/json"),
        (b"42", "application/json"),
    ],
)
def test_register_malformed_or_non_object_json(client, data, content_type):
    assert_error(client.post(f"{AUTH}/register/", data=data, content_type=content_type), 400)


def test_register_rejects_nul_characters(client, db):
    name = unique()
    raw = ('{"username": "%s", "email": "a@example.com", "first_name": "a\\u0000b", '
           '"password": "long-enough-pw", "password_confirm": "long-enough-pw"}' % name)
    assert_error(client.post(f"{AUTH}/register/", data=raw, content_type="application/json"), 400)
    assert not db.user_exists(name)


# --- token ---------------------------------------------------------------------------------


def test_token_returns_pair_and_user(client, user):
    response = login(client, user.username, user.password)
    assert response.status_code == 200
    data = response.get_json()
    assert set(data) == {"access", "refresh", "user"}
    assert data["user"] == {"id": user.id, "username": user.username, "email": user.email, "is_staff": False}
    access = claims(data["access"])
    assert access["type"] == "access"
    assert access["username"] == user.username
    assert access["email"] == user.email
    assert access["is_staff"] is False
    assert access["sub"] == str(user.id)
    assert 29 * 60 <= access["exp"] - access["iat"] <= 30 * 60
    refresh = claims(data["refresh"])
    assert refresh["type"] == "refresh"
    assert 7 * 86400 - 60 <= refresh["exp"] - refresh["iat"] <= 7 * 86400
    # the new access token works
    assert client.get(f"{AUTH}/profile/", headers=bearer(data["access"])).status_code == 200


@pytest.mark.parametrize("case", ["unknown user", "wrong password", "empty password"])
def test_token_bad_credentials_401(client, user, case):
    body = {
        "unknown user": {"username": unique("nobody"), "password": user.password},
        "wrong password": {"username": user.username, "password": user.password + "x"},
        "empty password": {"username": user.username, "password": ""},
    }[case]
    data = assert_error(client.post(f"{AUTH}/token/", json=body), 401)
    assert "access" not in data and "refresh" not in data


def test_token_missing_fields_400(client):
    data = assert_error(client.post(f"{AUTH}/token/", json={}), 400)
    assert "username" in data and "password" in data


def test_token_inactive_user_401(fresh_user, client, db):
    db.execute("UPDATE users SET is_active = false WHERE id = :id", id=fresh_user.id)
    assert_error(login(client, fresh_user.username, fresh_user.password), 401)


# --- refresh / verify ----------------------------------------------------------------------


def test_refresh_rotates_and_revokes_old(client, fresh_user, db):
    old = fresh_user.refresh
    response = client.post(f"{AUTH}/token/refresh/", json={"refresh": old})
    assert response.status_code == 200
    data = response.get_json()
    assert set(data) == {"access", "refresh"}
    assert data["refresh"] != old
    assert claims(data["access"])["username"] == fresh_user.username
    assert db.scalar("SELECT count(*) FROM revoked_tokens WHERE jti = :j", j=claims(old)["jti"]) == 1
    # the old one is spent, the new one works (once)
    assert_error(client.post(f"{AUTH}/token/refresh/", json={"refresh": old}), 401)
    again = client.post(f"{AUTH}/token/refresh/", json={"refresh": data["refresh"]})
    assert again.status_code == 200
    assert_error(client.post(f"{AUTH}/token/refresh/", json={"refresh": data["refresh"]}), 401)


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "", None, 123, ["x"]])
def test_refresh_garbage_401(client, token):
    assert_error(client.post(f"{AUTH}/token/refresh/", json={"refresh": token}), 401)


def test_refresh_missing_body_401(client):
    assert_error(client.post(f"{AUTH}/token/refresh/"), 401)


def test_refresh_with_access_token_401(client, user):
    assert_error(client.post(f"{AUTH}/token/refresh/", json={"refresh": user.access}), 401)


def test_refresh_expired_401(app, client, user):
    from flask_jwt_extended import create_refresh_token

    with app.app_context():
        expired = create_refresh_token(identity=str(user.id), expires_delta=timedelta(seconds=-30))
    assert_error(client.post(f"{AUTH}/token/refresh/", json={"refresh": expired}), 401)


def test_refresh_signed_with_another_key_401(client, user):
    forged = pyjwt.encode({**claims(user.refresh)}, "not-the-server-secret-but-32-bytes-long!", algorithm="HS256")
    assert_error(client.post(f"{AUTH}/token/refresh/", json={"refresh": forged}), 401)


def test_verify(client, user):
    assert client.post(f"{AUTH}/token/verify/", json={"token": user.access}).get_json() == {}
    response = client.post(f"{AUTH}/token/verify/", json={"token": user.refresh})
    assert (response.status_code, response.get_json()) == (200, {})
    assert_error(client.post(f"{AUTH}/token/verify/", json={"token": "garbage"}), 401)
    assert_error(client.post(f"{AUTH}/token/verify/", json={}), 401)
    forged = pyjwt.encode(claims(user.access), "a-wrong-secret-that-is-32-bytes-long!!", algorithm="HS256")
    assert_error(client.post(f"{AUTH}/token/verify/", json={"token": forged}), 401)


def test_verify_expired_401(app, client, user):
    from flask_jwt_extended import create_access_token

    with app.app_context():
        expired = create_access_token(identity=str(user.id), expires_delta=timedelta(seconds=-30))
    assert_error(client.post(f"{AUTH}/token/verify/", json={"token": expired}), 401)
    assert_error(client.get(f"{AUTH}/profile/", headers=bearer(expired)), 401)


# --- logout --------------------------------------------------------------------------------


def test_logout_revokes_refresh(client, fresh_user):
    response = client.post(f"{AUTH}/logout/", json={"refresh": fresh_user.refresh}, headers=fresh_user.headers)
    assert response.status_code == 200
    assert response.is_json
    assert_error(client.post(f"{AUTH}/token/refresh/", json={"refresh": fresh_user.refresh}), 401)
    assert_error(client.post(f"{AUTH}/token/verify/", json={"token": fresh_user.refresh}), 401)


def test_logout_requires_refresh_400(client, user):
    assert "refresh" in assert_error(client.post(f"{AUTH}/logout/", json={}, headers=user.headers), 400)
    assert_error(client.post(f"{AUTH}/logout/", headers=user.headers), 400)


def test_logout_requires_auth_401(client, user):
    assert_error(client.post(f"{AUTH}/logout/", json={"refresh": user.refresh}), 401)
    assert_error(client.post(f"{AUTH}/logout/", json={"refresh": user.refresh}, headers=bearer("garbage")), 401)
    # the refresh token survived both attempts
    assert client.post(f"{AUTH}/token/verify/", json={"token": user.refresh}).status_code == 200


def test_logout_cannot_revoke_someone_elses_refresh(client, user, other_user):
    response = client.post(f"{AUTH}/logout/", json={"refresh": other_user.refresh}, headers=user.headers)
    assert 400 <= response.status_code < 500
    assert_error(response, response.status_code)
    assert client.post(f"{AUTH}/token/verify/", json={"token": other_user.refresh}).status_code == 200


def test_logout_with_access_token_as_refresh_400(client, user):
    assert_error(client.post(f"{AUTH}/logout/", json={"refresh": user.access}, headers=user.headers), 400)


def test_refresh_token_is_not_an_access_token(client, user):
    assert_error(client.get(f"{AUTH}/profile/", headers=bearer(user.refresh)), 401)


# --- profile -------------------------------------------------------------------------------


def test_profile_get(client, user):
    response = client.get(f"{AUTH}/profile/", headers=user.headers)
    assert response.status_code == 200
    data = response.get_json()
    assert set(data) == {"id", "username", "email", "first_name", "last_name", "is_staff", "date_joined"}
    assert (data["id"], data["username"], data["email"], data["is_staff"]) == (user.id, user.username, user.email, False)


def test_profile_requires_auth(client):
    assert_error(client.get(f"{AUTH}/profile/"), 401)
    assert_error(client.patch(f"{AUTH}/profile/", json={"first_name": "x"}), 401)


def test_profile_patch_updates_names_and_email(client, fresh_user, db):
    new_email = f"{unique()}@example.org"
    response = client.patch(
        f"{AUTH}/profile/",
        json={"first_name": "Grace", "last_name": "Hopper", "email": new_email},
        headers=fresh_user.headers,
    )
    assert response.status_code == 200
    data = response.get_json()
    assert (data["first_name"], data["last_name"], data["email"]) == ("Grace", "Hopper", new_email)
    row = db.user_row(fresh_user.username)
    assert (row.first_name, row.last_name, row.email) == ("Grace", "Hopper", new_email)
    assert client.get(f"{AUTH}/profile/", headers=fresh_user.headers).get_json()["email"] == new_email


def test_profile_patch_read_only_fields_ignored(client, fresh_user, db):
    before = client.get(f"{AUTH}/profile/", headers=fresh_user.headers).get_json()
    response = client.patch(
        f"{AUTH}/profile/",
        json={"id": 999999, "is_staff": True, "date_joined": "2000-01-01T00:00:00Z", "last_name": "Changed"},
        headers=fresh_user.headers,
    )
    assert response.status_code == 200
    data = response.get_json()
    assert data["id"] == before["id"] == fresh_user.id
    assert data["is_staff"] is False
    assert data["date_joined"] == before["date_joined"]
    assert data["last_name"] == "Changed"
    row = db.user_row(fresh_user.username)
    assert row.id == fresh_user.id and row.is_staff is False
    assert row.date_joined.isoformat() == before["date_joined"]


def test_profile_patch_username(client, fresh_user, other_user, db):
    data = assert_error(
        client.patch(f"{AUTH}/profile/", json={"username": other_user.username}, headers=fresh_user.headers), 400
    )
    assert "username" in data
    assert db.user_row(fresh_user.username).id == fresh_user.id
    # keeping one's own name is fine; a free name is taken
    same = client.patch(f"{AUTH}/profile/", json={"username": fresh_user.username}, headers=fresh_user.headers)
    assert same.status_code == 200
    new_name = unique()
    renamed = client.patch(f"{AUTH}/profile/", json={"username": new_name}, headers=fresh_user.headers)
    assert renamed.status_code == 200 and renamed.get_json()["username"] == new_name
    assert db.user_row(new_name).id == fresh_user.id


@pytest.mark.parametrize(
    "body, field",
    [({"email": "bad"}, "email"), ({"username": ""}, "username"), ({"first_name": 5}, "first_name"), ({"first_name": "x" * 151}, "first_name")],
)
def test_profile_patch_invalid_400_changes_nothing(client, user, db, body, field):
    before = db.user_row(user.username)
    assert field in assert_error(client.patch(f"{AUTH}/profile/", json=body, headers=user.headers), 400)
    after = db.user_row(user.username)
    assert before == after


def test_profile_patch_malformed_json_400(client, user):
    assert_error(client.patch(f"{AUTH}/profile/", data=b"{oops", content_type="application/json", headers=user.headers), 400)


# --- change password -----------------------------------------------------------------------


def test_change_password(client, fresh_user, db):
    old_hash = db.user_row(fresh_user.username).password_hash
    new = "brand-new-password-9"
    response = client.post(
        f"{AUTH}/change-password/",
        json={"old_password": fresh_user.password, "new_password": new, "new_password_confirm": new},
        headers=fresh_user.headers,
    )
    assert response.status_code == 200 and response.is_json
    stored = db.user_row(fresh_user.username).password_hash
    assert stored != old_hash and stored.startswith("scrypt:") and new not in stored
    assert login(client, fresh_user.username, new).status_code == 200
    assert_error(login(client, fresh_user.username, fresh_user.password), 401)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"old_password": "wrong-old-password", "new_password": "new-password-1", "new_password_confirm": "new-password-1"}, "old_password"),
        ({"old_password": None, "new_password": "new-password-1", "new_password_confirm": "new-password-2"}, "new_password_confirm"),
        ({"old_password": None, "new_password": "short", "new_password_confirm": "short"}, "new_password"),
        ({"old_password": None}, "new_password"),
        ({}, "old_password"),
    ],
)
def test_change_password_rejected(client, user, db, body, field):
    body = {k: (user.password if k == "old_password" and v is None else v) for k, v in body.items()}
    before = db.user_row(user.username).password_hash
    data = assert_error(client.post(f"{AUTH}/change-password/", json=body, headers=user.headers), 400)
    assert field in data
    assert db.user_row(user.username).password_hash == before


def test_change_password_requires_auth(client):
    assert_error(client.post(f"{AUTH}/change-password/", json={}), 401)


# --- a user deleted (or deactivated) while their tokens are still live ---------------------


def test_deleted_user_gets_401_not_500(client, fresh_user, db):
    db.execute("DELETE FROM users WHERE id = :id", id=fresh_user.id)
    headers = fresh_user.headers
    assert_error(client.get(f"{AUTH}/profile/", headers=headers), 401)
    assert_error(client.post(f"{AUTH}/logout/", json={"refresh": fresh_user.refresh}, headers=headers), 401)
    assert_error(client.post(f"{AUTH}/token/refresh/", json={"refresh": fresh_user.refresh}), 401)
    assert_error(client.post(f"{API}/tasks/", json={"name": "orphan", "task_type": "echo"}, headers=headers), 401)
    assert db.task_count(fresh_user.id) == 0


def test_deleting_a_user_deletes_their_tasks(client, fresh_user, db):
    """tasks.owner_id has no foreign key (migration 0006): a trigger does the cascade."""
    created = client.post(f"{API}/tasks/", json={"name": "owned", "task_type": "echo"}, headers=fresh_user.headers)
    assert created.status_code == 201
    assert db.task_count(fresh_user.id) == 1
    db.execute("DELETE FROM users WHERE id = :id", id=fresh_user.id)
    assert db.task_count(fresh_user.id) == 0
    assert db.scalar("SELECT count(*) FROM tasks WHERE id = :id", id=created.get_json()["id"]) == 0


def test_deactivated_user_cannot_refresh(client, fresh_user, db):
    db.execute("UPDATE users SET is_active = false WHERE id = :id", id=fresh_user.id)
    assert_error(client.post(f"{AUTH}/token/refresh/", json={"refresh": fresh_user.refresh}), 401)
    assert_error(client.get(f"{AUTH}/profile/", headers=fresh_user.headers), 401)


def test_token_rejects_nul_characters(client, user):
    raw = '{"username": "%s\\u0000", "password": "whatever-123"}' % user.username
    assert_error(client.post(f"{AUTH}/token/", data=raw, content_type="application/json"), 400)
