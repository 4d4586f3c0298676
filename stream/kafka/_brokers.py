"""Development brokers on loopback (``bpstream broker``, the test fixtures): which engine, Apache Kafka or Tansu,
and how to start it."""

from __future__ import annotations

__all__ = ["ENGINES", "choose_engine", "make_broker"]


ENGINES = ("auto", "kafka", "tansu")


def choose_engine(engine: str) -> tuple[str, str | None]:
    """(engine, note): ``auto`` resolves to ``kafka`` when it can run here, else ``tansu`` with the reason."""
    if engine != "auto":
        return engine, None
    from ._apache_kafka import unavailable

    why = unavailable()
    if why:
        return "tansu", f"Apache Kafka unavailable ({why}); starting Tansu instead. Use --engine tansu to silence this."
    return "kafka", None


def make_broker(engine: str, port: int | None = None, **kwargs):
    """A not yet started broker of that engine (``kafka`` or ``tansu``) with ``start()``/``stop()``/``bootstrap``."""
    if engine == "kafka":
        from ._apache_kafka import ApacheKafka

        return ApacheKafka(port=port, **kwargs)
    if engine == "tansu":
        from ._tansu import Tansu

        kwargs.pop("data_dir", None)
        return Tansu(port=port, **kwargs)
    raise ValueError(f"unknown broker engine {engine!r}")
