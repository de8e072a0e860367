from fastapi import APIRouter

from pickwise.auth.deps import AdminUser, CurrentUser
from pickwise.core.deps import SessionDep
from pickwise.core.errors import Conflict, NotFound
from pickwise.users import repository, service
from pickwise.users.schemas import UserCreate, UserRead, UserUpdate

router = APIRouter(prefix="/api/v1", tags=["users"])


@router.get("/me", response_model=UserRead)
async def me(user: CurrentUser) -> UserRead:
    return UserRead.model_validate(user)


@router.get("/users", response_model=list[UserRead])
async def list_users(admin: AdminUser, session: SessionDep) -> list[UserRead]:
    return [UserRead.model_validate(user) for user in await repository.list_all(session)]


@router.post("/users", response_model=UserRead, status_code=201)
async def create_user(body: UserCreate, admin: AdminUser, session: SessionDep) -> UserRead:
    user = await service.create_user(session, **body.model_dump())
    return UserRead.model_validate(user)


@router.patch("/users/{user_id}", response_model=UserRead, summary="Deactivate or reactivate")
async def update_user(
    user_id: int, body: UserUpdate, admin: AdminUser, session: SessionDep
) -> UserRead:
    user = await repository.get(session, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist")
    if body.is_active is not None:
        if user.id == admin.id and not body.is_active:
            raise Conflict("you cannot deactivate your own account", field="is_active")
        await service.set_active(session, user, body.is_active)
    return UserRead.model_validate(user)
