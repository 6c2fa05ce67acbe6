"""SQLite storage through SQLAlchemy.

NullPool: every unit of work opens the database file anew. SQLite connections are cheap, and a
pooled connection would keep writing to a database file that has been deleted or whose volume
went away, so the health check would report "ok" for storage that is gone.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, DateTime, Float, Integer, String, create_engine, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import NullPool

DB_FILENAME = "voxserve.sqlite3"


class Base(DeclarativeBase):
    pass


class Analysis(Base):
    __tablename__ = "analyses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=False))
    filename: Mapped[str | None] = mapped_column(String(255))
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    duration_s: Mapped[float] = mapped_column(Float)
    sample_rate: Mapped[int] = mapped_column(Integer)
    channels: Mapped[int] = mapped_column(Integer)
    sample_width_bits: Mapped[int] = mapped_column(Integer)
    frames: Mapped[int] = mapped_column(Integer)
    rms_dbfs: Mapped[float] = mapped_column(Float)
    peak_dbfs: Mapped[float] = mapped_column(Float)
    vad_threshold_dbfs: Mapped[float] = mapped_column(Float)
    vad_frame_ms: Mapped[float] = mapped_column(Float)
    segments: Mapped[list[dict[str, float]]] = mapped_column(JSON)
    backend: Mapped[str] = mapped_column(String(32))

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": self.created_at.replace(tzinfo=UTC).isoformat(),
            "filename": self.filename,
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "duration_s": self.duration_s,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "sample_width_bits": self.sample_width_bits,
            "frames": self.frames,
            "rms_dbfs": self.rms_dbfs,
            "peak_dbfs": self.peak_dbfs,
            "vad": {
                "threshold_dbfs": self.vad_threshold_dbfs,
                "frame_ms": self.vad_frame_ms,
                "segments": self.segments,
            },
            "backend": self.backend,
        }


class HealthProbe(Base):
    """One row rewritten by every health check: proof that the database accepts writes."""

    __tablename__ = "health_probe"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    checked_at: Mapped[datetime] = mapped_column(DateTime(timezone=False))
    checks: Mapped[int] = mapped_column(Integer, default=0)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Database:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / DB_FILENAME
        self.engine = create_engine(
            f"sqlite:///{self.path}", poolclass=NullPool, connect_args={"timeout": 5}
        )
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._schema_lock = threading.Lock()
        self._schema_ready = False

    def ensure_schema(self) -> None:
        """Create the data directory and tables; retried until it succeeds once, so a volume
        that is mounted or fixed after start-up is picked up without a restart."""
        if self._schema_ready:
            return
        with self._schema_lock:
            if self._schema_ready:
                return
            self.data_dir.mkdir(parents=True, exist_ok=True)
            Base.metadata.create_all(self.engine)
            self._schema_ready = True

    def session(self) -> Session:
        self.ensure_schema()
        return self._sessions()

    def probe_write(self) -> None:
        """Really write (and commit) to the database; raises when that is impossible."""
        with self.session() as session, session.begin():
            probe = session.get(HealthProbe, 1)
            if probe is None:
                session.add(HealthProbe(id=1, checked_at=utcnow(), checks=1))
            else:
                probe.checked_at = utcnow()
                probe.checks += 1

    def add_analysis(self, row: Analysis) -> Analysis:
        with self.session() as session, session.begin():
            session.add(row)
        return row

    def get_analysis(self, analysis_id: int) -> Analysis | None:
        with self.session() as session:
            return session.get(Analysis, analysis_id)

    def recent_analyses(self, limit: int) -> list[Analysis]:
        with self.session() as session:
            stmt = select(Analysis).order_by(Analysis.id.desc()).limit(limit)
            return list(session.scalars(stmt))

    def count_analyses(self) -> int:
        with self.session() as session:
            return int(session.scalar(select(func.count()).select_from(Analysis)) or 0)
