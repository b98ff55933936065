"""The app's collaborators, built once in ``create_app`` and kept in ``app.extensions``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from .core.questionnaire import QuestionnaireRegistry
from .persistence.db import Database
from .persistence.models import utcnow
from .settings import Settings


@dataclass
class Services:
    settings: Settings
    db: Database
    registry: QuestionnaireRegistry
    clock: Callable[[], datetime] = utcnow
    voices: dict[str, str] = field(default_factory=dict)
