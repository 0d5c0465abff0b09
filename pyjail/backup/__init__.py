"""Container and volume backups: one checksummed archive each, restore, schedules."""

from .archive import DamagedArchive, read_archive
from .service import BackupService

__all__ = ["BackupService", "DamagedArchive", "read_archive"]
