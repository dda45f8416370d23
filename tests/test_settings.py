"""Settings: one precedence (defaults < file < OCCI_* environment < options) and a config file
that is checked key by key, with errors that name the file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from occi.settings import Settings, SettingsError


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "occi.ini"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    "file_value, env_value, option_value, expected",
    [
        (None, None, None, 10.0),  # the default
        ("5", None, None, 5.0),  # the file over the default
        ("5", "3", None, 3.0),  # the environment over the file
        (None, "3", None, 3.0),  # the environment over the default
        ("5", "3", 1, 1.0),  # an option over everything
        (None, None, 1, 1.0),
        ("5", None, 1, 1.0),
    ],
)
def test_each_level_overrides_the_one_before(
    tmp_path, file_value, env_value, option_value, expected
):
    config = write(tmp_path, "[occi]\n" + (f"job_wait = {file_value}\n" if file_value else ""))
    env = {"OCCI_JOB_WAIT": env_value} if env_value else {}
    overrides = {"job_wait": option_value}
    s = Settings.load(environ=env, config_file=config, overrides=overrides)
    assert s.job_wait == expected


def test_options_keep_what_the_environment_set(tmp_path):
    """--bind used to rebuild the settings from a few fields: job_wait and entity_cache went
    back to their defaults and the workers inherited them."""
    env = {"OCCI_JOB_WAIT": "0", "OCCI_ENTITY_CACHE": "7", "OCCI_SIMULATOR_DELAY": "2"}
    s = Settings.load(environ=env, overrides={"bind": "127.0.0.1:9999", "workers": None})
    assert (s.bind, s.job_wait, s.entity_cache, s.workers) == ("127.0.0.1:9999", 0.0, 7, 2)
    assert s.extra == {"simulator_delay": "2"}
    # the workers read their settings back from the environment they are handed
    again = Settings.load(environ=s.to_env())
    assert again == s


def test_config_file_from_the_environment(tmp_path):
    config = write(tmp_path, "[occi]\nworkers = 5\nsimulator_delay = 0.5\n")
    s = Settings.load(environ={"OCCI_CONFIG": config})
    assert s.workers == 5
    assert s.backend_settings()["simulator_delay"] == "0.5"


def test_percent_in_a_file_value_is_a_character(tmp_path):
    config = write(tmp_path, "[occi]\ndatabase_url = postgresql://u:p%40ss@db/occi\n")
    assert Settings.load(environ={}, config_file=config).database_url.endswith("p%40ss@db/occi")


def test_unknown_key_names_line_and_suggests(tmp_path):
    config = write(tmp_path, "[occi]\nbind = 127.0.0.1:1\n\njob_wiat = 0\n")
    with pytest.raises(SettingsError) as err:
        Settings.load(environ={}, config_file=config)
    message = str(err.value)
    assert f"{config}, line 4" in message
    assert "'job_wiat'" in message and "did you mean job_wait" in message
    assert "\n" not in message


def test_backend_options_need_an_installed_backend_name(tmp_path):
    ok = write(tmp_path, "[occi]\nsimulator_delay = 1\nlibvirt_uri = qemu:///system\n")
    assert Settings.load(environ={}, config_file=ok).extra == {
        "simulator_delay": "1",
        "libvirt_uri": "qemu:///system",
    }
    bad = write(tmp_path, "[occi]\nopennebula_host = x\n")
    with pytest.raises(SettingsError, match="unknown setting 'opennebula_host'.*simulator_"):
        Settings.load(environ={}, config_file=bad)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("bind = x\n", "line 1"),  # no section header at all
        ("[server]\nbind = x\n", "no [occi] section (sections found: [server])"),
        ("[occi]\nbind = x\nthis is not a setting\n", "line 3"),
        ("[occi]\nbind = x\nbind = y\n", "line 3"),  # a key given twice
        ("[occi]\n[occi]\n", "line 2"),  # a section given twice
    ],
)
def test_malformed_file_is_one_line_naming_where(tmp_path, text, expected):
    config = write(tmp_path, text)
    with pytest.raises(SettingsError) as err:
        Settings.load(environ={}, config_file=config)
    assert expected in str(err.value)
    assert config in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(SettingsError, match="cannot be read"):
        Settings.load(environ={}, config_file=str(tmp_path / "nope.ini"))


def test_unknown_environment_variables_are_kept_and_listed():
    s = Settings.load(environ={"OCCI_JOBWAIT": "0", "OCCI_LIBVIRT_URI": "test:///default"})
    assert s.job_wait == 10.0
    assert s.unrecognised() == ["jobwait"]


def test_host_monitoring_settings(tmp_path):
    """Hosts are checked every 10 s and down after 30 s without an answer, unless told; 0
    turns the checks off; a negative time is refused, naming the setting."""
    s = Settings.load(environ={})
    assert (s.host_check_interval, s.host_down_after) == (10.0, 30.0)
    config = write(tmp_path, "[occi]\nhost_down_after = 90\n")
    s = Settings.load(environ={"OCCI_HOST_CHECK_INTERVAL": "0"}, config_file=config)
    assert (s.host_check_interval, s.host_down_after) == (0.0, 90.0)
    with pytest.raises(SettingsError, match="host_down_after must not be negative"):
        Settings.load(environ={"OCCI_HOST_DOWN_AFTER": "-1"})
    with pytest.raises(SettingsError, match="host_check_interval must be a number"):
        Settings.load(environ={"OCCI_HOST_CHECK_INTERVAL": "often"})
