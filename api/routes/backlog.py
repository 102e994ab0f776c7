"""backlog routes (to be filled in)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from api.deps import require_viewer

router = APIRouter(tags=["backlog"], dependencies=[Depends(require_viewer)])
