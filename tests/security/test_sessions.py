"""Sessions: every token pair carries a session id (`sid`) that survives refresh rotation;
logout ends that session (its access tokens too, on REST and at the websocket handshake);
changing the password ends every OTHER session of the user; a spent refresh token is dead.
"""
from __future__ import annotations

from .helpers import PASSWORDS, SecUser, assert_json_error, claims_of, ws_open, ws_refusal, ws_url


def assert_session_dead(system, user: SecUser, access: str, refresh: str) -> None:
    """The session's tokens are refused everywhere: REST (401), websocket (401), refresh (401)."""
    for path in ("/auth/profile/", "/tasks/"):
        assert_json_error(user.call("GET", path, token=access), 401)
    assert_json_error(user.post("/tasks/", json={"name": "x", "task_type": "echo"}, token=access), 401)
    status, _, _ = ws_refusal(ws_url(system), {"Authorization": f"Bearer {access}"})
    assert status == 401
    status, _, _ = ws_refusal(ws_url(system, token=access))
    assert status == 401
    assert_json_error(user.post("/auth/token/refresh/", json={"refresh": refresh}, auth=False), 401)


def assert_session_alive(system, user: SecUser, access: str) -> None:
    assert user.call("GET", "/auth/profile/", token=access).status_code == 200
    with ws_open(system, access):
        pass


def test_every_pair_carries_a_session_id_kept_across_rotation(system):
    """Register and login each start a session (distinct `sid`); refresh keeps the `sid` of the
    refresh token it spends, in both new tokens."""
    user = SecUser(system)
    first = claims_of(user.access).get("sid")
    assert first, f"access token has no sid claim: {claims_of(user.access)}"
    assert claims_of(user.refresh).get("sid") == first
    user.rotate()
    assert claims_of(user.access)["sid"] == first and claims_of(user.refresh)["sid"] == first
    user.login()
    assert claims_of(user.access)["sid"] not in (None, first)
    assert claims_of(user.refresh)["sid"] == claims_of(user.access)["sid"]


def test_logout_ends_the_session_access_tokens_included(system):
    """After POST /auth/logout/ {refresh}, that session's access token gets 401 on REST and at
    the websocket handshake, and its refresh token cannot be exchanged. Another session of the
    same user keeps working."""
    user = SecUser(system)
    s1_access, s1_refresh = user.access, user.refresh
    assert_session_alive(system, user, s1_access)
    s2 = user.login()
    user.ok("POST", "/auth/logout/", json={"refresh": s1_refresh}, token=s1_access)
    assert_session_dead(system, user, s1_access, s1_refresh)
    assert_session_alive(system, user, s2["access"])
    user.access, user.refresh = s2["access"], s2["refresh"]
    user.rotate()  # the other session's refresh token is still live


def test_logout_also_ends_access_tokens_issued_before_rotation(system):
    """A session is the chain of rotations: logging out with the newest refresh token also kills
    the access tokens issued earlier in that session."""
    user = SecUser(system)
    access0, refresh0 = user.access, user.refresh
    user.rotate()
    access1, refresh1 = user.access, user.refresh
    user.ok("POST", "/auth/logout/", json={"refresh": refresh1}, token=access1)
    assert_session_dead(system, user, access1, refresh1)
    assert_session_dead(system, user, access0, refresh0)


def test_change_password_ends_other_sessions_but_not_the_callers(system):
    """POST /auth/change-password/ revokes every other session of the user (their access and
    refresh tokens -> 401, REST and websocket); the caller's session keeps working, including
    its refresh token; the old password no longer logs in, the new one does."""
    user = SecUser(system)
    others = [user.login(), user.login()]
    caller = user.login()
    user.access, user.refresh = caller["access"], caller["refresh"]
    old_password, new_password = user.password, user.password + "-new"
    PASSWORDS.add(new_password)
    user.ok("POST", "/auth/change-password/", json={
        "old_password": old_password, "new_password": new_password, "new_password_confirm": new_password})
    for session in others:
        assert_session_dead(system, user, session["access"], session["refresh"])
    assert_session_alive(system, user, caller["access"])
    user.rotate()
    assert_session_alive(system, user, user.access)
    assert_json_error(user.post("/auth/token/", json={"username": user.username, "password": old_password}, auth=False), 401)
    user.password = new_password
    user.login()


def test_another_users_refresh_token_cannot_log_them_out(system):
    """Logout with someone else's refresh token is refused (400) and their session lives on."""
    victim, attacker = SecUser(system), SecUser(system)
    r = attacker.post("/auth/logout/", json={"refresh": victim.refresh})
    assert_json_error(r, (400, 401, 403))
    assert_session_alive(system, victim, victim.access)
    victim.rotate()


def test_deactivated_user_tokens_are_refused(system, store):
    """A user deactivated in the database loses every session at once: access tokens get 401
    on REST and at the websocket handshake, the refresh token cannot be exchanged."""
    from sqlalchemy import text

    user = SecUser(system)
    assert_session_alive(system, user, user.access)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE users SET is_active = false WHERE id = :id"), {"id": user.id})
    assert_session_dead(system, user, user.access, user.refresh)
    assert_json_error(user.post("/auth/token/", json={"username": user.username, "password": user.password}, auth=False), 401)
