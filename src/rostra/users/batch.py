"""``POST /users/batch``: create, change and delete up to 100 users in one request (admins).

The whole batch is validated before anything runs (its shape, the number of operations, each
operation's data), so a malformed batch is a 400 like any other body and changes nothing.
Operations then run in order through the users service, each in its own savepoint: one that
fails is undone alone and reported with the status and error its own request would have had;
the others stand. With ``"atomic": true`` they also share one outer savepoint, undone as a whole
when any operation failed. Every operation still runs, so one answer reports every failure; the
ones that had succeeded are then reported as 424 ``BATCH_ROLLED_BACK``, as nothing was applied.
The batch itself answers 200 whenever it ran: the per-item statuses tell what happened.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from rostra.core.db import take_write_turn
from rostra.core.errors import RostraError
from rostra.core.schemas import MAX_ID, InputModel
from rostra.core.security import Principal
from rostra.lib.passwords import BoundedPasswordHasher
from rostra.users import service
from rostra.users.models import User
from rostra.users.schemas import UserCreate, UserOut, UserUpdate

MAX_OPERATIONS = 100
UserId = Annotated[int, Field(ge=1, le=MAX_ID)]
ROLLED_BACK_STATUS = 424
ROLLED_BACK_CODE = "BATCH_ROLLED_BACK"


class _Operation(InputModel):
    # ``id`` names the user an operation acts on, so it is not the read-only field it is in a
    # resource body.
    read_only_fields: ClassVar[frozenset[str]] = frozenset()


class CreateOperation(_Operation):
    op: Literal["create"]
    data: UserCreate


class UpdateOperation(_Operation):
    op: Literal["update"]
    id: UserId
    data: UserUpdate


class DeleteOperation(_Operation):
    op: Literal["delete"]
    id: UserId


Operation = Annotated[
    CreateOperation | UpdateOperation | DeleteOperation, Field(discriminator="op")
]


class UserBatch(InputModel):
    operations: list[Operation] = Field(min_length=1, max_length=MAX_OPERATIONS)
    atomic: bool = Field(
        default=False, description="All or nothing: any failed operation undoes every other"
    )


class ItemError(BaseModel):
    code: str
    message: str
    details: list[dict[str, Any]] | None = Field(default=None, exclude_if=lambda v: v is None)


class ItemSucceeded(BaseModel):
    index: int
    status: int = Field(description="201 created, 200 changed, 204 deleted")
    data: UserOut | None = Field(description="The user as it is now; null once deleted")


class ItemFailed(BaseModel):
    index: int
    status: int = Field(description="The status the operation's own request would have had")
    error: ItemError


class BatchResults(BaseModel):
    results: list[ItemSucceeded | ItemFailed]


async def run_batch(
    session: AsyncSession,
    *,
    batch: UserBatch,
    hasher: BoundedPasswordHasher,
    actor: Principal,
) -> BatchResults:
    # On SQLite a SAVEPOINT opened outside a transaction starts one, and releasing it commits:
    # open the transaction first (a write turn), so savepoints nest inside the request's.
    await take_write_turn(session, User)
    if not batch.atomic:
        return BatchResults(
            results=[
                await _run_one(session, index, operation, hasher=hasher, actor=actor)
                for index, operation in enumerate(batch.operations)
            ]
        )
    together = await session.begin_nested()
    results = [
        await _run_one(session, index, operation, hasher=hasher, actor=actor)
        for index, operation in enumerate(batch.operations)
    ]
    failed = [item.index for item in results if isinstance(item, ItemFailed)]
    if not failed:
        await together.commit()
        return BatchResults(results=results)
    await together.rollback()
    return BatchResults(
        results=[
            item if isinstance(item, ItemFailed) else _rolled_back(item.index, failed)
            for item in results
        ]
    )


async def _run_one(
    session: AsyncSession,
    index: int,
    operation: CreateOperation | UpdateOperation | DeleteOperation,
    *,
    hasher: BoundedPasswordHasher,
    actor: Principal,
) -> ItemSucceeded | ItemFailed:
    try:
        async with session.begin_nested():
            status, data = await _apply(session, operation, hasher=hasher, actor=actor)
    except RostraError as error:
        return ItemFailed(
            index=index,
            status=error.status_code,
            error=ItemError(code=error.code, message=error.message, details=error.details),
        )
    return ItemSucceeded(index=index, status=status, data=data)


async def _apply(
    session: AsyncSession,
    operation: CreateOperation | UpdateOperation | DeleteOperation,
    *,
    hasher: BoundedPasswordHasher,
    actor: Principal,
) -> tuple[int, UserOut | None]:
    if isinstance(operation, CreateOperation):
        user = await service.create_user(session, data=operation.data, hasher=hasher, actor=actor)
        return 201, service.to_out(user, viewer=actor)
    user = await service.get_user_for_change(session, operation.id)
    if isinstance(operation, UpdateOperation):
        user = await service.update_user(
            session, user=user, data=operation.data, hasher=hasher, actor=actor
        )
        return 200, service.to_out(user, viewer=actor)
    await service.delete_user(session, user=user, actor=actor)
    return 204, None


def _rolled_back(index: int, failed: list[int]) -> ItemFailed:
    which = ", ".join(str(number) for number in failed)
    operations = "operation" if len(failed) == 1 else "operations"
    return ItemFailed(
        index=index,
        status=ROLLED_BACK_STATUS,
        error=ItemError(
            code=ROLLED_BACK_CODE,
            message=f"Not applied: the batch is atomic and {operations} {which} failed",
        ),
    )
