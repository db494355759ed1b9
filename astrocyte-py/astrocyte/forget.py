"""Forget: remove memories from every store that holds them."""

from __future__ import annotations

from astrocyte import validation as v
from astrocyte.config.schema import AstrocyteConfig
from astrocyte.errors import BankNotFound, ValidationError
from astrocyte.recall.service import build_filter
from astrocyte.spi import RecordFilter
from astrocyte.stores.storeset import StoreSet
from astrocyte.types import ForgetResult

# Deleting in slices keeps each store call (and SQL parameter list) bounded.
_DELETE_SLICE = 500


async def forget(
    config: AstrocyteConfig,
    stores: StoreSet,
    bank_id: object,
    *,
    memory_ids: object = None,
    tags: object = None,
    filters: object = None,
    before: object = None,
    storage_bank_id: str | None = None,
) -> ForgetResult:
    """Delete the memories selected by every given selector (AND).

    At least one selector is required: forgetting a whole bank by accident must not be
    one missing argument away. ``storage_bank_id`` is the id the stores know the bank
    by when it differs from the caller's ``bank_id`` (tenant namespacing); results and
    errors always name ``bank_id``.
    """
    bank = v.bank_id(bank_id)
    storage = bank if storage_bank_id is None else storage_bank_id
    if memory_ids is None and tags is None and filters is None and before is None:
        raise ValidationError(
            "memory_ids", "no selector given", fix="pass memory_ids, tags, filters or before"
        )
    limits = config.limits
    where = build_filter(
        tags=v.tags(tags, limits.max_tags),
        filters=v.metadata(filters, limits.max_metadata_keys, "filters"),
        before=before,
    )
    if not await stores.documents.bank_exists(storage):
        raise BankNotFound(bank)
    if memory_ids is not None:
        wanted = v.id_list(memory_ids, "memory_ids")
        base = where or RecordFilter()
        where = RecordFilter(
            tags=base.tags,
            time_from=base.time_from,
            time_to=base.time_to,
            metadata=base.metadata,
            ids=frozenset(wanted),
        )
    if where is None:
        raise ValidationError(
            "tags", "the selectors given are empty", fix="pass at least one tag, filter or id"
        )
    ids = await stores.documents.find(storage, where)
    for start in range(0, len(ids), _DELETE_SLICE):
        await stores.delete(storage, ids[start : start + _DELETE_SLICE])
    return ForgetResult(bank_id=bank, deleted_ids=ids)
