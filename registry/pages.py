"""HTML pages rendered from web/templates (being written)."""

from fastapi import APIRouter

router = APIRouter()
