from pathlib import Path

import pytest

from app.config import ConfigError, load_settings


def test_defaults_use_a_sqlite_file_in_the_data_dir():
    settings = load_settings({})
    assert settings.cache_url == "memory://"
    assert settings.port == 8000
    assert settings.db_url == f"sqlite://{(Path('var') / 'sunrank.sqlite3').resolve()}"


def test_values_come_from_sunrank_variables():
    settings = load_settings(
        {
            "SUNRANK_DATA_DIR": "/tmp/x",
            "SUNRANK_DATABASE_URL": "postgres://u@h/db",
            "SUNRANK_CACHE_URL": "redis://localhost:6379/0",
            "SUNRANK_PORT": "9000",
            "SUNRANK_LOG_LEVEL": "DEBUG",
            "SUNRANK_ADMIN_USERNAMES": "alice, bob",
        }
    )
    assert settings.db_url == "postgres://u@h/db"
    assert settings.cache_url.startswith("redis://")
    assert (settings.port, settings.log_level) == (9000, "debug")
    assert settings.admin_usernames == ("alice", "bob")
    assert settings.checkpoint_dir == Path("/tmp/x/checkpoints")


@pytest.mark.parametrize(
    ("var", "value", "expected"),
    [
        ("SUNRANK_PORT", "abc", "expected an integer"),
        ("SUNRANK_PORT", "70000", "between 1 and 65535"),
        ("SUNRANK_DATABASE_URL", "mysql://x", "sqlite, postgres"),
        ("SUNRANK_CACHE_URL", "memcached://x", "memory, redis"),
        ("SUNRANK_LOG_LEVEL", "loud", "one of critical"),
        ("SUNRANK_REFIT_EVERY_EVENTS", "-3", "positive"),
    ],
)
def test_a_bad_value_names_the_variable(var, value, expected):
    with pytest.raises(ConfigError) as err:
        load_settings({var: value})
    message = str(err.value)
    assert message.startswith(f"{var}=") and expected in message
    assert "\n" not in message


def test_every_setting_is_documented_in_the_readme():
    """README.md is the operator's reference: each SUNRANK_* variable the settings
    read has a line there (a new setting without documentation fails here)."""
    from app.config import _PARSERS, PREFIX

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    variables = [PREFIX + name.upper() for name in _PARSERS]
    assert len(variables) > 30
    assert [v for v in variables if v not in readme] == []
