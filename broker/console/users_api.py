"""``/api/users``: admins list, add and change console users (the Users page and scripts)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from broker.console.auth import Admin, Auth
from broker.console.users import ConsoleUser, UserError, UserRole

router = APIRouter(prefix="/api/users", tags=["users"])


class NewUser(BaseModel):
    """A user to create."""

    model_config = ConfigDict(hide_input_in_errors=True)

    name: str = Field(max_length=63)
    role: UserRole
    password: str = Field(repr=False, max_length=1024)


class UserChange(BaseModel):
    """What to change on a user; absent fields stay as they are."""

    model_config = ConfigDict(hide_input_in_errors=True)

    role: UserRole | None = None
    disabled: bool | None = Field(default=None, description="true signs the user out everywhere.")
    password: str | None = Field(default=None, repr=False, max_length=1024)


@router.get("", summary="List console users")
async def list_users(
    _: Admin,
    auth: Auth,
) -> list[ConsoleUser]:
    """Return every user (never a password hash)."""
    return await auth.users.list()


@router.post(
    "",
    status_code=201,
    summary="Add a console user",
    responses={409: {"description": "The name is taken."}, 422: {"description": "Invalid."}},
)
async def add_user(
    body: NewUser,
    who: Admin,
    auth: Auth,
) -> ConsoleUser:
    """Create a local user with a password (audited)."""
    try:
        return await auth.users.add(body.name, body.role, body.password, who.actor)
    except UserError as exc:
        status = 409 if "already exists" in str(exc) else 422
        raise HTTPException(status, str(exc)) from exc


@router.patch(
    "/{name}",
    summary="Change a user's role, state or password",
    responses={404: {"description": "No such user."}, 409: {"description": "Own account."}},
)
async def change_user(
    name: str,
    body: UserChange,
    who: Admin,
    auth: Auth,
) -> ConsoleUser:
    """Change a user (audited). Admins cannot demote or disable themselves."""
    if name == who.user and (body.role not in (None, "admin") or body.disabled):
        raise HTTPException(409, "you cannot demote or disable your own account")
    try:
        return await auth.users.update(
            name, who.actor, role=body.role, disabled=body.disabled, password=body.password
        )
    except UserError as exc:
        raise HTTPException(404 if str(exc).startswith("no user") else 422, str(exc)) from exc
