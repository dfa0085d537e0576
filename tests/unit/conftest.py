"""Property tests (hypothesis) are bounded in examples, keep no database in the
project, and have no per-example deadline: a hang is caught by pytest-timeout, and a
busy CI machine must not fail a test for being slow."""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "antiphon",
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("antiphon")
